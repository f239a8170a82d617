"""A student cannot forge their grade (issue 8): hostile submissions against the real sandbox.

Each hostile submission carries a wrong solution plus an attack on the verdict
that works when the tests import the code into the test runner's own process
(the design before executor/graders/): fake reports written everywhere,
pytest/assert/node:test patched at import, exits at import, a fake summary on
stdout, signals and ptrace aimed at the runner, the tests' expected values read
from disk or memory, objects that claim to equal anything. Every one must score
0, and a correct solution must still score 1.
"""

from __future__ import annotations

import json
import secrets

import pytest
import pytest_asyncio

from executor import Executor, Job, Result
from executor.grading import ReportError, parse_outcomes

from .conftest import make_config, text

pytestmark = pytest.mark.asyncio(loop_scope="module")

# -- python ---------------------------------------------------------------------------------

SECRET = "s3cr3t-" + secrets.token_hex(8)
PY_TESTS = {
    "test_main.py": (
        "import main\n"
        "from main import sum_list\n\n"
        f"SECRET = {SECRET!r}\n\n"
        "def test_empty():\n    assert sum_list([]) == 0\n\n"
        "def test_few():\n    assert sum_list([1, 2, 3, 4]) == 10\n\n"
        "def test_negative():\n    assert sum_list([-5, 5, -1]) == -1\n\n"
        "def test_secret():\n    assert main.guess() == SECRET\n"
    )
}
PY_CORRECT = (
    "def sum_list(numbers):\n    return sum(numbers)\n\ndef guess():\n    return 'no idea'\n"
)
PY_WRONG = "def sum_list(numbers):\n    return None\n\ndef guess():\n    return 'no idea'\n"

FAKE_VERDICT = (
    '{"grader":"opencode-live","version":1,"complete":true,"tests":['
    '{"name":"test_main.py::test_empty","passed":true,"message":""},'
    '{"name":"test_main.py::test_few","passed":true,"message":""},'
    '{"name":"test_main.py::test_negative","passed":true,"message":""},'
    '{"name":"test_main.py::test_secret","passed":true,"message":""}]}'
)
FAKE_JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" '
    'failures="0" skipped="0" tests="4"><testcase classname="test_main" name="test_empty" '
    'file="test_main.py"/><testcase classname="test_main" name="test_few" file="test_main.py"/>'
    '<testcase classname="test_main" name="test_negative" file="test_main.py"/><testcase '
    'classname="test_main" name="test_secret" file="test_main.py"/></testsuite></testsuites>'
)
FAKE_TAP = "TAP version 13\\nok 1 - a\\nok 2 - b\\nok 3 - c\\nok 4 - d\\n1..4\\n"
FAKE_SUMMARY = "....                                     [100%]\\n4 passed in 0.01s\\n"

PY_PRELUDE = f"""
import os, sys
VERDICT = {FAKE_VERDICT!r}
JUNIT = {FAKE_JUNIT!r}
TAP = "{FAKE_TAP}"
SUMMARY = "{FAKE_SUMMARY}"

def say(*parts):
    os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())

def sum_list(numbers):
    return None

def guess():
    return "no idea"

def forge():
    # a passing report where the runner reads it, in its format (its command line tells)
    args = []
    for pid in ("self", str(os.getppid())):
        try:
            args += open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            pass
    junit = [a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"--junitxml=")]
    payload = (JUNIT if junit else VERDICT).encode()
    for path in junit + ["/dev/fd/3", f"/proc/{{os.getppid()}}/fd/3", "/tmp/.grader/report"]:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, payload)
            os.close(fd)
            return
        except OSError:
            pass
"""

PY_SPRAY = """
def spray():
    targets = set()
    for top in ("/tmp", "/work", "/dev/shm"):
        for root, dirs, files in os.walk(top):
            targets.update(os.path.join(root, f) for f in files)
            for name in ("report.xml", "junit.xml", "report.tap", "report.json", "verdict.json"):
                targets.add(os.path.join(root, name))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                targets.update(f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
    targets.update(f"/dev/fd/{fd}" for fd in range(64))
    written = 0
    for path in sorted(targets):
        for payload in (VERDICT, JUNIT, TAP):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o644)
                try:
                    os.write(fd, payload.encode())
                    written += 1
                finally:
                    os.close(fd)
            except OSError:
                pass
    for fd in range(64):
        try:
            os.write(fd, VERDICT.encode())
        except OSError:
            pass
    for d in ("/tmp/.grader", "/tmp/.grader/tests", "/work"):
        for name in ("conftest.py", "pyrunner.py", "pytest.py"):
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, name), "w") as f:
                    f.write("import os\\nos.write(3, VERDICT.encode())\\n")
            except OSError:
                pass
    say("sprayed", written)

spray()

def sum_list(numbers):
    spray()
    return None
"""

PY_PATCH = """
import builtins
patched = []
try:
    import _pytest.reports, _pytest.runner, pytest
    _pytest.reports.TestReport.passed = property(lambda self: True)
    _pytest.reports.TestReport.failed = property(lambda self: False)
    _pytest.reports.BaseReport.passed = property(lambda self: True)
    _pytest.runner.call_and_report = lambda item, when, log=True, **kw: None
    pytest.fail = lambda *a, **k: None
    patched.append("pytest")
except Exception as exc:
    say("pytest not patched:", exc)
builtins.AssertionError = type("AssertionError", (Exception,), {})
import unittest
unittest.TestCase.assertEqual = lambda *a, **k: None
unittest.TestCase.failureException = type("Never", (Exception,), {})
for name, module in list(sys.modules.items()):
    if "pytest" in name or name in ("test_main", "main"):
        patched.append(name)
say("patched", patched)
"""

PY_ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __hash__(self):
        return 0

def sum_list(numbers):
    return Anything()

def guess():
    return Anything()
"""

PY_EXIT_AT_IMPORT = "forge()\nprint(SUMMARY, flush=True)\nos._exit(0)\n"
PY_SYS_EXIT_AT_IMPORT = "forge()\nprint(SUMMARY, flush=True)\nsys.exit(0)\n"
PY_EXIT_IN_CALL = """
def sum_list(numbers):
    forge()
    print(SUMMARY, flush=True)
    os.write(1, SUMMARY.encode())
    os._exit(0)

def guess():
    sys.exit(0)
"""
PY_PRINT = """
for payload in (SUMMARY, VERDICT, JUNIT, TAP):
    print(payload, flush=True)
    os.write(1, payload.encode())
    os.write(2, payload.encode())

def sum_list(numbers):
    for payload in (SUMMARY, VERDICT, JUNIT, TAP):
        print(payload)
        os.write(1, payload.encode())
    return None
"""

PY_SIGNALS = """
import ctypes, fcntl, resource, signal, socket, subprocess
me = os.getpid()
refused, done = [], []

def attempt(what, fn):
    try:
        fn()
        done.append(what)
    except OSError as exc:
        refused.append((what, exc.errno))

def attack():
    runner = os.getppid()
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) < me]
    for sig in (signal.SIGSTOP, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGKILL):
        attempt(f"kill runner {sig}", lambda: os.kill(runner, sig))
        attempt(f"kill -1 {sig}", lambda: os.kill(-1, sig))
        for pid in pids:
            attempt(f"kill {pid} {sig}", lambda: os.kill(pid, sig))
            attempt(f"killpg {pid} {sig}", lambda: os.kill(-pid, sig))
    libc = ctypes.CDLL(None, use_errno=True)
    def raw(nr, *args):
        if libc.syscall(nr, *args) != 0:
            raise OSError(ctypes.get_errno(), "syscall")
    attempt("syscall kill", lambda: raw(62, runner, 9))
    attempt("syscall tgkill", lambda: raw(234, runner, runner, 9))
    attempt("syscall tkill", lambda: raw(200, runner, 9))
    attempt("ptrace attach", lambda: raw(101, 16, runner, 0, 0))
    attempt("ptrace seize", lambda: raw(101, 0x4206, runner, 0, 0))
    attempt("pidfd_open", lambda: os.pidfd_open(runner))
    attempt("prlimit", lambda: resource.prlimit(runner, resource.RLIMIT_CPU, (0, 0)))
    a, b = socket.socketpair()
    attempt("F_SETOWN", lambda: fcntl.fcntl(a.fileno(), fcntl.F_SETOWN, runner))
    def shell_kill():
        for sig in ("-9", "-STOP"):
            done = subprocess.run(["sh", "-c", f"kill {sig} -1"], capture_output=True)
            if done.returncode == 0:
                return
        raise OSError(1, "kill -1 refused")
    attempt("kill -9 -1 (shell)", shell_kill)
    say("refused", len(refused), "done", done)

attack()

def sum_list(numbers):
    attack()
    return None
"""

PY_SECRETS = """
import ctypes, re
PATTERN = re.compile(rb"s3cr3t-[0-9a-f]{16}")
found = set()

def look(data):
    found.update(m.decode() for m in PATTERN.findall(data or b""))

def read(path, size=1 << 22):
    try:
        with open(path, "rb") as f:
            look(f.read(size))
    except OSError:
        pass

def search():
    for top in ("/tmp", "/work", "/dev/shm", "/proc/self/cwd"):
        for root, dirs, files in os.walk(top):
            for name in files:
                read(os.path.join(root, name))
    me = os.getpid()
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me]:
        for part in ("cmdline", "environ", "cwd/test_main.py", "root/tmp/.grader/tests/x.py"):
            read(f"/proc/{pid}/{part}")
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                read(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
        try:
            maps = open(f"/proc/{pid}/maps").read().splitlines()
            with open(f"/proc/{pid}/mem", "rb", 0) as mem:
                for line in maps:
                    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                    try:
                        mem.seek(lo)
                        look(mem.read(min(hi - lo, 1 << 24)))
                    except (OSError, ValueError, OverflowError):
                        pass
        except OSError:
            pass
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.restype = ctypes.c_long
        if libc.ptrace(16, int(pid), 0, 0) == 0:  # PTRACE_ATTACH
            say("ATTACHED", pid)

def guess():
    search()
    value = sorted(found)[0] if found else "nothing found"
    say("GUESS:" + value)
    return value

search()
say("GUESS-AT-IMPORT:" + ",".join(sorted(found)))
"""

PY_DAEMON = """
import signal, time

def daemon():
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            for fd in range(3, 16):
                try:
                    out = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
                    os.write(out, VERDICT.encode())
                    os.close(out)
                except OSError:
                    pass
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
    os._exit(0)

daemon()

def sum_list(numbers):
    daemon()
    return None
"""

PY_PLANT = """
PLANTED = (
    "import os\\n"
    "for fd in range(3, 10):\\n"
    "    try:\\n"
    "        os.write(fd, " + repr(VERDICT) + ".encode())\\n"
    "    except OSError:\\n"
    "        pass\\n"
    "os._exit(0)\\n"
)

def plant():
    names = ["difflib", "pprint", "textwrap", "inspect", "tokenize", "sitecustomize",
             "usercustomize", "conftest", "_pytest", "pytest", "json", "linecache"]
    for folder in ("/work", "/tmp", "/tmp/.grader", "/tmp/.grader/tests", "/dev/shm",
                   "/work/.local/lib/python3.11/site-packages"):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(folder, name + ".py"), "w") as f:
                    f.write(PLANTED)
            except OSError:
                pass
    say("planted")

plant()

def guess():
    plant()
    return "a string unlike the secret, so that pytest diffs them"
"""

PY_HOSTILE = {
    "fake reports written everywhere": PY_SPRAY,
    "pytest, assert and unittest patched at import": PY_PATCH,
    "objects that equal anything": PY_ALWAYS_EQUAL,
    "os._exit(0) at import": PY_EXIT_AT_IMPORT,
    "sys.exit(0) at import": PY_SYS_EXIT_AT_IMPORT,
    "exit in the middle of a call": PY_EXIT_IN_CALL,
    "a fake report printed on stdout and stderr": PY_PRINT,
    "signals, ptrace, pidfd, prlimit and SIGIO aimed at the runner": PY_SIGNALS,
    "the tests' expected values looked for on disk and in memory": PY_SECRETS,
    "a daemon that outlives the calls": PY_DAEMON,
    "modules planted where the runner could import them": PY_PLANT,
}


#: Attacks that do forge a grade when the tests import the code into pytest's own process
#: (a language spec that runs pytest directly, as before executor/graders/).
FORGE_IN_PROCESS = [
    "os._exit(0) at import",
    "exit in the middle of a call",
    "objects that equal anything",
    "the tests' expected values looked for on disk and in memory",
]
IN_PROCESS_PYTEST = {
    "name": "python-in-process",
    "entry": "main.py",
    "run": ["python3", "{entry}"],
    "env": {"PYTHONDONTWRITEBYTECODE": "1"},
    "test": {
        "command": ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                    "junit_family=xunit1", "--junitxml={report}", "{tests}"],
        "report": "junit",
        "env": {"PYTHONPATH": "{workdir}"},
    },
}  # fmt: skip
IN_PROCESS_NODE = {
    "name": "javascript-in-process",
    "entry": "main.js",
    "run": ["node", "{entry}"],
    "test": {
        "command": ["node", "--test", "--test-reporter=tap", "--test-reporter-destination={report}",
                    "{tests}"],
        "report": "tap",
    },
}  # fmt: skip


def py_job(code: str, language: str = "python") -> Job:
    return Job(language, {"main.py": code}, tests=PY_TESTS)


def assert_zero(result: Result, output: str) -> None:
    assert result.score == 0.0, (result, output)
    assert not any(t.passed for t in result.tests or []), (result, output)


async def test_python_correct_solution_scores_one(executor: Executor) -> None:
    result, chunks = await executor.run(py_job(PY_CORRECT), owner="forger")
    assert result.status == "ok", (result, text(chunks))
    assert [t.passed for t in result.tests or []] == [True, True, True, False]
    assert result.score == pytest.approx(3 / 4)
    # the same tests without the secret one: a full score
    tests = {"test_main.py": PY_TESTS["test_main.py"].split("def test_secret")[0]}
    result, chunks = await executor.run(
        Job("python", {"main.py": PY_CORRECT}, tests=tests), owner="forger"
    )
    assert result.status == "ok" and result.score == 1.0, (result, text(chunks))
    assert result.message == "3 of 3 tests passed"


async def test_python_wrong_solution_scores_zero(executor: Executor) -> None:
    result, chunks = await executor.run(py_job(PY_WRONG), owner="forger")
    assert result.status == "ok", (result, text(chunks))
    assert len(result.tests or []) == 4
    assert_zero(result, text(chunks))


@pytest.mark.parametrize("attack", list(PY_HOSTILE), ids=list(PY_HOSTILE))
async def test_python_forgery_scores_zero(executor: Executor, attack: str) -> None:
    result, chunks = await executor.run(py_job(PY_PRELUDE + PY_HOSTILE[attack]), owner="forger")
    output = text(chunks)
    assert_zero(result, output)
    # the runner was not stopped, fooled or cut short: every test has its own outcome
    assert result.status == "ok", (result, output)
    assert [t.name.split("::")[-1] for t in result.tests or []] == [
        "test_empty",
        "test_few",
        "test_negative",
        "test_secret",
    ], (result, output)
    assert SECRET not in "".join(
        line for line in output.splitlines() if line.startswith(("GUESS", "ATTACHED"))
    ), output
    assert "ATTACHED" not in output, output


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def in_process(docker_ready: None, tmp_path_factory: pytest.TempPathFactory):
    """An executor whose extra language runs pytest on the code in its own process."""
    folder = tmp_path_factory.mktemp("languages")
    (folder / "in-process.json").write_text(json.dumps(IN_PROCESS_PYTEST))
    (folder / "in-process-node.json").write_text(json.dumps(IN_PROCESS_NODE))
    ex = Executor(make_config(warm=1, max_containers=4, languages_dir=folder))
    await ex.start()
    assert ex.available, ex.reason
    yield ex
    await ex.close()


@pytest.mark.parametrize("attack", FORGE_IN_PROCESS, ids=FORGE_IN_PROCESS)
async def test_the_same_attacks_forge_a_runner_that_imports_the_code(
    in_process: Executor, attack: str
) -> None:
    """What the tests above guard against is real: the attack earns points in-process."""
    job = py_job(PY_PRELUDE + PY_HOSTILE[attack], language="python-in-process")
    result, chunks = await in_process.run(job, owner="forger")
    assert (result.score or 0.0) > 0.0, (result, text(chunks))


async def test_python_attacks_were_really_tried(executor: Executor) -> None:
    """The hostile code ran (its own evidence): the attacks were refused, not skipped."""
    result, chunks = await executor.run(py_job(PY_PRELUDE + PY_SIGNALS), owner="forger")
    output = text(chunks)
    assert "refused" in output and "done []" in output, output
    refused = int(output.split("refused ")[1].split()[0])
    assert refused >= 20, output
    result, chunks = await executor.run(py_job(PY_PRELUDE + PY_SECRETS), owner="forger")
    output = text(chunks)
    assert "GUESS:nothing found" in output, output
    assert result.score == 0.0


# -- javascript -----------------------------------------------------------------------------

JS_TESTS = {
    "main.test.js": (
        'const test = require("node:test");\n'
        'const assert = require("node:assert/strict");\n'
        'const { reverseWords, guess } = require("./main.js");\n'
        f"const SECRET = {SECRET!r};\n"
        'test("reverses the words", () => {\n'
        '  assert.equal(reverseWords("one two three"), "three two one");\n'
        "});\n"
        'test("collapses extra spaces", () => {\n'
        '  assert.equal(reverseWords("  a   b "), "b a");\n'
        "});\n"
        'test("knows the secret", () => {\n'
        "  assert.equal(guess(), SECRET);\n"
        "});\n"
    )
}
JS_CORRECT = (
    "function reverseWords(text) {\n"
    '  return text.split(/\\s+/).filter(Boolean).reverse().join(" ");\n'
    "}\n"
    'module.exports = { reverseWords, guess: () => "no idea" };\n'
)
JS_PRELUDE = f"""
const fs = require("fs");
const VERDICT = {FAKE_VERDICT!r};
const TAP = "{FAKE_TAP}";
const say = (...parts) => fs.writeSync(1, parts.join(" ") + "\\n");
module.exports = {{ reverseWords: () => null, guess: () => "no idea" }};
"""
JS_EXIT = """
console.log(TAP);
process.exit(0);
"""
JS_PATCH = """
const test = require("node:test");
const assert = require("node:assert");
const strict = require("node:assert/strict");
for (const a of [assert, strict]) {
  for (const k of Object.keys(a)) { try { a[k] = () => {}; } catch {} }
}
process.exit = () => {};
process.exitCode = 0;
process.reallyExit = () => {};
const Module = require("module");
const original = Module.prototype.require;
Module.prototype.require = function (id) {
  return id.includes("test") ? () => {} : original.call(this, id);
};
const always = {
  valueOf: () => 0, toString: () => "three two one", [Symbol.toPrimitive]: () => "b a",
};
module.exports = { reverseWords: () => always, guess: () => always };
console.log(TAP);
"""
JS_SPRAY = """
const spray = () => {
  let written = 0;
  const targets = new Set();
  const walk = (dir) => {
    let names = [];
    try { names = fs.readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = dir + "/" + n;
      targets.add(p);
      try { if (fs.statSync(p).isDirectory()) walk(p); } catch {}
    }
  };
  ["/tmp", "/work", "/dev/shm"].forEach(walk);
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) targets.add(`/proc/${pid}/fd/${fd}`);
    } catch {}
  }
  for (let fd = 0; fd < 64; fd++) targets.add(`/dev/fd/${fd}`);
  for (const p of targets) {
    for (const payload of [VERDICT, TAP]) {
      try {
        const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        fs.writeSync(fd, payload);
        fs.closeSync(fd);
        written++;
      } catch {}
    }
  }
  for (let fd = 0; fd < 64; fd++) { try { fs.writeSync(fd, VERDICT); } catch {} }
  say("sprayed", written);
};
spray();
module.exports = { reverseWords: () => { spray(); return null; }, guess: () => "no idea" };
"""
JS_KILL = """
const { execSync } = require("child_process");
const refused = [];
const done = [];
const attempt = (what, fn) => {
  try { fn(); done.push(what); } catch (e) { refused.push(what + ":" + e.code); }
};
const attack = () => {
  for (const sig of ["SIGSTOP", "SIGINT", "SIGTERM", "SIGKILL"]) {
    attempt("ppid " + sig, () => process.kill(process.ppid, sig));
    attempt("-1 " + sig, () => process.kill(-1, sig));
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).map(Number)) {
      if (pid < process.pid) attempt(pid + " " + sig, () => process.kill(pid, sig));
    }
  }
  attempt("kill -9 -1", () => execSync("kill -9 -1", { stdio: "ignore" }));
  say("refused", refused.length, "done", JSON.stringify(done));
};
attack();
module.exports = { reverseWords: () => { attack(); return null; }, guess: () => "no idea" };
"""
JS_SECRETS = """
const PATTERN = /s3cr3t-[0-9a-f]{16}/g;
const found = new Set();
const look = (buf) => { for (const m of String(buf).matchAll(PATTERN)) found.add(m[0]); };
const read = (p) => { try { look(fs.readFileSync(p, "latin1")); } catch {} };
const search = () => {
  const walk = (dir) => {
    let names = [];
    try { names = fs.readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = dir + "/" + n;
      try { if (fs.statSync(p).isDirectory()) walk(p); else read(p); } catch {}
    }
  };
  ["/tmp", "/work", "/dev/shm"].forEach(walk);
  if (found.size) return;
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
    if (Number(pid) >= process.pid) continue; // its own processes hold nothing of the tests
    for (const part of ["cmdline", "environ"]) read(`/proc/${pid}/${part}`);
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) read(`/proc/${pid}/fd/${fd}`);
    } catch {}
    try {
      const fd = fs.openSync(`/proc/${pid}/mem`, "r");
      for (const line of fs.readFileSync(`/proc/${pid}/maps`, "utf8").split("\\n")) {
        const [lo, hi] = (line.split(" ")[0] || "").split("-").map((x) => parseInt(x, 16));
        if (!(hi > lo)) continue;
        const buf = Buffer.alloc(Math.min(hi - lo, 1 << 22));
        try { fs.readSync(fd, buf, 0, buf.length, lo); look(buf.toString("latin1")); } catch {}
      }
    } catch {}
  }
};
search();
module.exports = {
  reverseWords: () => null,
  guess: () => {
    search();
    const v = [...found][0] || "nothing found";
    say("GUESS:" + v);
    return v;
  },
};
"""
JS_HOSTILE = {
    "process.exit(0) at require after a fake TAP": JS_EXIT,
    "node:test, assert, process.exit and require patched; always-equal objects": JS_PATCH,
    "fake reports written everywhere": JS_SPRAY,
    "signals aimed at the runner and kill -9 -1": JS_KILL,
    "the tests' expected values looked for on disk and in memory": JS_SECRETS,
}


JS_FORGE_IN_PROCESS = [
    "node:test, assert, process.exit and require patched; always-equal objects",
    "the tests' expected values looked for on disk and in memory",
]


def js_job(code: str) -> Job:
    return Job("javascript", {"main.js": code}, tests=JS_TESTS)


async def test_javascript_correct_solution_passes(executor: Executor) -> None:
    result, chunks = await executor.run(js_job(JS_CORRECT), owner="forger")
    assert result.status == "ok", (result, text(chunks))
    assert [t.passed for t in result.tests or []] == [True, True, False], result
    assert result.score == pytest.approx(2 / 3)


@pytest.mark.parametrize("attack", list(JS_HOSTILE), ids=list(JS_HOSTILE))
async def test_javascript_forgery_scores_zero(executor: Executor, attack: str) -> None:
    result, chunks = await executor.run(js_job(JS_PRELUDE + JS_HOSTILE[attack]), owner="forger")
    output = text(chunks)
    assert_zero(result, output)
    assert result.status == "ok", (result, output)
    assert result.tests, (result, output)
    guesses = [line for line in output.splitlines() if line.startswith("GUESS")]
    assert SECRET not in "".join(guesses), output


@pytest.mark.parametrize("attack", JS_FORGE_IN_PROCESS, ids=JS_FORGE_IN_PROCESS)
async def test_the_same_javascript_attacks_forge_node_test_in_process(
    in_process: Executor, attack: str
) -> None:
    """Against ``node --test`` requiring the code into the test's process, they earn points."""
    tests = {k: v.replace('"./main.js"', '"/work/main.js"') for k, v in JS_TESTS.items()}
    code = JS_PRELUDE + JS_HOSTILE[attack]
    job = Job("javascript-in-process", {"main.js": code}, tests=tests)
    result, chunks = await in_process.run(job, owner="forger")
    assert (result.score or 0.0) > 0.0, (result, text(chunks))


async def test_javascript_attacks_were_really_tried(executor: Executor) -> None:
    result, chunks = await executor.run(js_job(JS_PRELUDE + JS_KILL), owner="forger")
    output = text(chunks)
    assert "refused" in output and "done []" in output, output
    result, chunks = await executor.run(js_job(JS_PRELUDE + JS_SECRETS), owner="forger")
    assert "GUESS:nothing found" in text(chunks), text(chunks)
    assert result.score == 0.0


# -- what a test sees of the code stays natural ------------------------------------------------

CONTRACT_PY = """
import os

LIMIT = 3
calls = 0

class BadInput(ValueError):
    pass

def pair(a, b):
    return (a, b)

def counts(words):
    out = {}
    for w in words:
        out[len(w)] = out.get(len(w), 0) + 1
    return out

def unique(xs):
    return set(xs)

def check(x):
    if x < 0:
        raise BadInput(f"negative: {x}")
    if x == 0:
        raise ZeroDivisionError("zero")
    return 1 / x

def shout(name):
    print(f"HELLO {name.upper()}")

def sort_in_place(xs):
    xs.sort()

def count():
    global calls
    calls += 1
    return calls

def crash():
    os._exit(3)

def raw(data):
    return data[::-1]
"""
CONTRACT_PY_TESTS = """
import pytest
import main
from main import pair, counts, unique, check, shout, sort_in_place, count, crash, raw

def test_tuple():
    assert pair(1, "a") == (1, "a")

def test_int_keys():
    assert counts(["a", "bb", "cc"]) == {1: 1, 2: 2}

def test_set():
    assert unique([1, 1, 2]) == {1, 2}

def test_builtin_exception():
    with pytest.raises(ZeroDivisionError, match="zero"):
        check(0)

def test_own_exception_class():
    with pytest.raises(main.BadInput, match="negative: -1"):
        check(-1)
    with pytest.raises(ValueError):
        check(-2)

def test_value_and_float():
    assert main.LIMIT == 3
    assert check(4) == 0.25

def test_printing_is_captured(capsys):
    shout("ada")
    assert capsys.readouterr().out == "HELLO ADA\\n"

def test_in_place():
    xs = [3, 1, 2]
    sort_in_place(xs)
    assert xs == [1, 2, 3]

def test_state_between_calls():
    assert [count(), count()] == [1, 2]

def test_a_crash_fails_this_test():
    crash()

def test_and_the_next_call_starts_it_again():
    assert count() == 1 and raw(b"abc") == b"cba"

def test_objects_do_not_cross():
    with pytest.raises(TypeError, match="cannot be passed"):
        pair(object(), 1)
"""


async def test_python_tests_see_the_code_naturally(executor: Executor) -> None:
    tests = {
        "test_contract.py": "from helpers import LIMIT\n" + CONTRACT_PY_TESTS,
        "helpers.py": "LIMIT = 3\n",  # a helper module of the tests, next to them
    }
    job = Job("python", {"main.py": CONTRACT_PY}, tests=tests)
    result, chunks = await executor.run(job, owner="author")
    assert result.status == "ok", (result, text(chunks))
    failed = [t.name.split("::")[-1] for t in result.tests or [] if not t.passed]
    assert failed == ["test_a_crash_fails_this_test"], (result, text(chunks))
    (crashed,) = [t for t in result.tests or [] if not t.passed]
    assert "ended during the call (exit code 3)" in crashed.message
    assert len(result.tests or []) == 12


CONTRACT_JS = """
let calls = 0;
exports.LIMIT = 3;
exports.pair = (a, b) => [a, b];
exports.lengths = (words) => new Map(words.map((w) => [w, w.length]));
exports.check = (x) => {
  if (typeof x !== "number") throw new TypeError("not a number");
  if (x < 0) { const e = new Error("negative"); e.name = "BadInput"; throw e; }
  return 1 / x;
};
exports.later = async (x) => x * 2;
exports.sortInPlace = (xs) => { xs.sort((a, b) => a - b); };
exports.count = () => ++calls;
exports.big = () => 2n ** 70n;
"""
CONTRACT_JS_TESTS = """
const test = require("node:test");
const assert = require("node:assert/strict");
const main = require("./main");
const { pair, lengths, check, later, sortInPlace, count, big } = require("./main.js");

test("arrays and maps", () => {
  assert.deepEqual(pair(1, "a"), [1, "a"]);
  assert.deepEqual(lengths(["ab", "c"]), new Map([["ab", 2], ["c", 1]]));
});
test("builtin errors and named ones", () => {
  assert.throws(() => check("x"), TypeError);
  assert.throws(() => check(-1), { name: "BadInput", message: "negative" });
  assert.equal(check(0), Infinity);
});
test("async functions", async () => {
  assert.equal(await later(21), 42);
});
test("in place, state, values, bigint", () => {
  const xs = [3, 1, 2];
  sortInPlace(xs);
  assert.deepEqual(xs, [1, 2, 3]);
  assert.equal(count(), 1);
  assert.equal(count(), 2);
  assert.equal(main.LIMIT, 3);
  assert.equal(big(), 2n ** 70n);
});
test("functions do not cross", () => {
  assert.throws(() => pair(() => 1, 2), /cannot be passed/);
});
"""


async def test_javascript_tests_see_the_code_naturally(executor: Executor) -> None:
    job = Job("javascript", {"main.js": CONTRACT_JS}, tests={"contract.test.js": CONTRACT_JS_TESTS})
    result, chunks = await executor.run(job, owner="author")
    assert result.status == "ok", (result, text(chunks))
    assert [t.passed for t in result.tests or []] == [True] * 5, (result, text(chunks))


PROGRAM_PY = """
import os, signal
n = int(input())
for pid in (os.getppid(), -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("killed", pid)
    except OSError:
        pass
print(n * n)
"""
PROGRAM_PY_TESTS = """
from grader import run_program

def test_squares():
    done = run_program(stdin="7\\n")
    assert (done.returncode, done.stdout) == (0, "49\\n")

def test_bad_input_fails():
    assert run_program(stdin="x\\n").returncode != 0
"""
PROGRAM_JS = """
const lines = require("fs").readFileSync(0, "utf8").trim().split("\\n");
for (const pid of [process.ppid, -1]) {
  try { process.kill(pid, "SIGKILL"); console.log("killed", pid); } catch {}
}
console.log(lines.map(Number).reduce((a, b) => a + b, 0));
"""
PROGRAM_JS_TESTS = """
const test = require("node:test");
const assert = require("node:assert/strict");
const { runProgram } = require("grader");
test("sums the lines", () => {
  const done = runProgram({ stdin: "1\\n2\\n3\\n" });
  assert.equal(done.status, 0);
  assert.equal(done.stdout, "6\\n");
});
"""


async def test_programs_that_read_stdin_run_jailed_too(executor: Executor) -> None:
    """A test of a whole program (stdin in, stdout out) runs it as the code runs: it cannot
    kill the runner either."""
    job = Job("python", {"main.py": PROGRAM_PY}, tests={"test_program.py": PROGRAM_PY_TESTS})
    result, chunks = await executor.run(job, owner="author")
    assert result.status == "ok" and result.score == 1.0, (result, text(chunks))
    job = Job("javascript", {"main.js": PROGRAM_JS}, tests={"program.test.js": PROGRAM_JS_TESTS})
    result, chunks = await executor.run(job, owner="author")
    assert result.status == "ok" and result.score == 1.0, (result, text(chunks))


SELF_STARTED_PY_TESTS = """
import subprocess

def test_prints_the_answer():
    done = subprocess.run(["python3", "main.py"], capture_output=True, text=True, cwd="/work")
    assert done.stdout == "42\\n"
"""
SELF_STARTED_JS_TESTS = """
const test = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("child_process");
test("prints the answer", () => {
  assert.equal(execFileSync("node", ["main.js"], { cwd: "/work", encoding: "utf8" }), "42\\n");
});
"""
GRAB_DESCRIPTORS_PY = (
    PY_PRELUDE
    + """
import glob
for path in ["/dev/fd/%d" % n for n in range(3, 32)] + glob.glob("/proc/*/fd/*"):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, VERDICT.encode())
        say("wrote", path)
    except OSError:
        pass
os._exit(0)
"""
)
GRAB_DESCRIPTORS_JS = (
    JS_PRELUDE
    + """
for (let fd = 3; fd < 32; fd++) {
  try { fs.writeSync(fd, VERDICT); say("wrote fd", fd); } catch {}
}
process.exit(0);
"""
)


async def test_a_program_the_tests_start_themselves_gets_no_report_descriptor(
    executor: Executor,
) -> None:
    """Tests written the old way (the test starts ``main.py`` itself, outside the jail): the
    program inherits no descriptor of the runner, so a fake verdict has nowhere to go."""
    job = Job(
        "python", {"main.py": GRAB_DESCRIPTORS_PY}, tests={"test_p.py": SELF_STARTED_PY_TESTS}
    )
    result, chunks = await executor.run(job, owner="forger")
    assert result.status == "ok", (result, text(chunks))
    assert_zero(result, text(chunks))
    job = Job(
        "javascript", {"main.js": GRAB_DESCRIPTORS_JS}, tests={"p.test.js": SELF_STARTED_JS_TESTS}
    )
    result, chunks = await executor.run(job, owner="forger")
    assert result.status == "ok", (result, text(chunks))
    assert_zero(result, text(chunks))


# -- the verdict's format -------------------------------------------------------------------


async def test_a_verdict_cut_short_or_malformed_is_refused() -> None:
    ok = parse_outcomes(FAKE_VERDICT)
    assert [o.passed for o in ok] == [True] * 4
    for bad, why in (
        (FAKE_VERDICT.replace('"complete":true', '"complete":false'), "cut short"),
        (FAKE_VERDICT.replace('"version":1', '"version":2'), "version"),
        ('{"grader":"other"}', "not an opencode-live verdict"),
        ("<testsuites/>", "not valid JSON"),
        (FAKE_VERDICT.replace('"passed":true', '"passed":"yes"', 1), "needs a name"),
    ):
        with pytest.raises(ReportError, match=why):
            parse_outcomes(bad)
