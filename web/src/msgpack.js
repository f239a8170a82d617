// A small MessagePack codec for the room extension channel (y-websocket message type 100).
// Enough of the format for the room messages: nil, booleans, integers, floats, strings,
// binary, arrays and maps (extension types are skipped as null).

const utf8In = new TextEncoder()
const utf8Out = new TextDecoder()

/** Encode a plain value (object, array, string, number, boolean, null, Uint8Array). */
export function encode (value) {
  const out = []
  write(out, value)
  const bytes = new Uint8Array(out.reduce((n, part) => n + part.length, 0))
  let at = 0
  for (const part of out) { bytes.set(part, at); at += part.length }
  return bytes
}

function head (out, ...bytes) { out.push(Uint8Array.from(bytes)) }

function sized (out, n, small, fix, b8, b16, b32) {
  if (n < small) head(out, fix | n)
  else if (b8 !== null && n < 0x100) head(out, b8, n)
  else if (n < 0x10000) head(out, b16, n >> 8, n & 0xff)
  else head(out, b32, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

function write (out, v) {
  if (v === null || v === undefined) head(out, 0xc0)
  else if (v === false) head(out, 0xc2)
  else if (v === true) head(out, 0xc3)
  else if (typeof v === 'number') writeNumber(out, v)
  else if (typeof v === 'string') {
    const bytes = utf8In.encode(v)
    sized(out, bytes.length, 32, 0xa0, 0xd9, 0xda, 0xdb)
    out.push(bytes)
  } else if (v instanceof Uint8Array) {
    sized(out, v.length, 0, 0, 0xc4, 0xc5, 0xc6)
    out.push(v)
  } else if (Array.isArray(v)) {
    sized(out, v.length, 16, 0x90, null, 0xdc, 0xdd)
    for (const item of v) write(out, item)
  } else if (typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined)
    sized(out, entries.length, 16, 0x80, null, 0xde, 0xdf)
    for (const [k, x] of entries) { write(out, k); write(out, x) }
  } else {
    throw new TypeError(`cannot encode ${typeof v} as MessagePack`)
  }
}

function writeNumber (out, n) {
  if (Number.isInteger(n) && n >= -0x80000000 && n <= 0xffffffff) {
    if (n >= 0 && n < 0x80) head(out, n)
    else if (n < 0 && n >= -32) head(out, n & 0xff)
    else if (n >= 0) head(out, 0xce, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    else head(out, 0xd2, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
    return
  }
  const bytes = new Uint8Array(9)
  bytes[0] = 0xcb
  new DataView(bytes.buffer).setFloat64(1, n)
  out.push(bytes)
}

/** Decode one MessagePack value from the start of ``bytes``. */
export function decode (bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  const need = (n) => {
    if (at + n > bytes.length) throw new RangeError('MessagePack value is truncated')
  }
  const u8 = () => { need(1); return bytes[at++] }
  const u16 = () => { need(2); const v = view.getUint16(at); at += 2; return v }
  const u32 = () => { need(4); const v = view.getUint32(at); at += 4; return v }
  const take = (n) => { need(n); const v = bytes.subarray(at, at + n); at += n; return v }
  const str = (n) => utf8Out.decode(take(n))
  const arr = (n) => { const a = []; for (let i = 0; i < n; i++) a.push(read()); return a }
  const map = (n) => {
    const m = {}
    for (let i = 0; i < n; i++) { const k = read(); m[String(k)] = read() }
    return m
  }
  const skipExt = (n) => { u8(); take(n); return null }
  function read () {
    const b = u8()
    if (b < 0x80) return b
    if (b < 0x90) return map(b & 0x0f)
    if (b < 0xa0) return arr(b & 0x0f)
    if (b < 0xc0) return str(b & 0x1f)
    if (b >= 0xe0) return b - 0x100
    switch (b) {
      case 0xc0: return null
      case 0xc2: return false
      case 0xc3: return true
      case 0xc4: return take(u8()).slice()
      case 0xc5: return take(u16()).slice()
      case 0xc6: return take(u32()).slice()
      case 0xc7: return skipExt(u8())
      case 0xc8: return skipExt(u16())
      case 0xc9: return skipExt(u32())
      case 0xca: { need(4); const v = view.getFloat32(at); at += 4; return v }
      case 0xcb: { need(8); const v = view.getFloat64(at); at += 8; return v }
      case 0xcc: return u8()
      case 0xcd: return u16()
      case 0xce: return u32()
      case 0xcf: { need(8); const v = Number(view.getBigUint64(at)); at += 8; return v }
      case 0xd0: { need(1); const v = view.getInt8(at); at += 1; return v }
      case 0xd1: { need(2); const v = view.getInt16(at); at += 2; return v }
      case 0xd2: { need(4); const v = view.getInt32(at); at += 4; return v }
      case 0xd3: { need(8); const v = Number(view.getBigInt64(at)); at += 8; return v }
      case 0xd4: return skipExt(1)
      case 0xd5: return skipExt(2)
      case 0xd6: return skipExt(4)
      case 0xd7: return skipExt(8)
      case 0xd8: return skipExt(16)
      case 0xd9: return str(u8())
      case 0xda: return str(u16())
      case 0xdb: return str(u32())
      case 0xdc: return arr(u16())
      case 0xdd: return arr(u32())
      case 0xde: return map(u16())
      case 0xdf: return map(u32())
      default: throw new RangeError(`not MessagePack: byte 0x${b.toString(16)}`)
    }
  }
  return read()
}
