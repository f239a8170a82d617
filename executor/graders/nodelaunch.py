"""Starts the JavaScript test runner as a process nobody of its uid can look into.

``python3 -I -S /tmp/.grader/nodelaunch.py --report /dev/fd/3 <test files>``,
started by the agent before any student code exists. Node cannot make itself
non-dumpable (no prctl), but the kernel does it for any program exec'd from a
file its user cannot read: this copies /usr/bin/node (a small launcher of
libnode) to an execute-only file and execs it. The runner and every process it
starts with ``process.execPath`` are then closed to ptrace and to
/proc/<pid>/{mem,fd,environ} of the same uid. The verdict reporter goes as a
data: URL, so no file is loaded after the student's code may have run.
"""

import base64
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = "/usr/bin/node"


def main(argv):
    if len(argv) < 2 or argv[0] != "--report":
        raise SystemExit("usage: nodelaunch.py --report /dev/fd/N TEST...")
    report, tests = argv[1], argv[2:]
    if report != "/dev/fd/3":  # noderunner.js takes the report from fd 3
        raise SystemExit(f"the report must be /dev/fd/3, not {report!r}")
    sealed = os.path.join(HERE, "node")
    src = os.open(NODE, os.O_RDONLY)
    dst = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
    try:
        while True:
            block = os.read(src, 1 << 20)
            if not block:
                break
            os.write(dst, block)
        os.fchmod(dst, 0o100)  # execute only: not readable, so not dumpable once exec'd
    finally:
        os.close(src)
        os.close(dst)
    with open(os.path.join(HERE, "reporter.mjs"), "rb") as f:
        reporter = "data:text/javascript;base64," + base64.b64encode(f.read()).decode()
    args = [
        sealed,
        "--test-reporter=" + reporter,
        "--test-reporter-destination=stdout",  # it writes on the report descriptor itself
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        os.path.join(HERE, "noderunner.js"),
        *tests,
    ]
    os.execve(sealed, args, os.environ)


if __name__ == "__main__":
    main(sys.argv[1:])
