// A demo's content at a point of its timeline, from the document GET /api/demos/<id> gives
// (format v1, demos/format.py): a walkthrough's files after its steps' changes, the range a
// highlight covers, and a recording's updates, snapshots, output and markers by time.
import * as Y from 'yjs'

// --- walkthroughs: mirrors demos/format.py (apply_change, files_at_steps, highlight_range) --

function anchorOffset (text, change) {
  if (change.anchor === null || change.anchor === undefined) return text.length
  if (change.anchor === '') return null
  const found = text.indexOf(change.anchor)
  if (found === -1 || text.indexOf(change.anchor, found + 1) !== -1) return null // 0 or 2+ times
  return change.where === 'before' ? found : found + change.anchor.length
}

/** Apply one change to `files` (path → text) in place; false when it cannot apply. */
export function applyChange (files, change) {
  if (!change || typeof change.path !== 'string') return false
  if (change.op === 'set') { files[change.path] = String(change.text ?? ''); return true }
  if (!Object.hasOwn(files, change.path)) return false
  if (change.op === 'delete') { delete files[change.path]; return true }
  if (change.op !== 'insert') return false
  const text = files[change.path]
  const at = anchorOffset(text, change)
  if (at === null) return false
  files[change.path] = text.slice(0, at) + String(change.text ?? '') + text.slice(at)
  return true
}

/** The files after the steps 0..index (document order), a fresh object. */
export function filesAtStep (demo, index) {
  const files = { ...(demo.files || {}) }
  const steps = demo.steps || []
  for (let i = 0; i <= Math.min(index, steps.length - 1); i++) {
    for (const change of steps[i].changes || []) applyChange(files, change)
  }
  return files
}

/** [start, end) offsets (UTF-16 units, as CodeMirror and Yjs count) a highlight covers in
 * `text`, or null. Columns count characters (code points), as demos/format.py does, so a
 * line with an emoji before the highlight lands on the same text in both. */
export function highlightRange (text, hl) {
  if (typeof hl.pattern === 'string') {
    let re
    try { re = new RegExp(hl.pattern, 'm') } catch { return null }
    const m = re.exec(text)
    return m ? [m.index, m.index + m[0].length] : null
  }
  if (!hl.start) return null
  const lines = text.split('\n')
  const starts = [0]
  for (const line of lines) starts.push(starts[starts.length - 1] + line.length + 1)
  const offset = (pos) => {
    const line = pos.line
    const column = pos.column ?? 1
    if (line < 1 || line > lines.length || column < 1) return null
    const chars = Array.from(lines[line - 1])
    if (column > chars.length + 1) return null
    return starts[line - 1] + chars.slice(0, column - 1).join('').length
  }
  const begin = offset(hl.start)
  let end
  if (!hl.end) end = begin === null ? null : starts[hl.start.line - 1] + lines[hl.start.line - 1].length
  else end = offset(hl.end)
  if (begin === null || end === null || end < begin) return null
  return [begin, end]
}

// --- recordings -----------------------------------------------------------------------------

function fromBase64 (s) {
  const bin = atob(String(s || ''))
  const bytes = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
  return bytes
}

/** How many items of `list` (sorted by t) have t <= `t` (or t < `t` when `strict`). */
export function countUpTo (list, t, strict = false) {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (strict ? list[mid].t < t : list[mid].t <= t) lo = mid + 1
    else hi = mid
  }
  return lo
}

const byTime = (a, b) => a.t - b.t

/** A recording's timeline, decoded once: events by time, snapshots, markers, output. */
export class Recording {
  constructor (demo) {
    const rec = demo.recording || {}
    // in time order (the format's rule; a stable sort keeps equal times as recorded)
    const events = (rec.events || []).filter((e) => e && Number.isFinite(e.t)).sort(byTime)
    this.updates = events.filter((e) => e.type === 'update').map((e) => ({ t: e.t, bytes: fromBase64(e.update) }))
    this.snapshots = (rec.snapshots || []).filter((s) => s && Number.isFinite(s.t))
      .map((s) => ({ t: s.t, bytes: fromBase64(s.state) })).sort((a, b) => a.t - b.t)
    this.markers = events.filter((e) => e.type === 'marker').map((e) => ({ t: e.t, label: String(e.label) }))
    this.output = events.filter((e) => e.type === 'output')
    this.cursors = events.filter((e) => e.type === 'cursor')
    const last = events.reduce((m, e) => Math.max(m, e.t), 0)
    this.duration = Math.max(Number(rec.duration) || 0, last)
    this.files = demo.files || {}
  }

  /**
   * A fresh Y.Doc of the workspace at `t` seconds, as demos/replay.py builds it: the latest
   * snapshot at or before t (else the demo's starting files), then the updates from the
   * snapshot's time up to t (one the snapshot holds already changes nothing).
   */
  docAt (t) {
    const doc = new Y.Doc()
    let snapshot = null
    for (const s of this.snapshots) {
      if (s.t > t) break
      snapshot = s
    }
    if (snapshot) {
      Y.applyUpdate(doc, snapshot.bytes, 'demo')
    } else {
      const files = doc.getMap('files')
      doc.transact(() => { for (const [p, text] of Object.entries(this.files)) files.set(p, new Y.Text(String(text))) }, 'demo')
    }
    const since = snapshot ? snapshot.t : 0
    const end = countUpTo(this.updates, t)
    doc.transact(() => {
      for (let i = countUpTo(this.updates, since, true); i < end; i++) Y.applyUpdate(doc, this.updates[i].bytes, 'demo')
    }, 'demo')
    return doc
  }

  /** Apply the updates in (from, to] to `doc` (playing forward). */
  advance (doc, from, to) {
    const start = countUpTo(this.updates, from)
    const end = countUpTo(this.updates, to)
    if (start >= end) return
    doc.transact(() => {
      for (let i = start; i < end; i++) Y.applyUpdate(doc, this.updates[i].bytes, 'demo')
    }, 'demo')
  }

  /** Whether any update has from < t ≤ to. */
  updatesBetween (from, to) {
    return countUpTo(this.updates, to) > countUpTo(this.updates, from)
  }

  /** The output events with from < t ≤ to. */
  outputBetween (from, to) {
    return this.output.slice(countUpTo(this.output, from), countUpTo(this.output, to))
  }

  /** Each user's latest cursor at `t`: [{user, file, anchor, head}]. */
  cursorsAt (t) {
    const latest = new Map()
    const end = countUpTo(this.cursors, t)
    for (let i = 0; i < end; i++) latest.set(this.cursors[i].user, this.cursors[i])
    return [...latest.values()]
  }
}
