// The student's side of a graded JavaScript run: requires their modules, answers calls.
//
// Runs as `node -e <nodewire.js + this file>` inside the jail (jail.py), as the
// student's process: whatever the code does here (process.exit, patching
// node:test or assert, printing a fake report) stays here. The only link to the
// runner is the socket on fd 3: one request frame, one answer frame.
"use strict";
{
  const fs = require("fs");
  const path = require("path");
  const CH = 3;
  const WORKDIR = "/work";
  const nap = new Int32Array(new SharedArrayBuffer(4));

  const readExact = (n) => {
    const buf = Buffer.alloc(n);
    let off = 0;
    while (off < n) {
      let got;
      try {
        got = fs.readSync(CH, buf, off, n - off, null);
      } catch (e) {
        if (e.code === "EAGAIN" || e.code === "EINTR") {
          Atomics.wait(nap, 0, 0, 1);
          continue;
        }
        throw e;
      }
      if (got === 0) return null;
      off += got;
    }
    return buf;
  };
  const writeAll = (buf) => {
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(CH, buf, off, buf.length - off);
      } catch (e) {
        if (e.code === "EAGAIN" || e.code === "EINTR") {
          Atomics.wait(nap, 0, 0, 1);
          continue;
        }
        throw e;
      }
    }
  };
  const describe = (err) => {
    if (err instanceof Error || (err && typeof err === "object" && "message" in err)) {
      return {
        name: String(err.name || "Error"),
        message: String(err.message || ""),
        code: typeof err.code === "string" ? err.code : null,
        stack: String(err.stack || "").slice(0, 4000),
      };
    }
    try {
      return { thrown: wire.encode(err) };
    } catch {
      return { name: "Error", message: String(err) };
    }
  };
  const modules = new Map();
  const load = (rel) => {
    if (!modules.has(rel)) modules.set(rel, require(path.join(WORKDIR, rel)));
    return modules.get(rel);
  };
  const after = (args) =>
    args.map((a) => {
      try {
        const plain = a && typeof a === "object" && (Array.isArray(a) || a instanceof Map || a instanceof Set || Object.getPrototypeOf(a) === Object.prototype);
        return plain ? wire.encode(a) : null;
      } catch {
        return null;
      }
    });
  const handle = async (req) => {
    const mod = load(String(req.module));
    if (req.op === "import") return {};
    if (req.op === "get") {
      const v = mod == null ? undefined : mod[req.name];
      if (typeof v === "function") {
        return { kind: /^class[\s{]/.test(Function.prototype.toString.call(v)) ? "class" : "function" };
      }
      return { kind: "value", value: wire.encode(v) };
    }
    if (req.op === "call") {
      const fn = req.name === null ? mod : mod[req.name];
      if (typeof fn !== "function") throw new TypeError(`${req.name === null ? req.module : req.name} is not a function`);
      const args = (req.args || []).map((a) => wire.decode(a));
      let result = fn.apply(mod, args);
      const promise = result !== null && typeof result === "object" && typeof result.then === "function";
      if (promise) result = await result;
      return { value: wire.encode(result), promise, after: after(args) };
    }
    throw new TypeError("unknown request");
  };
  const serve = async () => {
    for (;;) {
      const head = readExact(4);
      if (head === null) process.reallyExit(0);
      const body = readExact(head.readUInt32BE(0));
      if (body === null) process.reallyExit(0);
      let answer;
      try {
        answer = { ok: true, ...(await handle(JSON.parse(body.toString("utf8")))) };
      } catch (err) {
        answer = { ok: false, error: describe(err) };
      }
      let out;
      try {
        out = wire.frame(answer);
      } catch (err) {
        out = wire.frame({ ok: false, error: describe(err) });
      }
      writeAll(out);
    }
  };
  process.chdir(WORKDIR);
  serve();
}
