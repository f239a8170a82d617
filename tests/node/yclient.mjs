#!/usr/bin/env node
// Real Yjs clients (y-websocket's WebsocketProvider) driven by JSON lines.
//
// One process hosts any number of named clients, each a Y.Doc with a
// WebsocketProvider. The test sends one JSON object per line on stdin:
//
//   {"id": 1, "cmd": "connect", "name": "alice", "url": "ws://127.0.0.1:8000/rooms",
//    "room": "r1", "token": "<jwt>", "user": {"name": "José", "color": "#f00"}}
//
// and gets exactly one JSON line back on stdout for it, in completion order:
//
//   {"id": 1, "result": {...}}      or      {"id": 1, "error": "..."}
//
// Commands run concurrently (a long `randomEdits` does not hold up others).
// Nothing else is ever written to stdout: console output goes to stderr. A bad
// command is answered with an error; it never ends the process. Every wait is
// bounded by a timeout. When stdin closes, every client is destroyed and the
// process exits.
//
// A client's `token` (optional: the server's access token) goes on its socket's
// URL as `?token=`, through y-websocket's `params`; it is sent again on every reconnect.
//
// The workspace is the project's: a Y.Map named "files" of Y.Text (path -> content).

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as readline from 'node:readline'

// stdout is the reply channel: keep every library's console output off it.
for (const level of ['log', 'info', 'debug', 'warn', 'error']) {
  console[level] = (...args) => {
    process.stderr.write(`[yclient ${level}] ${args.map(String).join(' ')}\n`)
  }
}
// Each provider adds a process 'exit' listener; many clients are expected.
process.setMaxListeners(0)
process.on('uncaughtException', (err) => {
  process.stderr.write(`[yclient uncaught] ${err && err.stack ? err.stack : err}\n`)
})
process.on('unhandledRejection', (err) => {
  process.stderr.write(`[yclient unhandled] ${err && err.stack ? err.stack : err}\n`)
})

const MESSAGE_AWARENESS = 1
const MESSAGE_AUTH = 2
const DEFAULT_TIMEOUT_MS = 10000
const MAX_TIMEOUT_MS = 120000

/** @type {Map<string, Client>} */
const clients = new Map()

class CommandError extends Error {}

const now = () => Date.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const yieldToIO = () => new Promise((resolve) => setImmediate(resolve))
const toBase64 = (bytes) => Buffer.from(bytes).toString('base64')
const utf8 = new TextDecoder('utf-8', { fatal: true })

function timeoutOf (msg) {
  const t = msg.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : Number(msg.timeoutMs)
  if (!Number.isFinite(t) || t < 0) throw new CommandError(`bad timeoutMs ${msg.timeoutMs}`)
  return Math.min(t, MAX_TIMEOUT_MS)
}

/** Poll `cond` until it is true or `timeoutMs` passes (then throw `what`). */
async function waitUntil (cond, timeoutMs, what) {
  const deadline = now() + timeoutMs
  while (!cond()) {
    if (now() >= deadline) throw new CommandError(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(5)
  }
}

/** A small seeded PRNG (mulberry32), so random edits are reproducible. */
function prng (seed) {
  let a = (Number(seed) >>> 0) || 1
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// What random edits type: ASCII, Latin-1, CJK, a newline and an emoji (a
// surrogate pair in UTF-16, which Yjs indexes by). Random positions never fall
// inside a surrogate pair: an editor never splits one, and Yjs and yrs do not
// agree on what splitting one means.
const ALPHABET = [...'abcdefghijklmnopqrstuvwxyz0123456789 éüñ李雷\n', '🦄']

const isHigh = (code) => code >= 0xD800 && code <= 0xDBFF
const isLow = (code) => code >= 0xDC00 && code <= 0xDFFF
/** Move a UTF-16 index that falls inside a surrogate pair to the pair's start. */
function boundary (str, index) {
  if (index > 0 && index < str.length && isHigh(str.charCodeAt(index - 1)) && isLow(str.charCodeAt(index))) {
    return index - 1
  }
  return index
}

class Client {
  constructor (msg) {
    const { name, url, room } = msg
    this.name = name
    this.doc = new Y.Doc()
    this.files = this.doc.getMap('files')
    this.stats = {
      received: 0,
      receivedBytes: 0,
      maxReceived: 0,
      sent: 0,
      sentBytes: 0,
      maxSent: 0,
      opens: 0
    }
    /** Close events of the socket, oldest first ({local: true} when this side closed it). */
    this.closes = []
    /** The terminal `closed` event (4400-4499: y-websocket stops reconnecting). */
    this.closedEvent = null
    this.permissionDenied = null
    this.connectionErrors = 0
    this.syncedCount = 0
    /** Errors in handling what the server sent (e.g. a corrupt awareness message). */
    this.errors = []
    /** clientID -> {clock, json, base64}: the last awareness entry received per client. */
    this.awarenessRaw = new Map()

    const client = this
    // A `ws` WebSocket that counts what goes through it (sizes of messages).
    class CountingWebSocket extends WebSocket {
      constructor (address, protocols) {
        super(address, protocols, { maxPayload: 256 * 1024 * 1024 })
        this.addEventListener('open', () => { client.stats.opens++ })
        this.addEventListener('message', (event) => {
          const size = event.data.byteLength ?? event.data.length ?? 0
          client.stats.received++
          client.stats.receivedBytes += size
          if (size > client.stats.maxReceived) client.stats.maxReceived = size
        })
      }

      send (data, ...rest) {
        const size = data.byteLength ?? data.length ?? 0
        client.stats.sent++
        client.stats.sentBytes += size
        if (size > client.stats.maxSent) client.stats.maxSent = size
        return super.send(data, ...rest)
      }
    }

    this.provider = new WebsocketProvider(url, room, this.doc, {
      WebSocketPolyfill: CountingWebSocket,
      // Node has a global BroadcastChannel: without this, clients in one
      // process would sync with each other without the server.
      disableBc: true,
      // The server wants a token: y-websocket puts params on the URL (`?token=`).
      params: msg.token === undefined ? (msg.params || {}) : { ...msg.params, token: msg.token },
      maxBackoffTime: msg.maxBackoffTime ?? 1000,
      connect: false
    })
    const provider = this.provider

    // Record every awareness entry as received (raw JSON bytes), then apply it.
    provider.messageHandlers[MESSAGE_AWARENESS] = (_encoder, decoder, prov) => {
      const update = decoding.readVarUint8Array(decoder)
      try {
        const d = decoding.createDecoder(update)
        const count = decoding.readVarUint(d)
        for (let i = 0; i < count; i++) {
          const clientID = decoding.readVarUint(d)
          const clock = decoding.readVarUint(d)
          const bytes = decoding.readVarUint8Array(d)
          const json = utf8.decode(bytes)
          JSON.parse(json)
          client.awarenessRaw.set(clientID, { clock, json, base64: toBase64(bytes) })
        }
        if (decoding.hasContent(d)) throw new Error('trailing bytes after awareness update')
        awarenessProtocol.applyAwarenessUpdate(prov.awareness, update, prov)
      } catch (err) {
        client.errors.push(`awareness message: ${err && err.message ? err.message : err}`)
      }
    }
    const authHandler = provider.messageHandlers[MESSAGE_AUTH]
    provider.messageHandlers[MESSAGE_AUTH] = (encoder, decoder, prov, emitSynced, type) => {
      const copy = decoding.clone(decoder)
      try {
        if (decoding.readVarUint(copy) === 0) client.permissionDenied = decoding.readVarString(copy)
      } catch (err) {
        client.errors.push(`auth message: ${err.message}`)
      }
      authHandler(encoder, decoder, prov, emitSynced, type)
    }

    provider.on('connection-close', (event) => {
      this.closes.push(
        event == null
          ? { local: true, at: now() }
          : { code: event.code, reason: String(event.reason ?? ''), wasClean: event.wasClean, at: now() }
      )
    })
    provider.on('closed', (event) => {
      this.closedEvent = { code: event.code, reason: String(event.reason ?? '') }
    })
    provider.on('connection-error', () => { this.connectionErrors++ })
    provider.on('sync', (synced) => { if (synced) this.syncedCount++ })

    if (msg.user !== undefined || msg.state !== undefined) {
      const state = msg.state !== undefined ? msg.state : { user: msg.user }
      provider.awareness.setLocalState(state)
    }
    provider.connect()
  }

  text (path, create) {
    let text = this.files.get(path)
    if (text instanceof Y.Text) return text
    if (!create) throw new CommandError(`client ${this.name} has no file ${JSON.stringify(path)}`)
    text = new Y.Text()
    this.files.set(path, text)
    return text
  }

  readFiles () {
    const out = {}
    for (const [path, value] of this.files.entries()) {
      if (value instanceof Y.Text) out[path] = value.toString()
    }
    return out
  }

  remoteAwareness () {
    const out = {}
    for (const [clientID, state] of this.provider.awareness.getStates()) {
      if (clientID !== this.doc.clientID) out[clientID] = state
    }
    return out
  }

  status () {
    const p = this.provider
    return {
      clientID: this.doc.clientID,
      connected: p.wsconnected,
      connecting: p.wsconnecting,
      synced: p.synced,
      shouldConnect: p.shouldConnect,
      syncedCount: this.syncedCount,
      closes: this.closes,
      lastClose: this.closes.length ? this.closes[this.closes.length - 1] : null,
      closed: this.closedEvent,
      permissionDenied: this.permissionDenied,
      connectionErrors: this.connectionErrors,
      errors: this.errors,
      stats: this.stats
    }
  }

  destroy () {
    this.provider.destroy()
    this.doc.destroy()
  }
}

function client (msg) {
  if (typeof msg.name !== 'string') throw new CommandError('missing client name')
  const c = clients.get(msg.name)
  if (c === undefined) throw new CommandError(`no client named ${JSON.stringify(msg.name)}`)
  return c
}

function needString (msg, key) {
  if (typeof msg[key] !== 'string') throw new CommandError(`${key} must be a string`)
  return msg[key]
}

function needInt (msg, key, dflt) {
  const v = msg[key] === undefined ? dflt : msg[key]
  if (!Number.isInteger(v) || v < 0) throw new CommandError(`${key} must be a non-negative integer`)
  return v
}

const commands = {
  ping: () => ({ pong: true, clients: [...clients.keys()] }),

  connect: (msg) => {
    needString(msg, 'name')
    needString(msg, 'url')
    needString(msg, 'room')
    if (msg.token !== undefined) needString(msg, 'token')
    if (clients.has(msg.name)) throw new CommandError(`client ${msg.name} exists already`)
    const c = new Client(msg)
    clients.set(msg.name, c)
    return { clientID: c.doc.clientID }
  },

  waitSynced: async (msg) => {
    const c = client(msg)
    await waitUntil(() => c.provider.synced, timeoutOf(msg), `${c.name} to sync`)
    return c.status()
  },

  waitConnected: async (msg) => {
    const c = client(msg)
    await waitUntil(() => c.provider.wsconnected, timeoutOf(msg), `${c.name} to connect`)
    return c.status()
  },

  /** Wait until this client's files equal `files` exactly (a {path: content} object). */
  waitFiles: async (msg) => {
    const c = client(msg)
    const want = JSON.stringify(Object.entries(msg.files || {}).sort())
    await waitUntil(
      () => JSON.stringify(Object.entries(c.readFiles()).sort()) === want,
      timeoutOf(msg),
      `${c.name} to have the expected files`
    )
    return c.readFiles()
  },

  insert: (msg) => {
    const c = client(msg)
    const path = needString(msg, 'path')
    let text = needString(msg, 'text')
    if (msg.repeat !== undefined) text = text.repeat(needInt(msg, 'repeat'))
    c.doc.transact(() => {
      const t = c.text(path, true)
      const index = msg.index === undefined || msg.index === -1 ? t.length : needInt(msg, 'index')
      if (index > t.length) throw new CommandError(`index ${index} is past the end (${t.length})`)
      t.insert(index, text)
    })
    return { length: c.text(path, false).length }
  },

  delete: (msg) => {
    const c = client(msg)
    const t = c.text(needString(msg, 'path'), false)
    const index = needInt(msg, 'index')
    const length = needInt(msg, 'length')
    if (index + length > t.length) throw new CommandError(`range ${index}+${length} is past the end (${t.length})`)
    t.delete(index, length)
    return { length: t.length }
  },

  setFile: (msg) => {
    const c = client(msg)
    const path = needString(msg, 'path')
    const content = needString(msg, 'content')
    c.doc.transact(() => {
      const t = c.text(path, true)
      if (t.length > 0) t.delete(0, t.length)
      if (content.length > 0) t.insert(0, content)
    })
    return { length: content.length }
  },

  deleteFile: (msg) => {
    const c = client(msg)
    const path = needString(msg, 'path')
    const existed = c.files.has(path)
    c.files.delete(path)
    return { existed }
  },

  files: (msg) => client(msg).readFiles(),

  /** `count` random inserts/deletes on one file, yielding to I/O every `yieldEvery` edits. */
  randomEdits: async (msg) => {
    const c = client(msg)
    const path = needString(msg, 'path')
    const count = needInt(msg, 'count')
    const yieldEvery = Math.max(1, needInt(msg, 'yieldEvery', 1))
    const random = prng(msg.seed ?? 1)
    const started = now()
    let inserts = 0
    let deletes = 0
    for (let i = 0; i < count; i++) {
      const t = c.text(path, true)
      const str = t.toString()
      const len = str.length
      if (len === 0 || random() < 0.65) {
        let s = ''
        const n = 1 + Math.floor(random() * 6)
        for (let k = 0; k < n; k++) s += ALPHABET[Math.floor(random() * ALPHABET.length)]
        t.insert(boundary(str, Math.floor(random() * (len + 1))), s)
        inserts++
      } else {
        const index = boundary(str, Math.floor(random() * len))
        const end = boundary(str, Math.min(len, index + 1 + Math.floor(random() * 4)))
        if (end > index) t.delete(index, end - index)
        deletes++
      }
      if ((i + 1) % yieldEvery === 0) await yieldToIO()
    }
    return { inserts, deletes, ms: now() - started, length: c.text(path, false).length }
  },

  /** Remote awareness states as this client sees them: {clientID: state}. */
  awareness: (msg) => client(msg).remoteAwareness(),

  /** The last awareness entry received for each client, with its exact JSON bytes. */
  awarenessRaw: (msg) => Object.fromEntries(client(msg).awarenessRaw),

  /** This client's own state and the exact JSON its awareness messages carry. */
  localAwareness: (msg) => {
    const c = client(msg)
    const state = c.provider.awareness.getLocalState()
    const json = JSON.stringify(state)
    return { clientID: c.doc.clientID, state, json, base64: toBase64(Buffer.from(json, 'utf-8')) }
  },

  setAwareness: (msg) => {
    const c = client(msg)
    if (msg.state === undefined) throw new CommandError('missing state (null removes it)')
    c.provider.awareness.setLocalState(msg.state)
    return { clientID: c.doc.clientID }
  },

  disconnect: (msg) => {
    const c = client(msg)
    c.provider.disconnect()
    return c.status()
  },

  reconnect: (msg) => {
    const c = client(msg)
    c.provider.connect()
    return c.status()
  },

  /** Drop the TCP connection without a close frame or an awareness goodbye (a crash). */
  kill: (msg) => {
    const c = client(msg)
    c.provider.shouldConnect = false
    const ws = c.provider.ws
    if (ws !== null) ws.terminate()
    return { killed: ws !== null }
  },

  status: (msg) => client(msg).status(),

  stateVector: (msg) => {
    const c = client(msg)
    const sv = Y.encodeStateVector(c.doc)
    const clocks = {}
    for (const [clientID, clock] of Y.decodeStateVector(sv)) clocks[clientID] = clock
    return { base64: toBase64(sv), clocks }
  },

  destroy: (msg) => {
    const c = client(msg)
    clients.delete(c.name)
    c.destroy()
    return { destroyed: c.name }
  },

  /** Reply after `ms` milliseconds (at most MAX_TIMEOUT_MS): lets a test check liveness. */
  sleep: async (msg) => {
    const ms = Math.min(needInt(msg, 'ms'), MAX_TIMEOUT_MS)
    await sleep(ms)
    return { slept: ms }
  }
}

function reply (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function handle (line) {
  if (line.trim() === '') return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    reply({ id: null, error: `not JSON: ${err.message}` })
    return
  }
  const id = msg && typeof msg === 'object' ? msg.id ?? null : null
  try {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new CommandError('a command is a JSON object')
    const fn = Object.prototype.hasOwnProperty.call(commands, msg.cmd) ? commands[msg.cmd] : undefined
    if (fn === undefined) throw new CommandError(`unknown command ${JSON.stringify(msg.cmd)}`)
    const result = await fn(msg)
    reply({ id, result: result === undefined ? null : result })
  } catch (err) {
    reply({ id, error: err instanceof Error ? err.message : String(err) })
  }
}

function shutdown () {
  for (const c of clients.values()) {
    try { c.destroy() } catch (err) { /* going away anyway */ }
  }
  clients.clear()
  // Let the close frames go out, but never hang.
  setTimeout(() => process.exit(0), 200).unref()
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => { handle(line) })
rl.on('close', shutdown)
process.on('SIGTERM', shutdown)
reply({ id: null, ready: true, node: process.version })
