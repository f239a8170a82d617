// The server's clock, estimated from ping/pong on the room extension channel (NTP-style).
// Mirrors demos/clock.py exactly (keep the two in step): each pong gives
// offset = server_time − (t0 + t1)/2 and delay = t1 − t0; of the 16 most recent samples, the
// estimate is the median offset of the 3 with the lowest delay (the newest wins a tie).
// 6 pings 50 ms apart when the socket opens (the first at once), then one every 2 s. Until
// the first pong, the hello's server_time gives a rough offset (the seed).

export const WINDOW = 16
export const BEST = 3
export const BURST_COUNT = 6
export const BURST_INTERVAL_MS = 50
export const REFRESH_INTERVAL_MS = 2000

/** Local wall-clock milliseconds since the epoch, monotonic within the page. */
export const localNow = () => performance.timeOrigin + performance.now()

function median (values) {
  const v = [...values].sort((a, b) => a - b)
  const mid = v.length >> 1
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Milliseconds before the next ping when `sent` pings have gone already. */
export function pingDelay (sent) {
  if (sent <= 0) return 0
  if (sent < BURST_COUNT) return BURST_INTERVAL_MS
  return REFRESH_INTERVAL_MS
}

/** The offset estimate from samples [{offset, delay}], oldest first (null without any). */
export function estimate (samples) {
  if (samples.length === 0) return null
  // newest first, so that the stable sort by delay lets the newest win a tie
  const best = [...samples].reverse().sort((a, b) => a.delay - b.delay).slice(0, BEST)
  return median(best.map((s) => s.offset))
}

/**
 * send(message) → bool sends on the room channel; now() is the local clock (ms).
 * Until the first pong the offset comes from the server's hello (coarse: one way only).
 */
export class ClockSync {
  constructor ({ send, now = localNow }) {
    this.send = send
    this.now = now
    this.samples = []
    this.nextId = 1
    this.timer = null
    this.sent = 0
    this.seed = null // from the hello's server_time
    this.best = null
  }

  /** The server's hello (its server_time): a rough offset until the first pong. */
  seedWith (helloServerTime) {
    if (Number.isFinite(helloServerTime)) this.seed = helloServerTime - this.now()
  }

  get running () { return this.timer !== null }

  /** Start probing (the socket is open): a burst, then one every 2 s until stop(). */
  start () {
    this.stop()
    this.sent = 0
    const next = () => {
      this.timer = setTimeout(() => {
        this.send({ type: 'ping', id: this.nextId++, client_time: this.now() })
        this.sent++
        next()
      }, pingDelay(this.sent))
    }
    next()
  }

  stop () {
    clearTimeout(this.timer)
    this.timer = null
  }

  /** A pong: one sample (t0 is the client_time the server echoes). */
  pong (msg) {
    this.add(msg.client_time, msg.server_time, this.now())
  }

  add (t0, serverTime, t1) {
    if (![t0, serverTime, t1].every(Number.isFinite) || t1 < t0) return
    this.samples.push({ offset: serverTime - (t0 + t1) / 2, delay: t1 - t0 })
    if (this.samples.length > WINDOW) this.samples.splice(0, this.samples.length - WINDOW)
    this.best = estimate(this.samples)
  }

  /** Server ms − local ms: the estimate, else the seed, else 0. */
  offset () {
    if (this.best !== null) return this.best
    return this.seed ?? 0
  }

  /** The lowest round trip in the window (ms), null before the first pong. */
  delay () {
    return this.samples.length ? Math.min(...this.samples.map((s) => s.delay)) : null
  }

  synced () { return this.best !== null }

  serverNow () { return this.now() + this.offset() }
}
