"""Starts the student's code in a graded run, fenced off from the test runner.

Run as ``python3 -I -S -c <this file> <config JSON> -- <argv...>`` by a test
runner (never from a file the student could have changed: the runner holds
this source in memory from before any student code existed). Before the
student's program is exec'd it:

- becomes the leader of a new session (the runner kills that group on a timeout);
- keeps only stdin/stdout/stderr and the channel to the runner (moved to fd 3;
  none for a whole program run by ``run_program``):
  the report pipe and every other descriptor of the runner are closed;
- installs a seccomp filter, inherited by every process the code starts, that
  refuses (EPERM) ``ptrace``, ``process_vm_readv/writev``, the ``pidfd_*``
  calls, ``fcntl(F_SETOWN*)``/``ioctl(FIOSETOWN)`` (SIGIO aimed at another
  process), and ``kill``/``tkill``/``tgkill``/``rt_(tg)sigqueueinfo``/
  ``prlimit64`` aimed at any process but the student's own (pid 0, its own
  group, or pids from its own onwards, never the runner's or the agent's).

With the runner being non-dumpable (no /proc/<pid>/mem, fd or environ for the
same uid), this is what keeps the code from touching the verdict. Stdlib only.
"""

import ctypes
import json
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1
RET_KILL_PROCESS = 0x80000000
LD_ABS_W = 0x20
JEQ = 0x15
JGE = 0x35
RET = 0x06

# (audit arch, syscall numbers)
ARCHES = {
    "x86_64": (
        0xC000003E,
        {
            "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297, "prlimit64": 302, "ptrace": 101,
            "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_open": 434,
            "pidfd_send_signal": 424, "pidfd_getfd": 438, "fcntl": 72, "ioctl": 16,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240, "prlimit64": 261, "ptrace": 117,
            "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_open": 434,
            "pidfd_send_signal": 424, "pidfd_getfd": 438, "fcntl": 25, "ioctl": 29,
        },
    ),
}  # fmt: skip
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902


class Program:
    """A tiny classic-BPF assembler with forward labels."""

    def __init__(self):
        self.code = []  # [opcode, jt, jf, k] with jt/jf possibly label names
        self.labels = {}

    def op(self, code, k=0, jt=0, jf=0):
        self.code.append([code, jt, jf, k])

    def label(self, name):
        self.labels[name] = len(self.code)

    def assemble(self):
        out = b""
        for i, (code, jt, jf, k) in enumerate(self.code):
            jt = self.labels[jt] - i - 1 if isinstance(jt, str) else jt
            jf = self.labels[jf] - i - 1 if isinstance(jf, str) else jf
            if not (0 <= jt < 256 and 0 <= jf < 256):
                raise ValueError("jump too far")
            out += struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)
        return out


def build_filter(minpid, protect):
    machine = platform.machine()
    if machine not in ARCHES:
        raise OSError("no seccomp filter for " + machine)
    arch, nr = ARCHES[machine]
    p = Program()
    p.op(LD_ABS_W, 4)  # seccomp_data.arch
    p.op(JEQ, arch, 0, "kill")
    p.op(LD_ABS_W, 0)  # seccomp_data.nr
    p.op(JGE, 0x40000000, "deny", 0)  # x32 ABI numbers
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open",
                 "pidfd_send_signal", "pidfd_getfd"):  # fmt: skip
        p.op(JEQ, nr[name], "deny", 0)
    for name in ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64"):
        p.op(JEQ, nr[name], "target", 0)
    p.op(JEQ, nr["fcntl"], "fcntl", 0)
    p.op(JEQ, nr["ioctl"], "ioctl", 0)
    p.op(RET, RET_ALLOW)
    # the first argument is a pid_t: its low 32 bits (little-endian) decide
    p.label("target")
    p.op(LD_ABS_W, 16)
    p.op(JEQ, 0, "allow", 0)  # itself / its own process group
    p.op(JEQ, (-minpid) & 0xFFFFFFFF, "allow", 0)  # its own session's group
    for pid in protect:
        p.op(JEQ, pid, "deny", 0)
    p.op(JGE, 0x80000000, "deny", 0)  # -1 and other groups
    p.op(JGE, minpid, "allow", "deny")
    p.label("fcntl")
    p.op(LD_ABS_W, 24)
    p.op(JEQ, F_SETOWN, "deny", 0)
    p.op(JEQ, F_SETOWN_EX, "deny", 0)
    p.op(JEQ, F_SETSIG, "deny", "allow")
    p.label("ioctl")
    p.op(LD_ABS_W, 24)
    p.op(JEQ, FIOSETOWN, "deny", 0)
    p.op(JEQ, SIOCSPGRP, "deny", "allow")
    p.label("allow")
    p.op(RET, RET_ALLOW)
    p.label("deny")
    p.op(RET, RET_EPERM)
    p.label("kill")
    p.op(RET, RET_KILL_PROCESS)
    return p.assemble()


def install_filter(minpid, protect):
    code = build_filter(minpid, protect)
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(code) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]  # fmt: skip
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main():
    config = json.loads(sys.argv[1])
    argv = sys.argv[3:]
    os.setsid()
    channel = config.get("fd")
    if channel is None:  # a whole program (run_program): stdin/stdout/stderr only
        os.closerange(3, 1 << 16)
    else:
        channel = int(channel)
        high = os.dup(channel) if channel != 3 else channel
        if high != 3:
            os.dup2(high, 3)
            os.close(high)
        os.set_inheritable(3, True)
        os.closerange(4, 1 << 16)
    me = os.getpid()
    install_filter(me, [int(p) for p in config["protect"] if int(p) > 0 and int(p) != me])
    os.chdir(config.get("cwd", "/work"))
    os.execvpe(argv[0], argv, os.environ)


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:
        os.write(2, ("the grader could not start the code: " + repr(exc) + "\n").encode())
        os._exit(126)
