"""Hostile and broken code (issue 6, item 8): each ends with the right status and message
within its limit, the executor keeps working, and the owner's next run is clean."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import socket
import time

import pytest

from executor import Executor, Job, JobError, OutputChunk, Result

from .conftest import TEST_LIMITS, run_py, text

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHORT = dataclasses.replace(TEST_LIMITS, wall_seconds=2.0)

#: Lists the live processes the program can see, but itself: (pid, uid, command line).
OTHER_PROCESSES = """
import os
me = os.getpid()
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == me:
        continue
    try:
        status = open(f'/proc/{pid}/status').read()
        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode().strip()
    except OSError:
        continue
    state = [l.split()[1] for l in status.splitlines() if l.startswith('State:')][0]
    uid = [l.split()[1] for l in status.splitlines() if l.startswith('Uid:')][0]
    if state != 'Z':
        found.append((int(pid), int(uid), cmd))
print(__import__('json').dumps(sorted(found)))
"""


def runner_processes(chunks: list[OutputChunk]) -> list[list[object]]:
    """Processes of the runner user (10001) other than the program and its agent."""
    found = json.loads(text(chunks, "stdout").strip().splitlines()[-1])
    return [p for p in found if p[1] == 10001 and "python3 -I -S -c" not in p[2]]


async def assert_next_run_clean(ex: Executor, owner: str) -> None:
    """The executor still works for ``owner``, and nothing of the earlier run is left."""
    result, chunks = await run_py(
        ex,
        OTHER_PROCESSES + "print(sorted(os.listdir('/work')), os.listdir('/tmp'), "
        "os.listdir('/dev/shm'))",
        owner=owner,
    )
    assert result.status == "ok", (result, text(chunks))
    lines = text(chunks, "stdout").strip().splitlines()
    procs = [p for p in json.loads(lines[0]) if p[1] == 10001 and "python3 -I -S -c" not in p[2]]
    assert procs == [], f"processes left behind: {procs}"
    assert lines[1] == "['main.py'] [] []", f"files left behind: {lines[1]}"


async def timed(
    ex: Executor, code: str, owner: str, **job: object
) -> tuple[Result, list[OutputChunk], float]:
    t0 = time.monotonic()
    result, chunks = await run_py(ex, code, owner=owner, **job)
    return result, chunks, time.monotonic() - t0


# -- time ---------------------------------------------------------------------------------------


async def test_infinite_loop_times_out(executor: Executor) -> None:
    result, chunks, took = await timed(
        executor, "print('spinning', flush=True)\nwhile True:\n    pass", "loop", limits=SHORT
    )
    assert result.status == "timeout"
    assert result.message == "stopped: still running after the time limit of 2 s"
    assert 2.0 <= took < 5.0, took
    assert text(chunks) == "spinning\n", "output printed before the kill must arrive"
    assert result.cpu_ms > 500, "a busy loop uses its CPU"
    await assert_next_run_clean(executor, "loop")


async def test_sleep_forever_times_out(executor: Executor) -> None:
    result, _, took = await timed(
        executor, "import time\ntime.sleep(10**6)", "sleeper", limits=SHORT
    )
    assert result.status == "timeout" and 2.0 <= took < 5.0, (result, took)
    assert result.cpu_ms < 500
    await assert_next_run_clean(executor, "sleeper")


async def test_waiting_on_stdin_that_never_comes_times_out(executor: Executor) -> None:
    t0 = time.monotonic()
    run = await executor.start_run(
        Job("python", {"main.py": "print(input())"}, limits=SHORT), owner="waiter", on_output=print
    )
    result = await asyncio.wait_for(run.wait(), 6)
    assert result.status == "timeout" and 2.0 <= time.monotonic() - t0 < 5.0
    await assert_next_run_clean(executor, "waiter")


# -- processes ------------------------------------------------------------------------------------


async def test_shell_fork_bomb_is_contained(executor: Executor) -> None:
    code = (
        "import subprocess, time\n"
        "subprocess.run(['sh', '-c', ':(){ :|:& };:'])\n"
        "print('bomb away', flush=True)\n"
        "time.sleep(60)\n"
    )
    result, chunks, took = await timed(executor, code, "bomber", limits=SHORT)
    assert result.status in ("timeout", "error"), result
    assert took < 6.0
    assert "bomb away" in text(chunks)
    await assert_next_run_clean(executor, "bomber")


async def test_python_fork_loop_hits_the_pids_limit(executor: Executor) -> None:
    code = "import os\nwhile True:\n    os.fork()\n"
    result, chunks, took = await timed(executor, code, "forker", limits=SHORT)
    assert result.status in ("error", "timeout"), result
    assert took < 6.0
    if result.status == "error":
        assert f"process limit ({TEST_LIMITS.pids})" in result.message, result.message
    assert "BlockingIOError" in text(chunks, "stderr") or result.status == "timeout"
    await assert_next_run_clean(executor, "forker")


async def test_setsid_daemon_is_gone_before_the_next_run(executor: Executor) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.closerange(0, 3)\n"
        "        os.execvp('sleep', ['sleep', '12345'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "print('daemon started')\n"
    )
    result, chunks = await run_py(executor, code, owner="daemon")
    assert result.status == "ok" and text(chunks) == "daemon started\n"
    # the same owner's next run is in the same container: the daemon must be gone
    result, chunks = await run_py(executor, OTHER_PROCESSES, owner="daemon")
    assert result.status == "ok"
    assert runner_processes(chunks) == []
    assert "sleep 12345" not in text(chunks)


async def test_background_process_holding_stdout_does_not_hang_the_run(executor: Executor) -> None:
    code = "import subprocess\nsubprocess.Popen(['sleep', '600'])\nprint('parent done')"
    result, _, took = await timed(executor, code, "holder")
    assert result.status == "ok" and took < 3.0, (result, took)
    await assert_next_run_clean(executor, "holder")


async def test_other_runs_processes_are_invisible(executor: Executor) -> None:
    started = asyncio.Event()
    run = await executor.start_run(
        Job("python", {"main.py": "import time\nprint('up', flush=True)\ntime.sleep(30)"}),
        owner="visible-a",
        on_output=lambda c: started.set(),
    )
    try:
        await asyncio.wait_for(started.wait(), 5)
        result, chunks = await run_py(executor, OTHER_PROCESSES, owner="visible-b")
        assert result.status == "ok"
        assert runner_processes(chunks) == []
        seen = json.loads(text(chunks, "stdout").strip())
        kinds = sorted(
            "agent" if "python3 -I -S -c" in cmd else cmd.split()[0].rsplit("/", 1)[-1]
            for _, _, cmd in seen
        )
        assert kinds == ["agent", "docker-init", "sleep"], seen
    finally:
        run.stop()
        await run.wait()


# -- memory, output, disk ------------------------------------------------------------------------


async def test_allocating_2_gb_is_stopped_for_memory(executor: Executor) -> None:
    code = "print('allocating', flush=True)\nx = b'a' * (2 * 1024 ** 3)\nprint('survived')"
    result, chunks, took = await timed(executor, code, "hog")
    assert result.status == "memory", result
    assert result.message == "stopped: ran out of memory (limit 256 MiB)"
    assert result.signal == 9
    assert took < 3.0
    assert "survived" not in text(chunks)
    assert result.peak_memory_bytes >= 200 * 1024 * 1024, result.peak_memory_bytes
    await assert_next_run_clean(executor, "hog")


async def test_printing_1_gb_stops_at_the_output_limit(executor: Executor) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = "import sys\nchunk = 'x' * 65536\nfor _ in range(16384):\n    sys.stdout.write(chunk)\n"
    result, chunks, took = await timed(executor, code, "printer")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.status == "output-limit", result
    assert result.output_truncated
    assert "output limit of 1 MiB" in result.message
    assert took < 3.0, took
    stdout = b"".join(c.data for c in chunks if c.stream == "stdout")
    assert len(stdout) == 1024 * 1024
    assert chunks[-1] == OutputChunk("stderr", b"\n[output truncated at 1 MiB]\n")
    assert grown_kb < 64 * 1024, f"this process grew by {grown_kb} KiB"
    await assert_next_run_clean(executor, "printer")


async def test_printing_many_tiny_lines_is_capped_too(executor: Executor) -> None:
    code = "while True:\n    print('y')\n"  # half a million unbuffered writes
    roomy = dataclasses.replace(TEST_LIMITS, wall_seconds=15.0)
    result, chunks, took = await timed(executor, code, "liner", limits=roomy)
    assert result.status == "output-limit" and took < 15.0, (result, took)
    assert sum(len(c.data) for c in chunks if c.stream == "stdout") == 1024 * 1024
    # tiny writes arrive coalesced, not one chunk per line
    assert len(chunks) < 20_000, len(chunks)


async def test_writing_1_gb_to_disk_fails_for_space(executor: Executor) -> None:
    code = (
        "import os\n"
        "for where in ('/work/big', '/tmp/big', '/dev/shm/big'):\n"
        "    try:\n"
        "        with open(where, 'wb') as f:\n"
        "            for _ in range(1024):\n"
        "                f.write(b'z' * (1024 * 1024))\n"
        "        print(where, 'wrote 1 GB')\n"
        "    except OSError as e:\n"
        "        print(where, 'failed', e.strerror, os.path.getsize(where) // 2**20, 'MiB')\n"
        "open('/work/more', 'wb').write(b'z' * (64 * 1024 * 1024))\n"
    )
    result, chunks = await run_py(executor, code, owner="filler")
    out = text(chunks, "stdout")
    assert "wrote 1 GB" not in out
    assert out.count("No space left on device") == 3, out
    assert result.status == "error" and result.exit_code == 1
    assert "out of disk space" in result.message, result.message
    await assert_next_run_clean(executor, "filler")


# -- network, engine, host ----------------------------------------------------------------------


async def test_no_network_at_all(executor: Executor) -> None:
    code = (
        "import os, socket\n"
        "def attempt(name, fn):\n"
        "    try:\n"
        "        fn()\n"
        "        print(name, 'REACHED')\n"
        "    except OSError as e:\n"
        "        print(name, 'blocked', type(e).__name__)\n"
        "def connect(host, port):\n"
        "    return lambda: socket.create_connection((host, port), timeout=1).close()\n"
        "attempt('dns-server', connect('1.1.1.1', 53))\n"
        "attempt('dns-name', lambda: socket.getaddrinfo('example.com', 80))\n"
        "attempt('metadata', connect('169.254.169.254', 80))\n"
        "attempt('docker-gateway', connect('172.17.0.1', 2375))\n"
        "attempt('docker-gateway-tls', connect('172.17.0.1', 2376))\n"
        "attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        ".sendto(b'x', ('1.1.1.1', 53)))\n"
        "for path in ('/var/run/docker.sock', '/run/docker.sock', '/run/containerd'):\n"
        "    print(path, 'exists' if os.path.exists(path) else 'absent')\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
    )
    result, chunks, took = await timed(executor, code, "netter")
    out = text(chunks, "stdout")
    assert result.status == "ok", (result, text(chunks))
    assert "REACHED" not in out, out
    assert out.count("blocked") == 6, out
    assert out.count("absent") == 3, out
    assert "['lo']" in out, out
    assert took < 3.0


async def test_no_server_secrets_in_the_environment(executor: Executor) -> None:
    os.environ["OPENCODE_FAKE_SECRET"] = "s3cr3t-do-not-leak"
    try:
        code = (
            "import os, json\n"
            "leaks = []\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['self']:\n"
            "    try:\n"
            "        leaks.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
            "    except OSError:\n"
            "        pass\n"
            "print(json.dumps({'env': dict(os.environ), 'proc': leaks}))\n"
        )
        result, chunks = await run_py(executor, code, owner="snoop")
        assert result.status == "ok", (result, text(chunks))
        out = text(chunks, "stdout")
        assert "s3cr3t-do-not-leak" not in out and "OPENCODE_FAKE_SECRET" not in out
        env = json.loads(out)["env"]
        assert set(env) <= {
            "PATH",
            "HOME",
            "LANG",
            "PYTHONUNBUFFERED",
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONIOENCODING",
            "LC_CTYPE",
        }, env
    finally:
        del os.environ["OPENCODE_FAKE_SECRET"]


async def test_another_owners_files_are_absent(executor: Executor) -> None:
    code_a = (
        "import time\n"
        "for d in ('/work', '/tmp', '/dev/shm'):\n"
        "    open(d + '/owner-a-secret.txt', 'w').write('private to A')\n"
        "print('written', flush=True)\n"
        "time.sleep(30)\n"
    )
    ready = asyncio.Event()
    run_a = await executor.start_run(
        Job("python", {"main.py": code_a, "a-only.txt": "A"}),
        owner="files-a",
        on_output=lambda c: ready.set(),
    )
    try:
        await asyncio.wait_for(ready.wait(), 5)
        code_b = (
            "import os\n"
            "for d in ('/work', '/tmp', '/dev/shm'):\n"
            "    print(d, sorted(os.listdir(d)))\n"
        )
        result, chunks = await run_py(executor, code_b, owner="files-b")
        out = text(chunks, "stdout")
        assert result.status == "ok"
        assert out == "/work ['main.py']\n/tmp []\n/dev/shm []\n", out
    finally:
        run_a.stop()
        await run_a.wait()
    # and A's own next run does not see them either
    await assert_next_run_clean(executor, "files-a")


async def test_writing_outside_the_workspace_is_refused(executor: Executor) -> None:
    code = (
        "for path in ('/etc/evil', '/usr/bin/evil', '/evil', '/var/evil', '/home/evil',"
        " '/proc/sys/kernel/hostname', '/sys/fs/cgroup/memory/memory.limit_in_bytes'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print(path, 'WRITTEN')\n"
        "    except OSError as e:\n"
        "        print(path, 'refused', e.strerror)\n"
    )
    result, chunks = await run_py(executor, code, owner="vandal")
    out = text(chunks, "stdout")
    assert result.status == "ok", (result, text(chunks))
    assert "WRITTEN" not in out
    assert out.count("refused") == 7
    assert "Read-only file system" in out


async def test_symlinks_to_host_paths_reach_only_the_container(executor: Executor) -> None:
    host_hostname = socket.gethostname()
    code = (
        "import os\n"
        "os.symlink('/etc/hostname', 'h')\n"
        "os.symlink('/etc/passwd', 'p')\n"
        "os.symlink('/var/run/docker.sock', 'd')\n"
        "print('hostname:', open('h').read().strip())\n"
        "print('runner in passwd:', 'runner:x:10001' in open('p').read())\n"
        "print('docker.sock:', os.path.exists('d'))\n"
        "print('root:', sorted(os.listdir('/')))\n"
    )
    result, chunks = await run_py(executor, code, owner="linker")
    out = text(chunks, "stdout")
    assert result.status == "ok", (result, text(chunks))
    assert "hostname: sandbox\n" in out
    assert host_hostname != "sandbox"  # so the line above read the container's file
    assert "runner in passwd: True" in out, "the symlink must resolve inside the container"
    assert "docker.sock: False" in out
    # job files cannot be links, nor point outside: only plain relative paths are accepted
    with pytest.raises(JobError):
        await executor.start_run(
            Job("python", {"../../etc/passwd": ""}), owner="x", on_output=print
        )


async def test_runs_as_an_unprivileged_user_without_capabilities(executor: Executor) -> None:
    code = (
        "import os\n"
        "status = open('/proc/self/status').read()\n"
        "print(os.getuid(), os.getgid())\n"
        "print([l.split()[1] for l in status.splitlines() if l.startswith(('CapEff', 'CapBnd', "
        "'NoNewPrivs', 'Seccomp:'))])\n"
    )
    result, chunks = await run_py(executor, code, owner="alice")
    lines = text(chunks, "stdout").splitlines()
    assert result.status == "ok"
    assert lines[0] == "10001 10001"
    assert lines[1] == "['0000000000000000', '0000000000000000', '1', '2']", lines[1]


async def test_killing_the_agent_ends_the_run_and_the_owner_can_run_again(
    executor: Executor,
) -> None:
    code = "import os, signal\nprint('killing everything', flush=True)\nos.kill(-1, signal.SIGKILL)"
    result, chunks, took = await timed(executor, code, "killer")
    # the program killed its supervisor: what it printed just before may be lost with it
    assert "killing everything\n".startswith(text(chunks))
    assert result.status == "error", result
    assert "supervisor in the container ended" in result.message, result.message
    assert took < 3.0
    await assert_next_run_clean(executor, "killer")


async def test_executor_still_serves_everyone_afterwards(executor: Executor) -> None:
    results = await asyncio.gather(
        *(run_py(executor, "print('fine')", owner=f"after-{i}") for i in range(4))
    )
    assert all(r.status == "ok" and text(c) == "fine\n" for r, c in results)
