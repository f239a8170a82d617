// The verdict of a graded JavaScript run: a node:test reporter in the runner's process.
//
// nodelaunch.py passes it to node as a data: URL (never a file the student's
// process could rewrite); it writes on the report descriptor that noderunner.js
// keeps (close-on-exec) and yields nothing itself. It
// counts leaf tests only (a test with subtests, or a describe() suite, is not
// counted itself), names them "parent > child", and writes one JSON document
// when the run is over; a runner that dies first writes nothing.
import { writeSync } from "node:fs";

export default async function* grade(source) {
  const path = [];
  const tests = [];
  let lastNesting = -1;
  const message = (details) => {
    let err = details && details.error;
    if (err && err.code === "ERR_TEST_FAILURE" && err.cause !== undefined) err = err.cause;
    if (err === undefined || err === null) return "failed";
    const text = typeof err === "object" && "message" in err ? `${err.name && err.name !== "Error" ? err.name + ": " : ""}${err.message}` : String(err);
    return text.slice(0, 2000) || "failed";
  };
  for await (const event of source) {
    const data = event.data || {};
    const nesting = Number(data.nesting) || 0;
    if (event.type === "test:start") {
      path.length = nesting;
      path[nesting] = String(data.name);
      continue;
    }
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const parent = lastNesting > nesting || (data.details && data.details.type === "suite");
    lastNesting = nesting;
    if (parent) continue;
    path.length = nesting;
    path[nesting] = String(data.name);
    const name = path.join(" > ");
    if (data.skip !== undefined && data.skip !== false) tests.push({ name, passed: false, message: "skipped" });
    else if (data.todo !== undefined && data.todo !== false) tests.push({ name, passed: false, message: "todo" });
    else if (event.type === "test:pass") tests.push({ name, passed: true, message: "" });
    else tests.push({ name, passed: false, message: message(data.details) });
  }
  const fd = globalThis[Symbol.for("opencode-live.report")];
  const verdict = Buffer.from(JSON.stringify({ grader: "opencode-live", version: 1, complete: true, tests }));
  for (let off = 0; typeof fd === "number" && off < verdict.length; ) off += writeSync(fd, verdict, off);
  yield "";
}
