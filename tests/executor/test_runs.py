"""Runs through the executor's interface against the real Docker Engine: output, stdin,
exit status, grading, containers per owner, stop, and the pool's bounds."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from executor import (
    Executor,
    ExecutorError,
    Job,
    JobError,
    OutputChunk,
)

from .conftest import TEST_LIMITS, make_config, run_py, text

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Prints the container's id (from where Docker mounted its /etc/hostname).
CONTAINER_ID = (
    "print([l.split()[3] for l in open('/proc/self/mountinfo') if ' /etc/hostname ' in l]"
    "[0].split('/')[-2][:12])"
)


async def test_hello_python(executor: Executor) -> None:
    result, chunks = await run_py(executor, "print('hello, world')")
    assert result.status == "ok", result
    assert result.exit_code == 0 and result.signal is None
    assert text(chunks) == "hello, world\n"
    assert result.message == "exited normally"
    assert 0 < result.wall_ms < 3000
    assert result.cpu_ms > 0
    assert result.peak_memory_bytes > 1024 * 1024
    assert not result.output_truncated and result.tests is None and result.score is None


async def test_hello_javascript(executor: Executor) -> None:
    job = Job("javascript", {"main.js": "console.log('hello from ' + 'node')"})
    result, chunks = await executor.run(job, owner="alice")
    assert result.status == "ok", result
    assert text(chunks) == "hello from node\n"


async def test_entry_file_and_modules(executor: Executor) -> None:
    files = {
        "app/run.py": "from lib.util import shout\nprint(shout('hi'))",
        "app/lib/__init__.py": "",
        "app/lib/util.py": "def shout(s):\n    return s.upper() + '!'",
    }
    result, chunks = await executor.run(Job("py", files, entry="app/run.py"), owner="alice")
    assert result.status == "ok", (result, text(chunks))
    assert text(chunks) == "HI!\n"


async def test_stdin_given_up_front(executor: Executor) -> None:
    code = "name = input()\nage = int(input())\nprint(f'{name} is {age + 1} next year')"
    result, chunks = await run_py(executor, code, stdin="Ada\n36\n")
    assert result.status == "ok", (result, text(chunks))
    assert text(chunks, "stdout") == "Ada is 37 next year\n"


async def test_stdin_sent_while_running(executor: Executor) -> None:
    got: list[OutputChunk] = []
    prompted = asyncio.Event()

    def on_output(chunk: OutputChunk) -> None:
        got.append(chunk)
        if b"name?" in chunk.data:
            prompted.set()

    code = "name = input('name? ')\nprint('hello', name)\nimport sys\nprint(len(sys.stdin.read()))"
    run = await executor.start_run(
        Job("python", {"main.py": code}), owner="alice", on_output=on_output
    )
    await asyncio.wait_for(prompted.wait(), 5)
    run.send_input(b"Grace\n")
    run.send_input(b"12345")
    run.close_input()
    result = await asyncio.wait_for(run.wait(), 5)
    assert result.status == "ok", (result, text(got))
    assert text(got, "stdout") == "name? hello Grace\n5\n"


async def test_stdout_and_stderr_interleaved_in_order(executor: Executor) -> None:
    code = (
        "import sys, time\n"
        "for i in range(6):\n"
        "    stream = sys.stdout if i % 2 == 0 else sys.stderr\n"
        "    print(f'line {i}', file=stream, flush=True)\n"
        "    time.sleep(0.03)\n"
    )
    result, chunks = await run_py(executor, code)
    assert result.status == "ok"
    # Python runs unbuffered, so print() writes the text and the newline
    # separately and a chunk may end between them: the order across streams
    # is what is promised, so adjacent chunks of one stream are joined.
    seen: list[tuple[str, str]] = []
    for c in chunks:
        if seen and seen[-1][0] == c.stream:
            seen[-1] = (c.stream, seen[-1][1] + c.data.decode())
        else:
            seen.append((c.stream, c.data.decode()))
    assert seen == [("stdout" if i % 2 == 0 else "stderr", f"line {i}\n") for i in range(6)], seen


async def test_chunks_are_bounded_and_complete(executor: Executor) -> None:
    code = "import sys\nsys.stdout.write('ab' * 100_000)\nsys.stderr.write('e' * 50_000)"
    result, chunks = await run_py(executor, code)
    assert result.status == "ok"
    assert max(len(c.data) for c in chunks) <= executor.config.chunk_bytes
    assert text(chunks, "stdout") == "ab" * 100_000
    assert text(chunks, "stderr") == "e" * 50_000


async def test_non_zero_exit_is_an_error(executor: Executor) -> None:
    result, chunks = await run_py(executor, "import sys\nprint('bye')\nsys.exit(3)")
    assert result.status == "error"
    assert result.exit_code == 3 and result.signal is None
    assert result.message == "exited with code 3"
    assert text(chunks) == "bye\n"


async def test_uncaught_exception_is_an_error_with_traceback(executor: Executor) -> None:
    result, chunks = await run_py(executor, "def f():\n    return 1 / 0\nf()")
    assert result.status == "error" and result.exit_code == 1
    assert "ZeroDivisionError" in text(chunks, "stderr")


async def test_killed_by_a_signal(executor: Executor) -> None:
    result, _ = await run_py(executor, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert result.status == "error"
    assert result.signal == 11 and result.exit_code is None
    assert "SIGSEGV" in result.message


async def test_grading_with_pytest(executor: Executor) -> None:
    job = Job(
        "python",
        {"calc.py": "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a + b\n"},
        tests={
            "test_calc.py": (
                "from calc import add, sub\n\n"
                "def test_add():\n    assert add(2, 3) == 5\n\n"
                "def test_sub():\n    assert sub(5, 3) == 2, 'sub is wrong'\n"
            )
        },
    )
    result, chunks = await executor.run(job, owner="alice")
    assert result.status == "ok", (result, text(chunks))
    assert result.tests is not None
    by_name = {t.name: t for t in result.tests}
    assert set(by_name) == {"test_calc.py::test_add", "test_calc.py::test_sub"}, by_name
    assert by_name["test_calc.py::test_add"].passed
    assert not by_name["test_calc.py::test_sub"].passed
    assert "sub is wrong" in by_name["test_calc.py::test_sub"].message
    assert result.score == 0.5
    assert result.message == "1 of 2 tests passed"
    assert "1 failed, 1 passed" in text(chunks)


async def test_grading_with_pytest_all_passing_in_a_tests_folder(executor: Executor) -> None:
    job = Job(
        "python",
        {"calc.py": "def add(a, b):\n    return a + b\n"},
        tests={
            "tests/test_calc.py": (
                "from calc import add\n\ndef test_add():\n    assert add(1, 1) == 2\n"
            )
        },
    )
    result, chunks = await executor.run(job, owner="alice")
    assert result.status == "ok", (result, text(chunks))
    assert result.score == 1.0 and result.message == "1 of 1 tests passed"


async def test_grading_with_node_test(executor: Executor) -> None:
    job = Job(
        "javascript",
        {"calc.js": "exports.add = (a, b) => a + b;\nexports.mul = (a, b) => a + b;\n"},
        tests={
            "calc.test.js": (
                "const test = require('node:test');\n"
                "const assert = require('node:assert');\n"
                "const { add, mul } = require('./calc.js');\n"
                "test('add', () => { assert.strictEqual(add(2, 3), 5); });\n"
                "test('mul', () => { assert.strictEqual(mul(2, 3), 6, 'mul is wrong'); });\n"
                "test.describe('group', () => {\n"
                "  test.it('inner', () => { assert.ok(true); });\n"
                "});\n"
            )
        },
    )
    result, chunks = await executor.run(job, owner="alice")
    assert result.status == "ok", (result, text(chunks))
    assert result.tests is not None
    by_name = {t.name: t for t in result.tests}
    assert set(by_name) == {"add", "mul", "group > inner"}, by_name
    assert by_name["add"].passed and by_name["group > inner"].passed
    assert not by_name["mul"].passed and "mul is wrong" in by_name["mul"].message
    assert result.score == pytest.approx(2 / 3)


async def test_graded_run_that_times_out_scores_zero(executor: Executor) -> None:
    job = Job(
        "python",
        {"calc.py": "while True:\n    pass\n"},
        tests={"test_calc.py": "import calc\n\ndef test_x():\n    pass\n"},
        limits=dataclasses.replace(TEST_LIMITS, wall_seconds=1.5),
    )
    result, _ = await executor.run(job, owner="alice")
    assert result.status == "timeout"
    assert result.tests == [] and result.score == 0.0


async def test_same_owner_reuses_a_wiped_container_other_owners_do_not(executor: Executor) -> None:
    first, c1 = await run_py(
        executor,
        CONTAINER_ID + "\nopen('note.txt', 'w').write('x')\nopen('/tmp/t', 'w').write('y')",
        owner="reuse-a",
    )
    second, c2 = await run_py(
        executor,
        CONTAINER_ID + "\nimport os\nprint(sorted(os.listdir('.')), os.listdir('/tmp'))",
        owner="reuse-a",
    )
    other, c3 = await run_py(executor, CONTAINER_ID, owner="reuse-b")
    assert first.status == second.status == other.status == "ok"
    id1, id2, id3 = text(c1).split()[0], text(c2).split()[0], text(c3).split()[0]
    assert id1 == id2, "the same owner's next run should reuse its container"
    assert id3 != id1, "another owner must never get a used container"
    assert text(c2).split("\n")[1] == "['main.py'] []", "the workspace was not wiped"


async def test_stop_ends_the_run_and_keeps_partial_output(executor: Executor) -> None:
    got: list[OutputChunk] = []
    started = asyncio.Event()

    def on_output(chunk: OutputChunk) -> None:
        got.append(chunk)
        started.set()

    code = "import time\nprint('working', flush=True)\ntime.sleep(60)"
    run = await executor.start_run(
        Job("python", {"main.py": code}), owner="alice", on_output=on_output
    )
    await asyncio.wait_for(started.wait(), 5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    run.stop()
    result = await asyncio.wait_for(run.wait(), 5)
    assert loop.time() - t0 < 1.0
    assert result.status == "killed" and result.signal == 9
    assert result.message == "stopped on request"
    assert text(got) == "working\n"
    after, chunks = await run_py(executor, "print('next')", owner="alice")
    assert after.status == "ok" and text(chunks) == "next\n"


async def test_ten_owners_at_once(executor: Executor) -> None:
    results = await asyncio.gather(
        *(run_py(executor, f"print({i} * 2)", owner=f"crowd-{i}") for i in range(10))
    )
    for i, (result, chunks) in enumerate(results):
        assert result.status == "ok", result
        assert text(chunks) == f"{i * 2}\n"


async def test_jobs_that_cannot_run_raise_job_error(executor: Executor) -> None:
    bad = [
        (Job("cobol", {"main.cob": ""}), "unknown language 'cobol'"),
        (Job("python", {"../escape.py": "print(1)"}), "'..'"),
        (Job("python", {"/etc/passwd": "x"}), "relative path"),
        (Job("python", {"a.py": "", "b.py": ""}), "name the file to run"),
        (Job("python", {"main.py": ""}, entry="other.py"), "is not among the files"),
        (Job("python", {"main.py": "", "main.py/x": ""}), "is a file and also a folder"),
        (Job("python", {"main.py": "x" * (20 * 1024 * 1024)}), "MiB fit"),
    ]
    for job, expected in bad:
        with pytest.raises(JobError, match=expected.replace("(", r"\(")):
            await executor.start_run(job, owner="alice", on_output=lambda c: None)
    with pytest.raises(JobError, match="owner"):
        await executor.start_run(Job("python", {"main.py": ""}), owner="", on_output=print)


async def test_a_single_python_file_with_another_name_is_the_entry(executor: Executor) -> None:
    result, chunks = await executor.run(Job("python", {"solution.py": "print(42)"}), owner="alice")
    assert result.status == "ok" and text(chunks) == "42\n"


async def test_on_output_that_raises_does_not_break_the_run(executor: Executor) -> None:
    def on_output(chunk: OutputChunk) -> None:
        raise RuntimeError("a broken listener")

    run = await executor.start_run(
        Job("python", {"main.py": "print(1)\nprint(2)"}), owner="alice", on_output=on_output
    )
    result = await asyncio.wait_for(run.wait(), 5)
    assert result.status == "ok"


async def test_pool_full_is_refused_at_once(docker_ready: None) -> None:
    ex = Executor(make_config(warm=0, max_containers=2))
    await ex.start()
    try:
        code = "import time\ntime.sleep(30)"
        runs = [
            await ex.start_run(Job("python", {"main.py": code}), owner=f"o{i}", on_output=print)
            for i in range(2)
        ]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ExecutorError, match="all 2 run containers are busy"):
            await ex.start_run(Job("python", {"main.py": "print(1)"}), owner="o3", on_output=print)
        assert loop.time() - t0 < 0.5
        # the owner of a busy container still gets a second container? not at the maximum
        for run in runs:
            run.stop()
        for run in runs:
            assert (await run.wait()).status == "killed"
        # now o3 takes the place of a kept (idle) container of o0 or o1
        result, chunks = await ex.run(Job("python", {"main.py": "print('room')"}), owner="o3")
        assert result.status == "ok" and text(chunks) == "room\n"
    finally:
        await ex.close()


async def test_container_replaced_after_runs_per_container(docker_ready: None) -> None:
    ex = Executor(make_config(warm=1, runs_per_container=2))
    await ex.start()
    try:
        ids = []
        for _ in range(3):
            result, chunks = await run_py(ex, CONTAINER_ID, owner="alice")
            assert result.status == "ok"
            ids.append(text(chunks).strip())
        assert ids[0] == ids[1] != ids[2]
    finally:
        await ex.close()


async def test_a_language_added_as_a_file_runs(docker_ready: None, tmp_path: Path) -> None:
    (tmp_path / "shell.json").write_text(
        '{"name": "shell", "aliases": ["sh"], "entry": "main.sh", "extensions": [".sh"],'
        ' "run": ["sh", "{entry}"], "env": {"GREETING": "hi from {workdir}"}}'
    )
    ex = Executor(make_config(warm=0, languages_dir=tmp_path))
    await ex.start()
    try:
        assert "shell" in ex.languages
        result, chunks = await ex.run(
            Job("sh", {"main.sh": 'echo "$GREETING"; echo "$0" >&2; exit 4'}), owner="alice"
        )
        assert result.status == "error" and result.exit_code == 4
        assert text(chunks, "stdout") == "hi from /work\n"
        assert text(chunks, "stderr") == "main.sh\n"
    finally:
        await ex.close()
