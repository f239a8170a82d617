// A demo step's highlights in the room's own editor, as Yjs relative positions on the room's
// Y.Text mapped back to offsets on every change, so they follow the code as people edit it.
// They come from the server after a presenter's `copy` (`demo.highlights`, already anchored),
// or from this browser's "Try it": the player leaves them (character offsets in the files it
// copied) in localStorage under the copy's room id, and the copy's page anchors them once
// (stored back anchored, so a reload keeps them).
import * as Y from 'yjs'
import { StateField, StateEffect } from '@codemirror/state'
import { Decoration, EditorView } from '@codemirror/view'

const key = (room) => `ocl.fork.highlights.${room}`

/** Leave `list` ([{file, from, to, note}]) for the copy `room` to show. */
export function saveForkHighlights (room, list) {
  try {
    if (list.length) localStorage.setItem(key(room), JSON.stringify({ offsets: list }))
    else localStorage.removeItem(key(room))
  } catch { /* no storage: no highlights, nothing else lost */ }
}

const setMarks = StateEffect.define()
const marks = StateField.define({
  create: () => Decoration.none,
  update (value, tr) {
    for (const e of tr.effects) if (e.is(setMarks)) return e.value
    return value.map(tr.changes)
  },
  provide: (f) => EditorView.decorations.from(f)
})

/**
 * The highlights for the room `roomId` (its Y.Doc `doc`), shown in the editor `editor()`
 * returns ({view, path} or null); `extension` goes in that editor.
 */
export function setupRoomHighlights (roomId, doc, editor) {
  const files = doc.getMap('files')
  let anchors = null // [{file, start, end, note}] with Yjs relative positions
  let fromDemo = null // the demo whose `copy` they come from (null: a "Try it" copy's)

  function read () {
    try { return JSON.parse(localStorage.getItem(key(roomId)) || 'null') } catch { return null }
  }

  /** Once the room is synced: anchor what the player left (or what was anchored before). */
  function load () {
    if (anchors !== null) return
    const saved = read()
    if (!saved || typeof saved !== 'object') { anchors = []; return }
    anchors = []
    if (Array.isArray(saved.anchors)) {
      for (const a of saved.anchors) {
        try {
          anchors.push({ file: a.file, start: Y.createRelativePositionFromJSON(a.start), end: Y.createRelativePositionFromJSON(a.end), note: a.note || null })
        } catch { /* skip a damaged one */ }
      }
      return
    }
    for (const r of Array.isArray(saved.offsets) ? saved.offsets : []) {
      const ytext = files.get(r.file)
      if (!(ytext instanceof Y.Text) || !(r.from >= 0 && r.to >= r.from && r.to <= ytext.length)) continue
      anchors.push({
        file: r.file,
        start: Y.createRelativePositionFromTypeIndex(ytext, r.from, 0),
        end: Y.createRelativePositionFromTypeIndex(ytext, r.to, -1),
        note: r.note || null
      })
    }
    try {
      localStorage.setItem(key(roomId), JSON.stringify({
        anchors: anchors.map((a) => ({ file: a.file, start: Y.relativePositionToJSON(a.start), end: Y.relativePositionToJSON(a.end), note: a.note }))
      }))
    } catch { /* kept for this page only */ }
  }

  /** `demo.highlights`: the step's highlights in the files a presenter copied into the room. */
  function fromServer (msg) {
    const items = Array.isArray(msg.items) ? msg.items : []
    anchors = []
    fromDemo = String(msg.demo || '')
    for (const a of items) {
      if (!(a && a.start instanceof Uint8Array && a.end instanceof Uint8Array)) continue
      try {
        anchors.push({ file: String(a.file), start: Y.decodeRelativePosition(a.start), end: Y.decodeRelativePosition(a.end), note: a.note || null })
      } catch { /* skip a damaged one */ }
    }
  }

  /** The room's demo changed (or was closed): a copy's highlights go with it. */
  function demoChanged (demo) {
    if (fromDemo !== null && demo !== fromDemo) { anchors = []; fromDemo = null }
  }

  /** Where they are now in `path`: [{from, to, note}]. */
  function resolved (path) {
    const out = []
    const ytext = files.get(path)
    if (!anchors || !(ytext instanceof Y.Text)) return out
    for (const a of anchors) {
      if (a.file !== path) continue
      const s = Y.createAbsolutePositionFromRelativePosition(a.start, doc)
      const e = Y.createAbsolutePositionFromRelativePosition(a.end, doc)
      if (!s || !e || s.type !== ytext || e.type !== ytext) continue
      out.push({ from: s.index, to: Math.max(s.index, e.index), note: a.note })
    }
    return out
  }

  /** Show them in `view`, the editor of `path`. */
  function render (view, path) {
    if (!view || !anchors) return
    if (anchors.length === 0 && view.state.field(marks).size === 0) return
    const length = view.state.doc.length
    const ranges = resolved(path)
      .filter((r) => r.to > r.from && r.to <= length)
      .map((r) => Decoration.mark({ attributes: { class: 'cm-demo-highlight', title: r.note ? `From the demo: ${r.note}` : 'From the demo' } }).range(r.from, r.to))
    view.dispatch({ effects: setMarks.of(Decoration.set(ranges, true)) })
  }

  function refresh () {
    const e = editor()
    if (e && e.view) render(e.view, e.path)
  }

  // after every change, once the editor has it (not inside the editor's own update)
  let queued = false
  doc.on('afterTransaction', () => {
    if (queued) return
    queued = true
    queueMicrotask(() => { queued = false; refresh() })
  })

  /** A room message: true when it was this module's alone (`demo.highlights`). */
  function message (msg) {
    if (msg.type === 'demo.highlights') {
      fromServer(msg)
      refresh()
      return true
    }
    if (msg.type === 'demo.state') {
      demoChanged(typeof msg.demo === 'string' ? msg.demo : null)
      refresh()
    }
    return false
  }

  return { extension: marks, load, render, resolved, message }
}
