"""Runs of a room's code in a pool of sandbox containers (issue 6).

Public surface: ``Executor`` (start/close, ``start_run``/``run``, ``available``,
``reason``, ``languages``), ``Run`` (``send_input``, ``close_input``, ``stop``,
``wait``), ``ExecutorConfig``, the job model (``Job``, ``Limits``, ``Result``,
``OutputChunk``, ``TestOutcome``) and the two errors: ``JobError`` (the job is
wrong) and ``ExecutorError`` (runs cannot be done now). ``RemoteExecutor`` has
``Executor``'s surface over a Redis run queue served by ``Worker`` processes
(issue 9). Nothing here knows of the server.
"""

from .config import ExecutorConfig
from .executor import Executor, Run
from .job import (
    ExecutorError,
    Job,
    JobError,
    Limits,
    OutputChunk,
    Result,
    Status,
    Stream,
    TestOutcome,
)
from .languages import LanguageSpec, LanguageSpecError, TestSpec
from .remote import RemoteExecutor, RemoteRun
from .worker import Worker

__all__ = [
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "Job",
    "JobError",
    "LanguageSpec",
    "LanguageSpecError",
    "Limits",
    "OutputChunk",
    "RemoteExecutor",
    "RemoteRun",
    "Result",
    "Run",
    "Status",
    "Stream",
    "TestOutcome",
    "TestSpec",
    "Worker",
]
