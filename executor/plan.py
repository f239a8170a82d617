"""From a ``Job`` to what the agent is asked to do; every ``JobError`` is raised here.

A graded job's tests do not go into the workspace: they go, with the grading
harness, under ``graders.GRADER_DIR`` (absolute paths in ``Plan.files``, which
the agent writes privately), and the runner reports on ``graders.REPORT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .engine import BASE_ENV, Shape
from .graders import REPORT, grader_files, placed_test
from .job import Job, JobError, Limits
from .languages import LanguageSpec, expand, fill, find_language

MiB = 1024 * 1024
MAX_FILES = 500
MAX_PATH = 255
MAX_FILES_BYTES = 16 * MiB
MAX_STDIN = 4 * MiB


@dataclass(frozen=True, slots=True)
class Plan:
    spec: LanguageSpec
    limits: Limits
    shape: Shape
    #: Everything the agent writes: the job's files (relative: in /work) and, for a graded
    #: run, the harness and the tests (absolute: under ``graders.GRADER_DIR``).
    files: dict[str, str]
    argv: list[str]
    env: dict[str, str]
    entry: str | None
    tests: list[str]
    #: Where the test runner writes its report (graded runs): ``graders.REPORT``.
    report: str | None

    @property
    def graded(self) -> bool:
        return self.report is not None


def check_path(path: object, what: str) -> str:
    if not isinstance(path, str) or not path:
        raise JobError(f"{what}: a file name must be a non-empty string")
    if len(path) > MAX_PATH:
        raise JobError(f"{what} {path[:40]!r}…: a file path is at most {MAX_PATH} characters")
    if path.startswith("/") or "\\" in path:
        raise JobError(f"{what} {path!r}: use a relative path with '/' (like 'src/app.py')")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise JobError(f"{what} {path!r}: '..', '.' and empty parts are not allowed in a path")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise JobError(f"{what} {path!r}: control characters are not allowed in a file name")
    return path


def check_limits(limits: Limits) -> Limits:
    if not isinstance(limits, Limits):
        raise JobError("limits must be a Limits")
    problems = []
    if not 0.01 <= limits.cpus <= 64:
        problems.append("cpus must be between 0.01 and 64")
    if not 16 * MiB <= limits.memory_bytes <= 64 * 1024 * MiB:
        problems.append("memory must be between 16 MiB and 64 GiB")
    if not 4 * MiB <= limits.disk_bytes <= 16 * 1024 * MiB:
        problems.append("disk must be between 4 MiB and 16 GiB")
    if not 0 < limits.wall_seconds <= 24 * 3600:
        problems.append("wall time must be between 0 and 24 hours")
    if not 8 <= limits.pids <= 32768:
        problems.append("pids must be between 8 and 32768")
    if not 1 <= limits.output_bytes <= 1024 * MiB:
        problems.append("output must be between 1 byte and 1 GiB")
    if problems:
        raise JobError("bad limits: " + "; ".join(problems))
    return limits


def _choose_entry(job: Job, spec: LanguageSpec) -> str:
    if job.entry is not None:
        entry = check_path(job.entry, "entry")
        if entry not in job.files:
            raise JobError(f"the entry file {entry!r} is not among the files")
        return entry
    if spec.entry in job.files:
        return spec.entry
    candidates = [p for p in job.files if spec.extensions and p.endswith(spec.extensions)]
    if len(candidates) == 1:
        return candidates[0]
    raise JobError(
        f"no {spec.entry} among the files: name the file to run (entry)"
        if candidates or not job.files
        else f"no {spec.name} file to run among the files (expected {spec.entry})"
    )


def _check_files(files: object, what: str) -> dict[str, str]:
    if not isinstance(files, Mapping):
        raise JobError(f"{what} must map file paths to text")
    out: dict[str, str] = {}
    for path, text in files.items():
        check_path(path, what[:-1] if what.endswith("s") else what)
        if not isinstance(text, str):
            raise JobError(f"{path!r}: file content must be text")
        out[path] = text
    return out


def make_plan(
    job: Job,
    *,
    languages: Mapping[str, LanguageSpec],
    default_image: str,
    default_limits: Limits,
    max_cpus: float | None = None,
) -> Plan:
    if not isinstance(job, Job):
        raise JobError("not a Job")
    spec = find_language(languages, job.language) if isinstance(job.language, str) else None
    if spec is None:
        known = ", ".join(sorted(languages))
        raise JobError(f"unknown language {job.language!r} (known: {known})")
    limits = check_limits(default_limits if job.limits == Limits() else job.limits)
    files = _check_files(job.files, "files")
    tests = _check_files(job.tests, "tests")
    if len(files) + len(tests) > MAX_FILES:
        raise JobError(f"too many files: {len(files) + len(tests)} (at most {MAX_FILES})")
    both = sorted(set(files) & set(tests))
    if both:
        raise JobError(f"{both[0]!r} is both a file and a test file")
    everything = {**files, **tests}
    names = set(everything)
    for path in names:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise JobError(f"{'/'.join(parts[:i])!r} is a file and also a folder of {path!r}")
    size = sum(len(t.encode("utf-8", "surrogatepass")) for t in everything.values())
    shape = Shape.of(spec.image or default_image, limits, max_cpus)
    room = min(MAX_FILES_BYTES, shape.work_bytes // 2)
    if size > room:
        raise JobError(f"the files take {size / MiB:.1f} MiB; at most {room / MiB:.1f} MiB fit")
    if not isinstance(job.stdin, str):
        raise JobError("stdin must be text")
    if len(job.stdin.encode("utf-8", "surrogatepass")) > MAX_STDIN:
        raise JobError(f"stdin is larger than {MAX_STDIN // MiB} MiB")

    env = dict(BASE_ENV)
    env.update({k: fill(v) for k, v in spec.env.items()})
    if tests:
        if spec.test is None:
            raise JobError(f"{spec.name} has no test runner: this job cannot be graded")
        report = REPORT
        test_paths = sorted(tests)
        argv = expand(
            spec.test.command, entry="", tests=[placed_test(p) for p in test_paths], report=report
        )
        env.update({k: fill(v, report=report) for k, v in spec.test.env.items()})
        entry = None
        written = {**files, **grader_files(tests)}
    else:
        if not files:
            raise JobError("no files to run")
        entry = _choose_entry(job, spec)
        report = None
        test_paths = []
        argv = expand(spec.run, entry=entry, tests=[], report="")
        written = files
    return Plan(
        spec=spec,
        limits=limits,
        shape=shape,
        files=written,
        argv=argv,
        env=env,
        entry=entry,
        tests=test_paths,
        report=report,
    )
