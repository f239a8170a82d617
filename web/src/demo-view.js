// The demo's own read-only editor: a CodeMirror view of the demo's Y.Doc (a Y.Map "files"
// of Y.Text, separate from the room's shared document), with file tabs, the step's
// highlights and a recording's cursors. Highlights are kept as Yjs relative positions on the
// demo's Y.Text and mapped back to offsets on every change, so they follow the text as it
// changes under them (the next updates of a recording, the next step's edits).
import * as Y from 'yjs'
import { EditorView, basicSetup } from 'codemirror'
import { EditorState, StateField, StateEffect } from '@codemirror/state'
import { Decoration, WidgetType } from '@codemirror/view'
import { python } from '@codemirror/lang-python'
import { javascript } from '@codemirror/lang-javascript'
import { yCollab } from 'y-codemirror.next'
import { h } from './util.js'

function languageFor (path) {
  if (/\.py$/i.test(path)) return python()
  if (/\.(m|c)?jsx?$/i.test(path)) return javascript({ jsx: /x$/i.test(path) })
  if (/\.tsx?$/i.test(path)) return javascript({ typescript: true, jsx: /x$/i.test(path) })
  return []
}

const setMarks = StateEffect.define()
const marksField = StateField.define({
  create: () => Decoration.none,
  update (marks, tr) {
    for (const e of tr.effects) if (e.is(setMarks)) return e.value
    return marks.map(tr.changes)
  },
  provide: (f) => EditorView.decorations.from(f)
})

/** The Y.Text's minimal middle replacement so that it reads `text` (what the server does). */
export function setText (ytext, text) {
  const old = ytext.toString()
  if (old === text) return
  let start = 0
  const max = Math.min(old.length, text.length)
  while (start < max && old[start] === text[start]) start++
  let end = 0
  while (end < max - start && old[old.length - 1 - end] === text[text.length - 1 - end]) end++
  ytext.doc.transact(() => {
    if (old.length - start - end > 0) ytext.delete(start, old.length - start - end)
    if (text.length - start - end > 0) ytext.insert(start, text.slice(start, text.length - end))
  })
}

/** The demo view in `host`: tabs and the editor. */
export function createDemoView (host) {
  const tabs = h('div', { class: 'demo-tabs', role: 'tablist', 'aria-label': 'Files of the demo' })
  const editorHost = h('div', { class: 'demo-editor' })
  host.replaceChildren(tabs, editorHost)

  let doc = new Y.Doc()
  let view = null
  let current = null
  let highlights = [] // [{file, start: RelativePosition, end: RelativePosition, note}]
  let cursors = [] // [{file, anchor, head, user}] (character offsets)
  let bound = null // the Y.Text the editor shows
  let scrollNext = false

  const filesMap = () => doc.getMap('files')
  const paths = () => [...filesMap().keys()].sort((a, b) => a.localeCompare(b))

  function onDocChange () {
    renderTabs()
    const files = filesMap()
    if (current === null || !files.has(current) || files.get(current) !== bound) open(current !== null && files.has(current) ? current : paths()[0] ?? null)
    else renderMarks()
  }

  function setDoc (fresh) {
    if (doc !== fresh) {
      doc.off('afterTransaction', onDocChange)
      doc = fresh
      doc.on('afterTransaction', onDocChange)
      bound = null
    }
    onDocChange()
  }
  doc.on('afterTransaction', onDocChange)

  function open (path) {
    const files = filesMap()
    const ytext = path !== null && files.has(path) ? files.get(path) : null
    if (view) { view.destroy(); view = null }
    current = ytext ? path : null
    bound = ytext
    if (!ytext) {
      editorHost.replaceChildren(h('p', { class: 'empty' }, 'No files in the demo here.'))
      renderTabs()
      return
    }
    view = new EditorView({
      parent: editorHost,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          basicSetup,
          languageFor(path),
          EditorState.readOnly.of(true),
          EditorView.editable.of(false),
          EditorView.contentAttributes.of({ 'aria-label': `Demo file ${path} (read-only)` }),
          yCollab(ytext, null, { undoManager: false }),
          marksField
        ]
      })
    })
    editorHost.querySelectorAll(':scope > :not(.cm-editor)').forEach((el) => el.remove())
    renderTabs()
    renderMarks()
  }

  function renderTabs () {
    tabs.replaceChildren(...paths().map((path) => h('button', {
      class: 'demo-tab' + (path === current ? ' active' : ''),
      type: 'button',
      role: 'tab',
      'aria-selected': String(path === current),
      dataset: { path },
      onclick: () => open(path)
    }, path)))
  }

  /** Where the highlights are now, as [{file, from, to, note}] (character offsets). */
  function resolved () {
    const out = []
    for (const hl of highlights) {
      const a = Y.createAbsolutePositionFromRelativePosition(hl.start, doc)
      const b = Y.createAbsolutePositionFromRelativePosition(hl.end, doc)
      if (!a || !b || a.type !== b.type) continue
      const ytext = filesMap().get(hl.file)
      if (a.type !== ytext) continue
      out.push({ file: hl.file, from: a.index, to: Math.max(a.index, b.index), note: hl.note })
    }
    return out
  }

  function renderMarks () {
    if (!view) return
    const length = view.state.doc.length
    const ranges = []
    for (const r of resolved()) {
      if (r.file !== current) continue
      const from = Math.min(r.from, length)
      const to = Math.min(r.to, length)
      const attrs = { class: 'cm-demo-highlight', ...(r.note ? { title: r.note } : {}) }
      if (to > from) ranges.push(Decoration.mark({ attributes: attrs }).range(from, to))
      const first = view.state.doc.lineAt(from).number
      const last = view.state.doc.lineAt(Math.max(from, to - (to > from ? 1 : 0))).number
      for (let n = first; n <= last; n++) {
        ranges.push(Decoration.line({ attributes: { class: 'cm-demo-highlight-line' } }).range(view.state.doc.line(n).from))
      }
    }
    for (const c of cursors) {
      if (c.file !== current) continue
      const from = Math.min(c.anchor, c.head, length)
      const to = Math.min(Math.max(c.anchor, c.head), length)
      if (to > from) ranges.push(Decoration.mark({ attributes: { class: 'cm-demo-cursor-range', title: c.user } }).range(from, to))
      ranges.push(Decoration.widget({ widget: new CaretWidget(c.user), side: 1 }).range(Math.min(c.head, length)))
    }
    const effects = [setMarks.of(Decoration.set(ranges, true))]
    const firstMark = resolved().find((r) => r.file === current)
    if (scrollNext && firstMark) {
      effects.push(EditorView.scrollIntoView(Math.min(firstMark.from, length), { y: 'center' }))
      scrollNext = false
    }
    view.dispatch({ effects })
  }

  /** Highlight `list` ([{file, from, to, note}] character offsets on the current texts). */
  function setHighlights (list) {
    highlights = []
    for (const r of list) {
      const ytext = filesMap().get(r.file)
      if (!(ytext instanceof Y.Text)) continue
      highlights.push({
        file: r.file,
        // the start sticks to the character after it, the end to the one before it
        start: Y.createRelativePositionFromTypeIndex(ytext, r.from, 0),
        end: Y.createRelativePositionFromTypeIndex(ytext, r.to, -1),
        note: r.note || null
      })
    }
    const first = list.find((r) => filesMap().has(r.file))
    scrollNext = Boolean(first)
    if (first && first.file !== current) open(first.file)
    else renderMarks()
  }

  function setCursors (list) {
    const same = JSON.stringify(list) === JSON.stringify(cursors)
    cursors = list
    if (!same) renderMarks()
  }

  return {
    setDoc,
    setHighlights,
    setCursors,
    open,
    resolved,
    get doc () { return doc },
    get current () { return current },
    files: () => Object.fromEntries(paths().map((p) => [p, filesMap().get(p).toString()])),
    text: (path) => filesMap().get(path)?.toString() ?? null,
    destroy () { if (view) view.destroy(); doc.off('afterTransaction', onDocChange) }
  }
}

class CaretWidget extends WidgetType {
  constructor (user) { super(); this.user = user }
  eq (other) { return other.user === this.user }
  toDOM () {
    return h('span', { class: 'cm-demo-caret', title: this.user, 'aria-hidden': 'true' })
  }
}
