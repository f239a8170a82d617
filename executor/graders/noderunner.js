// The test runner of a graded JavaScript run, with the student's code out of reach.
//
// Exec'd by nodelaunch.py (execute-only node: this process is non-dumpable),
// before any student code exists:
// 1. reads what it needs later (nodewire.js, jail.py, nodehost.js) into memory
//    and starts libuv's thread pool now, so that no thread of this process is
//    born after the student's process (whose seccomp filter protects lower pids);
// 2. makes `require("./main.js")` (or "../main", "/work/main.js"...) from a test
//    give a proxy of the submitted module instead of the file;
// 3. requires every test file (node:test registers their tests), then deletes
//    this folder with the tests in it: the submitted code starts only at the
//    first call from a test, and never sees them;
// 4. each call goes to the student's process over a socket (values: nodewire.js),
//    synchronously, with a time limit; the verdict is written by reporter.mjs.
"use strict";
const fs = require("fs");
const path = require("path");
const Module = require("module");
const childProcess = require("child_process");

// The report pipe came as fd 3 without close-on-exec: a process a test starts would
// inherit it. Keep it on a close-on-exec descriptor instead (reporter.mjs writes there).
const REPORT_FD = fs.openSync("/dev/fd/3", "w");
fs.closeSync(3);
globalThis[Symbol.for("opencode-live.report")] = REPORT_FD;

const HERE = __dirname;
const TESTS = path.join(HERE, "tests");
const WORKDIR = "/work";
const PYTHON = "/usr/bin/python3";
const NODE = "/usr/bin/node";
const wire = require(path.join(HERE, "nodewire.js"));
const WIRE_SOURCE = fs.readFileSync(path.join(HERE, "nodewire.js"), "utf8");
const JAIL_SOURCE = fs.readFileSync(path.join(HERE, "jail.py"), "utf8");
const HOST_SOURCE = WIRE_SOURCE + "\n" + fs.readFileSync(path.join(HERE, "nodehost.js"), "utf8");
// A call from a test that takes longer fails that test (the run's wall time bounds the rest).
const CALL_SECONDS = 3600;
const STUDENT_ENV = { ...process.env };
const nap = new Int32Array(new SharedArrayBuffer(4));
fs.stat("/", () => {}); // starts the thread pool now

const ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

class StudentCrashed extends Error {}

class Student {
  constructor() {
    this.sealed = false;
    this.child = null;
    this.fd = -1;
  }

  spawn() {
    if (!this.sealed) {
      throw new Error("the submitted code can only be called from inside a test (not while the test files load)");
    }
    const config = { fd: 3, protect: [process.pid, process.ppid], cwd: WORKDIR };
    const args = ["-I", "-S", "-c", JAIL_SOURCE, JSON.stringify(config), "--", NODE, "-e", HOST_SOURCE];
    this.child = childProcess.spawn(PYTHON, args, {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      cwd: WORKDIR,
      env: STUDENT_ENV,
    });
    this.exited = null;
    this.child.on("exit", (code, signal) => (this.exited = { code, signal }));
    this.child.on("error", () => {});
    this.child.unref(); // the run ends when the tests do, whatever the code left running
    const sock = this.child.stdio[3];
    if (sock._handle && sock._handle.readStop) sock._handle.readStop();
    sock.unref();
    this.sock = sock;
    this.fd = sock._handle.fd;
  }

  stop() {
    if (this.child) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {}
      try {
        this.sock.destroy();
      } catch {}
    }
    this.child = null;
    this.fd = -1;
  }

  readExact(n, deadline) {
    const buf = Buffer.alloc(n);
    let off = 0;
    let wait = 0.05;
    while (off < n) {
      let got;
      try {
        got = fs.readSync(this.fd, buf, off, n - off, null);
      } catch (e) {
        if (e.code !== "EAGAIN" && e.code !== "EINTR") throw new StudentCrashed(String(e.message));
        if (Date.now() > deadline) throw new Error("timeout");
        Atomics.wait(nap, 0, 0, wait);
        wait = Math.min(wait * 2, 2);
        continue;
      }
      if (got === 0) throw new StudentCrashed("end of channel");
      off += got;
      wait = 0.05;
    }
    return buf;
  }

  writeAll(buf, deadline) {
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        if (e.code !== "EAGAIN" && e.code !== "EINTR") throw new StudentCrashed(String(e.message));
        if (Date.now() > deadline) throw new Error("timeout");
        Atomics.wait(nap, 0, 0, 1);
      }
    }
  }

  request(message) {
    const out = wire.frame(message);
    if (this.child === null) this.spawn();
    const deadline = Date.now() + CALL_SECONDS * 1000;
    try {
      this.writeAll(out, deadline);
      const size = this.readExact(4, deadline).readUInt32BE(0);
      if (size > wire.MAX_FRAME) throw new StudentCrashed(`an answer of ${size} bytes`);
      return JSON.parse(this.readExact(size, deadline).toString("utf8"));
    } catch (e) {
      this.stop();
      if (e instanceof StudentCrashed || e instanceof SyntaxError) {
        throw new StudentCrashed("the submitted code's process ended during the call");
      }
      if (e.message === "timeout") {
        throw new Error(`the submitted code did not answer within ${CALL_SECONDS} s (its process was stopped)`);
      }
      throw e;
    }
  }

  rebuild(error) {
    if (!error || typeof error !== "object") return new Error("the submitted code failed");
    if ("thrown" in error) {
      try {
        return wire.decode(error.thrown);
      } catch {
        return new Error("the submitted code threw a value that cannot be shown");
      }
    }
    const name = String(error.name || "Error").slice(0, 200);
    const Kind = Object.prototype.hasOwnProperty.call(ERRORS, name) ? ERRORS[name] : Error;
    const err = new Kind(String(error.message || ""));
    if (Kind === Error && name !== "Error") {
      Object.defineProperty(err, "name", { value: name, enumerable: false, configurable: true, writable: true });
    }
    if (typeof error.code === "string") err.code = error.code;
    if (typeof error.stack === "string" && error.stack) err.stack = `${error.stack}\n    (in the submitted code)`;
    return err;
  }

  attribute(rel, name) {
    if (!this.sealed) return this.stub(rel, name);
    const answer = this.request({ op: "get", module: rel, name });
    if (!answer.ok) throw this.rebuild(answer.error);
    if (answer.kind === "value") return wire.decode(answer.value);
    return this.stub(rel, name);
  }

  stub(rel, name) {
    const student = this;
    const f = function (...args) {
      return student.call(rel, name, args);
    };
    Object.defineProperty(f, "name", { value: name });
    return f;
  }

  call(rel, name, args) {
    let encoded;
    try {
      encoded = args.map((a) => wire.encode(a));
    } catch (e) {
      throw new TypeError(`a test passed what cannot reach the code: ${e.message}`);
    }
    const answer = this.request({ op: "call", module: rel, name, args: encoded });
    if (!answer.ok) {
      const err = this.rebuild(answer.error);
      if (answer.promise) return Promise.reject(err);
      throw err;
    }
    if (Array.isArray(answer.after)) {
      args.forEach((arg, i) => {
        const next = answer.after[i];
        if (next === null || next === undefined || !arg || typeof arg !== "object") return;
        let value;
        try {
          value = wire.decode(next);
        } catch {
          return;
        }
        if (Array.isArray(arg) && Array.isArray(value)) arg.splice(0, arg.length, ...value);
        else if (arg instanceof Map && value instanceof Map) {
          arg.clear();
          value.forEach((v, k) => arg.set(k, v));
        } else if (arg instanceof Set && value instanceof Set) {
          arg.clear();
          value.forEach((v) => arg.add(v));
        } else if (Object.getPrototypeOf(arg) === Object.prototype && value && typeof value === "object") {
          for (const k of Object.keys(arg)) delete arg[k];
          Object.assign(arg, value);
        }
      });
    }
    const value = wire.decode(answer.value);
    return answer.promise ? Promise.resolve(value) : value;
  }
}

const student = new Student();

// For tests of programs that read stdin and print: `const { runProgram } = require("grader")`.
// Runs `node <entry> <args>` as the submitted code runs (jailed, in /work).
function runProgram({ stdin = "", args = [], entry = "main.js", timeout = 10000 } = {}) {
  if (!student.sealed) throw new Error("runProgram can only be called from inside a test");
  const config = { protect: [process.pid, process.ppid], cwd: WORKDIR };
  const argv = ["-I", "-S", "-c", JAIL_SOURCE, JSON.stringify(config), "--", NODE, entry, ...args.map(String)];
  const done = childProcess.spawnSync(PYTHON, argv, {
    input: stdin, cwd: WORKDIR, env: STUDENT_ENV, timeout, killSignal: "SIGKILL", encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (done.error && done.error.code === "ETIMEDOUT") throw new Error(`the program did not finish within ${timeout} ms`);
  return { status: done.status, signal: done.signal, stdout: done.stdout || "", stderr: done.stderr || "" };
}
const GRADER_KEY = "/submitted/.grader-helpers";
{
  const m = new Module(GRADER_KEY);
  m.filename = GRADER_KEY;
  m.loaded = true;
  m.exports = { runProgram };
  Module._cache[GRADER_KEY] = m;
}
const submitted = new Set(
  fs.readdirSync(WORKDIR).filter((n) => /\.(c?js)$/.test(n) && fs.statSync(path.join(WORKDIR, n)).isFile()),
);

function proxyOf(rel) {
  const target = function submittedModule() {};
  return new Proxy(target, {
    get(_t, prop) {
      if (typeof prop === "symbol" || prop === "then" || prop === "__esModule") return undefined;
      return student.attribute(rel, prop);
    },
    apply(_t, _this, args) {
      return student.call(rel, null, args);
    },
  });
}

const required = [];

function proxyKey(rel) {
  const key = `/submitted/${rel}`;
  if (!Module._cache[key]) {
    required.push(rel);
    const m = new Module(key);
    m.filename = key;
    m.loaded = true;
    m.exports = proxyOf(rel);
    Module._cache[key] = m;
  }
  return key;
}

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if (request === "grader") return GRADER_KEY;
  if (typeof request === "string" && parent && parent.filename && /^(\.{1,2}\/|\/)/.test(request)) {
    const abs = path.resolve(path.dirname(parent.filename), request);
    const base = abs === WORKDIR || abs.startsWith(WORKDIR + "/") ? WORKDIR : TESTS;
    const rel = path.relative(base, abs);
    for (const candidate of [rel, `${rel}.js`, `${rel}.cjs`, path.join(rel, "index.js")]) {
      if (submitted.has(candidate)) return proxyKey(candidate);
    }
  }
  const found = resolve.call(this, request, parent, ...rest);
  // Nothing is loaded into this process from where the student's uid can write:
  // only node's own modules, /usr, and (until they are deleted) the tests.
  if (!path.isAbsolute(found) || found.startsWith("/usr/") || (!student.sealed && found.startsWith(HERE + "/"))) {
    return found;
  }
  throw new Error(`a test may not load ${found} (only the tests, node's modules and the submitted module's proxy)`);
};

const { test } = require("node:test");
for (const file of process.argv.slice(2)) {
  try {
    require(file);
  } catch (err) {
    const name = path.relative(TESTS, file);
    test(`${name} (loading the test file)`, () => {
      throw err;
    });
  }
}
fs.rmSync(HERE, { recursive: true, force: true });
student.sealed = true;
process.on("exit", () => student.stop());

// Import what the tests required, as `require` would have while they loaded: if
// that fails, no test can pass (the verdict is written here, the tests never run).
for (const rel of required) {
  let problem = null;
  try {
    const answer = student.request({ op: "import", module: rel });
    if (!answer.ok) {
      const err = student.rebuild(answer.error);
      problem = `${err && err.name ? err.name : "Error"}: ${err && err.message !== undefined ? err.message : String(err)}`;
      if (err && err.stack) process.stderr.write(`${err.stack}\n`);
    }
  } catch (err) {
    problem = String(err && err.message ? err.message : err);
  }
  if (problem !== null) {
    const name = `${rel} (loading the submitted code)`;
    process.stderr.write(`\n${name}: ${problem}\n`);
    const verdict = { grader: "opencode-live", version: 1, complete: true, tests: [{ name, passed: false, message: problem.slice(0, 2000) }] };
    fs.writeSync(REPORT_FD, JSON.stringify(verdict));
    student.stop();
    process.reallyExit(1);
  }
}
