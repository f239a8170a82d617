// Values and frames between the Node test runner and the student's process.
//
// Runs inside the sandbox, in both processes (the runner requires it; the
// student's process gets its text before nodehost.js). A frame is 4 bytes of
// big-endian length and a UTF-8 JSON document; values are JSON with a few
// tagged objects (undefined, NaN/Infinity/-0, BigInt, Map, Set, Date) so a
// test receives what the code returned. Anything else cannot cross.
"use strict";

const MAX_FRAME = 16 * 1024 * 1024;
const MAX_DEPTH = 200;

class WireError extends Error {}

function encode(v, depth = 0) {
  if (depth > MAX_DEPTH) throw new WireError("the value is nested too deeply");
  if (v === null) return null;
  switch (typeof v) {
    case "undefined":
      return { $undefined: 1 };
    case "boolean":
    case "string":
      return v;
    case "number":
      if (Object.is(v, -0)) return { $number: "-0" };
      return Number.isFinite(v) ? v : { $number: String(v) };
    case "bigint":
      return { $bigint: v.toString() };
    case "object": {
      if (Array.isArray(v)) {
        const out = [];
        for (let i = 0; i < v.length; i++) out.push(encode(v[i], depth + 1));
        return out;
      }
      if (v instanceof Map) return { $map: [...v].map(([k, x]) => [encode(k, depth + 1), encode(x, depth + 1)]) };
      if (v instanceof Set) return { $set: [...v].map((x) => encode(x, depth + 1)) };
      if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? null : v.toISOString() };
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        const keys = Object.keys(v);
        if (keys.some((k) => k.startsWith("$"))) return { $object: keys.map((k) => [k, encode(v[k], depth + 1)]) };
        const out = {};
        for (const k of keys) out[k] = encode(v[k], depth + 1);
        return out;
      }
      const name = (v.constructor && v.constructor.name) || "object";
      throw new WireError(`a ${name} cannot be passed between the tests and the code (use plain values, arrays, objects, Map, Set, Date)`);
    }
    default:
      throw new WireError(`a ${typeof v} cannot be passed between the tests and the code`);
  }
}

function decode(d, depth = 0) {
  if (depth > MAX_DEPTH) throw new WireError("the value is nested too deeply");
  if (d === null || typeof d === "boolean" || typeof d === "string" || typeof d === "number") return d;
  if (Array.isArray(d)) return d.map((x) => decode(x, depth + 1));
  if (typeof d !== "object") throw new WireError("unexpected value on the wire");
  const keys = Object.keys(d);
  if (keys.length === 1 && keys[0].startsWith("$")) {
    const inner = d[keys[0]];
    switch (keys[0]) {
      case "$undefined":
        return undefined;
      case "$number":
        return inner === "-0" ? -0 : Number(inner);
      case "$bigint":
        return BigInt(String(inner));
      case "$map":
        return new Map(inner.map(([k, x]) => [decode(k, depth + 1), decode(x, depth + 1)]));
      case "$set":
        return new Set(inner.map((x) => decode(x, depth + 1)));
      case "$date":
        return new Date(inner === null ? NaN : inner);
      case "$object": {
        const out = {};
        for (const [k, x] of inner) define(out, String(k), decode(x, depth + 1));
        return out;
      }
      default:
        throw new WireError("unknown tag on the wire");
    }
  }
  const out = {};
  for (const k of keys) define(out, k, decode(d[k], depth + 1));
  return out;
}

// an own property even for "__proto__": a decoded object never gets a prototype of its own
function define(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function frame(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (body.length > MAX_FRAME) throw new WireError(`a message of ${body.length} bytes is too large`);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

const wire = { MAX_FRAME, WireError, encode, decode, frame };
if (typeof module !== "undefined" && module.exports && require.main !== module) module.exports = wire;
