"""The run supervisor inside each container (stdlib only; Python 3.9+).

The executor starts it once per container, as the runner user, with one
``docker exec -i ... python3 -I -S -c <this file>``: the exec's stdin carries
the executor's requests and its stdout the agent's answers, so a run costs no
``docker exec`` of its own (a Docker exec takes about 60 ms here; a fork from
this process a few).

Frames both ways: 1 byte kind, 4 bytes big-endian length, payload.

executor -> agent            agent -> executor
  P  ping                      H  hello (JSON: pid, uid), the answer to P
  R  run (JSON request)        O  stdout bytes of the program (<= chunk)
  I  stdin bytes               E  stderr bytes of the program (<= chunk)
  C  close stdin               X  the run is over (JSON result), the
  K  kill the run                 workspace is wiped and no process is left

A graded run (see graders/) also gets private files, written under
/tmp/.grader (absolute paths in the request's files: the harness and the
tests, which the runner deletes before any student code starts), and a report
channel: ``report`` is ``/dev/fd/3``, the write end of a pipe that only the
test runner holds; what comes out of it is the X frame's ``report``. The agent
makes itself non-dumpable at start, so no process of its uid can ptrace it or
open its /proc/<pid>/fd (its pipe to the executor, the report's read end).

Between runs nothing of the runner user is left: after the program ends, every
process of the uid but this one is SIGKILLed (``kill(-1)``), and /work, /tmp,
/dev/shm and the POSIX message queues are emptied; ``clean`` in X says whether
that succeeded (if not, the executor destroys the container). The program runs
with ``oom_score_adj`` 1000 so the kernel's OOM killer picks it, not this
process. Everything this process says is treated by the executor as untrusted:
it runs as the same user as the program.
"""

import ctypes
import json
import os
import select
import signal
import stat
import struct
import sys
import time

HEADER = struct.Struct(">cI")
MAX_REQUEST = 64 * 1024 * 1024
MAX_REPORT = 1024 * 1024
GRADER_DIR = "/tmp/.grader"
REPORT_FD = 3
WIPE_DIRS = ("/work", "/tmp", "/dev/shm")
MQUEUE = "/dev/mqueue"
DRAIN_SECONDS = 1.0


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def send(kind, payload=b""):
    write_all(1, HEADER.pack(kind, len(payload)) + payload)


def send_json(kind, obj):
    send(
        kind, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    )


class Control:
    """Frames from the executor on fd 0."""

    def __init__(self):
        self.buf = bytearray()
        self.eof = False

    def fill(self):
        try:
            data = os.read(0, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self.eof = True
        self.buf += data

    def frames(self):
        out = []
        while len(self.buf) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.buf)
            if size > MAX_REQUEST:
                self.eof = True  # a broken peer: stop
                return out
            if len(self.buf) < HEADER.size + size:
                break
            out.append((kind, bytes(self.buf[HEADER.size : HEADER.size + size])))
            del self.buf[: HEADER.size + size]
        return out

    def next_frame(self):
        """Blocks until a frame arrives; None at EOF."""
        while True:
            frames = self.frames()
            if frames:
                first, rest = frames[0], frames[1:]
                # put the others back in front (rare: frames sent back to back)
                back = bytearray()
                for kind, payload in rest:
                    back += HEADER.pack(kind, len(payload)) + payload
                self.buf[:0] = back
                return first
            if self.eof:
                return None
            self.fill()


def others(uid, me):
    """Live processes of ``uid`` other than ``me`` (zombies do not count)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/" + name + "/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        state = uid_ok = None
        for line in status.split(b"\n"):
            if line.startswith(b"State:"):
                state = line.split()[1:2]
            elif line.startswith(b"Uid:"):
                uid_ok = int(line.split()[1]) == uid
        if uid_ok and state not in ([b"Z"], [b"X"]):
            found.append(int(name))
    return found


def kill_others():
    """SIGKILL every other process of this uid; True once none is left."""
    uid, me = os.getuid(), os.getpid()
    for attempt in range(200):
        try:
            os.kill(-1, signal.SIGKILL)  # all we may signal, except ourselves
        except (ProcessLookupError, PermissionError):
            pass
        if not others(uid, me):
            return True
        time.sleep(0.001 if attempt < 20 else 0.01)
    return False


def remove(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        for name in os.listdir(path):
            remove(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.unlink(path)


def wipe():
    """Empty the writable places; True if all of them are empty afterwards."""
    clean = True
    for top in WIPE_DIRS:
        try:
            names = os.listdir(top)
        except FileNotFoundError:
            continue
        for name in names:
            try:
                remove(os.path.join(top, name))
            except (OSError, RecursionError):
                clean = False
        try:
            if os.listdir(top):
                clean = False
        except OSError:
            clean = False
    try:
        for name in os.listdir(MQUEUE):
            try:
                os.unlink(os.path.join(MQUEUE, name))
            except OSError:
                clean = False
    except OSError:
        pass
    if sysv_ipc_left():
        try:
            pid = os.posix_spawn("/usr/bin/ipcrm", ["ipcrm", "-a"], {})
            os.waitpid(pid, 0)
        except OSError:
            pass
        clean = clean and not sysv_ipc_left()
    return clean


def sysv_ipc_left():
    uid = str(os.getuid())
    for kind in ("shm", "msg", "sem"):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            # key id perms ... uid is the 8th column for shm/msg and the 5th for sem
            if uid in cols[4:9]:
                return True
    return False


def cleanup():
    return kill_others() and wipe()


def read_int(path, key=None):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        if key is None:
            return int(text.split()[0])
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (ValueError, IndexError):
        return None
    return None


def cgroup_counters():
    """The container's own cgroup counters, as seen from inside (v1 or v2)."""
    oom = read_int("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")
    if oom is None:
        oom = read_int("/sys/fs/cgroup/memory.events", "oom_kill")
    pids_max = read_int("/sys/fs/cgroup/pids/pids.events", "max")
    if pids_max is None:
        pids_max = read_int("/sys/fs/cgroup/pids.events", "max")
    cpu = read_int("/sys/fs/cgroup/cpuacct/cpuacct.usage")
    if cpu is None:
        usec = read_int("/sys/fs/cgroup/cpu.stat", "usage_usec")
        cpu = usec * 1000 if usec is not None else None
    return {"oom_kill": oom, "pids_max": pids_max, "cpu_ns": cpu}


def safe_path(rel):
    if rel.startswith(GRADER_DIR + "/"):  # a graded run's private file
        rest = rel[len(GRADER_DIR) + 1 :]
        if not rest or any(p in ("", ".", "..") for p in rest.split("/")) or "\0" in rest:
            raise ValueError("bad path " + repr(rel))
        return rel
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in rel:
        raise ValueError("bad path " + repr(rel))
    return os.path.join("/work", *parts)


def write_files(files):
    for rel, text in files.items():
        path = safe_path(rel)
        private = path.startswith(GRADER_DIR + "/")
        os.makedirs(os.path.dirname(path), mode=0o700 if private else 0o777, exist_ok=True)
        mode = 0o600 if private else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            write_all(fd, text.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)


def spawn(argv, env, stdin_r, out_w, err_w, report_w=None):
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: never returns
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        os.setsid()
        os.dup2(stdin_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if report_w is not None:
            os.dup2(report_w, REPORT_FD)
        os.closerange(REPORT_FD if report_w is None else REPORT_FD + 1, 1 << 16)
        os.chdir("/work")
        os.umask(0o022)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvpe(argv[0], argv, env)
    except BaseException as exc:
        try:
            os.write(2, ("cannot start " + str(argv[0]) + ": " + str(exc) + "\n").encode())
        finally:
            os._exit(127)
    os._exit(127)


def run(ctl, req):
    started = time.monotonic()
    before = cgroup_counters()
    result = {"exit_code": None, "signal": None, "error": None, "truncated": False}
    try:
        write_files(req.get("files", {}))
    except (OSError, ValueError) as exc:
        reason = "no space left" if getattr(exc, "errno", None) == 28 else str(exc)
        result["error"] = "could not write the files into the workspace: " + reason
        result["clean"] = cleanup()
        send_json(b"X", result)
        return

    chunk = int(req.get("chunk", 16384))
    cap = int(req.get("output_bytes", 1 << 20))
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    t0 = time.monotonic()
    report = req.get("report")
    report_r = report_w = None
    if report:
        if report != "/dev/fd/" + str(REPORT_FD):
            result["error"] = "bad request: the report must be /dev/fd/" + str(REPORT_FD)
            for fd in (stdin_r, stdin_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            result["clean"] = cleanup()
            send_json(b"X", result)
            return
        report_r, report_w = os.pipe()
    report_buf = bytearray()
    report_over = False
    pid = spawn(req["argv"], req["env"], stdin_r, out_w, err_w, report_w)
    for fd in (stdin_r, out_w, err_w, report_w):
        if fd is not None:
            os.close(fd)
    for fd in (stdin_w, out_r, err_r):
        os.set_blocking(fd, False)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None

    pending = bytearray(req.get("stdin", "").encode("utf-8", "surrogateescape"))
    close_stdin = bool(req.get("close_stdin"))
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    if report_r is not None:
        os.set_blocking(report_r, False)
        poller.register(report_r, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    streams = {out_r: b"O", err_r: b"E"}
    sent = 0
    status = rusage = None
    watching_stdin = False

    def stdin_wanted():
        nonlocal stdin_w, watching_stdin
        if stdin_w is None:
            return
        if pending:
            if not watching_stdin:
                poller.register(stdin_w, select.POLLOUT)
                watching_stdin = True
        else:
            if watching_stdin:
                poller.unregister(stdin_w)
                watching_stdin = False
            if close_stdin:
                os.close(stdin_w)
                stdin_w = None

    def drop_stdin():
        nonlocal stdin_w, watching_stdin
        if stdin_w is not None:
            if watching_stdin:
                poller.unregister(stdin_w)
                watching_stdin = False
            os.close(stdin_w)
            stdin_w = None
        pending.clear()

    def forward(fd):
        nonlocal sent
        try:
            data = os.read(fd, chunk)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            poller.unregister(fd)
            os.close(fd)
            del streams[fd]
            return
        if sent > cap:
            return  # over the cap: read and drop until the program is gone
        sent += len(data)
        send(streams[fd], data)
        if sent > cap:
            result["truncated"] = True
            kill_others()

    def read_report():
        nonlocal report_r, report_over
        try:
            data = os.read(report_r, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            poller.unregister(report_r)
            os.close(report_r)
            report_r = None
            return
        room = MAX_REPORT - len(report_buf)
        if len(data) > room:
            report_over = True
        report_buf.extend(data[: max(room, 0)])

    stdin_wanted()
    deadline = None
    while True:
        if status is None and pidfd is None:
            try:
                got, st, ru = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                got, st, ru = pid, 0, None
            if got:
                status, rusage = st, ru
        if status is not None:
            if deadline is None:
                # the program is over: nothing of it may linger, then drain its pipes
                kill_others()
                drop_stdin()
                deadline = time.monotonic() + DRAIN_SECONDS
            if (not streams and report_r is None) or time.monotonic() > deadline:
                break
        timeout = None
        if status is not None:
            timeout = max(0, int((deadline - time.monotonic()) * 1000))
        elif pidfd is None:
            timeout = 20
        for fd, ev in poller.poll(timeout):
            if fd == 0:
                ctl.fill()
                for kind, payload in ctl.frames():
                    if kind == b"I" and stdin_w is not None:
                        pending.extend(payload)
                    elif kind == b"C":
                        close_stdin = True
                    elif kind == b"K":
                        kill_others()
                if ctl.eof:  # the executor is gone: leave nothing behind
                    kill_others()
                    os._exit(0)
                stdin_wanted()
            elif fd in streams:
                forward(fd)
            elif fd == report_r and report_r is not None:
                read_report()
            elif fd == stdin_w:
                if ev & (select.POLLERR | select.POLLHUP):
                    drop_stdin()
                    continue
                try:
                    n = os.write(stdin_w, pending[:65536])
                    del pending[:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:  # EPIPE: the program closed its stdin
                    drop_stdin()
                    continue
                stdin_wanted()
            elif fd == pidfd and status is None:
                _, status, rusage = os.wait4(pid, 0)
                poller.unregister(pidfd)
                os.close(pidfd)
                pidfd = -1
    wall_ms = (time.monotonic() - t0) * 1000
    for fd in list(streams):
        os.close(fd)
    if report_r is not None:
        os.close(report_r)
    drop_stdin()
    if pidfd not in (None, -1):
        os.close(pidfd)

    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    else:
        result["exit_code"] = os.WEXITSTATUS(status)
    result["wall_ms"] = wall_ms
    if rusage is not None:
        result["cpu_ms"] = (rusage.ru_utime + rusage.ru_stime) * 1000
        result["maxrss_kb"] = rusage.ru_maxrss
    after = cgroup_counters()
    result["cgroup_before"] = before
    result["cgroup_after"] = after
    if report:
        if report_over:
            result["report_error"] = "the report is larger than " + str(MAX_REPORT) + " bytes"
        elif report_buf:
            result["report"] = report_buf.decode("utf-8", "replace")
        else:
            result["report_error"] = "nothing came on the report channel"
    result["clean"] = cleanup()
    result["total_ms"] = (time.monotonic() - started) * 1000
    send_json(b"X", result)


def non_dumpable():
    """No ptrace and no /proc/<pid>/{mem,fd,environ} of this process for its own uid."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        return False


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sealed = non_dumpable()
    ctl = Control()
    clean = cleanup()
    while True:
        frame = ctl.next_frame()
        if frame is None:
            kill_others()
            return
        kind, payload = frame
        if kind == b"P":
            send_json(
                b"H",
                {
                    "pid": os.getpid(),
                    "uid": os.getuid(),
                    "clean": clean,
                    "sealed": sealed,
                    "python": sys.version.split()[0],
                },
            )
        elif kind == b"R":
            try:
                req = json.loads(payload)
            except ValueError as exc:
                send_json(b"X", {"error": "bad request: " + str(exc), "clean": cleanup()})
                continue
            run(ctl, req)
        # I, C, K between runs: nothing to do


if __name__ == "__main__":
    main()
