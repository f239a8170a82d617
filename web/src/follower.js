// A viewer's playhead: where to show the demo now, smooth and in step with the server.
// Mirrors demos/follower.py exactly (keep the two in step; its docstring explains why):
// 1. States wait until their `at` (the first one, or another demo's, is in force at once);
//    the newest whose at <= server now is in force.
// 2. target = min(position + (serverNow − at)/1000 × rate, duration) while playing, else position.
// 3. Not playing, the first state, or another demo: shown = target exactly.
// 4. Playing: elapsed = local seconds since the last tick, at most (serverNow − at)/1000;
//    ahead = shown + elapsed × rate; error = target − ahead. |error| > 0.3: shown = target
//    (a seek). Else nudge = clamp(GAIN × error, ±MAX_NUDGE) and shown = ahead +
//    elapsed × rate × nudge, never past the target (a long frame lands on it).
// 5. shown stays within [0, duration].

export const GAIN = 5
export const MAX_NUDGE = 0.1
export const SEEK_THRESHOLD = 0.3
export const MAX_PENDING = 16

const clamp = (x, lo, hi) => (x < lo ? lo : x > hi ? hi : x)

/** Where `state` puts the demo at server ms `now` (the server's PlaybackState.position_at). */
export function positionAt (state, now) {
  if (!state) return 0
  if (!state.playing || now <= state.at) return state.position
  return Math.min(state.position + (now - state.at) / 1000 * state.rate, state.duration)
}

export class Follower {
  constructor () {
    this.state = null // the state in force
    this.shown = 0
    this.target = 0
    this.seeks = 0
    this.pending = []
    this.lastLocal = null
    this.fresh = false
  }

  /** A demo.state arrived ({demo, position, playing, rate, at, kind, duration, mode}). */
  update (state) {
    // the server's newest word wins: anything pending for later is superseded
    this.pending = this.pending.filter((s) => s.at < state.at).slice(-(MAX_PENDING - 1))
    this.pending.push(state)
    if (this.state === null) this.take(this.pending.shift())
  }

  take (state) {
    const previous = this.state
    if (previous === null || previous.demo !== state.demo || previous.kind !== state.kind) this.fresh = true
    this.state = state
  }

  promote (serverNow) {
    while (this.pending.length && this.pending[0].at <= serverNow) this.take(this.pending.shift())
  }

  /** Show the next state exactly (after this page followed its own playback for a while). */
  resync () { this.fresh = true }

  /** Advance to local ms `localNow`, with the server time `serverNow`; returns what to show. */
  tick (localNow, serverNow) {
    this.promote(serverNow)
    const last = this.lastLocal
    this.lastLocal = localNow
    const state = this.state
    if (state === null) return this.shown
    const target = this.target = positionAt(state, serverNow)
    let shown
    if (this.fresh || !state.playing || last === null) {
      this.fresh = false
      shown = target
    } else {
      // playing time since the last frame: not before the state took effect
      const elapsed = Math.max(0, Math.min(localNow - last, serverNow - state.at)) / 1000
      const ahead = this.shown + elapsed * state.rate
      const error = target - ahead
      if (Math.abs(error) > SEEK_THRESHOLD) {
        shown = target
        this.seeks++
      } else {
        const nudge = clamp(GAIN * error, -MAX_NUDGE, MAX_NUDGE)
        let correction = elapsed * state.rate * nudge
        if (Math.abs(correction) > Math.abs(error)) correction = error // a long frame: land on the target
        shown = ahead + correction
      }
    }
    this.shown = clamp(shown, 0, Math.max(state.duration, 0))
    return this.shown
  }
}
