// The demo player: the room's synchronized demo (a walkthrough's steps or a recording), shown
// beside the room's own editor. The server holds the playback state ({demo, position,
// playing, rate, at, ...}, sent as `demo.state` on change only); this page estimates the
// server clock (clock.js) and follows the state smoothly (follower.js). Staff who can edit
// present (load, play/pause, steps, seek, rate, live/self-paced); everyone else follows, may
// pause or scrub on their own and come back to live, and may copy the files on screen into
// a room of their own ("Try it"). In self-paced mode everyone plays on their own and their
// progress is kept. Content comes once over HTTP (GET /api/demos/<id>), never on the socket.
import { h, fetchJSON, toast } from './util.js'
import { STAFF_ROLES } from './session.js'
import { ClockSync, localNow } from './clock.js'
import { Follower, positionAt } from './follower.js'
import { renderMarkdown } from './markdown.js'
import { filesAtStep, highlightRange, Recording, countUpTo } from './demo-files.js'
import { createDemoView, setText } from './demo-view.js'
import { setupQuestions } from './questions.js'
import { createTimeline, clock } from './timeline.js'
import { setupQuiz } from './quiz.js'
import { setupRecordControls } from './record-controls.js'
import { createTryIt } from './fork.js'
import { loadProgress, progressSaver } from './progress.js'
import * as Y from 'yjs'

const RATES = [0.5, 0.75, 1, 1.25, 1.5, 2]
const DEMO_NOTICES = new Set(['bad-demo-command', 'no-such-demo', 'bad-question', 'bad-quiz-answer', 'bad-record-command', 'record-full'])

function normalize (msg) {
  return {
    demo: typeof msg.demo === 'string' && msg.demo ? msg.demo : null,
    position: Number(msg.position) || 0,
    playing: Boolean(msg.playing),
    rate: Number(msg.rate) || 1,
    at: Number(msg.at) || 0,
    by: String(msg.by || ''),
    kind: String(msg.kind || ''),
    duration: Number(msg.duration) || 0,
    mode: msg.mode === 'self-paced' ? 'self-paced' : 'live'
  }
}

/**
 * send(message) → bool: the room channel; roomId; me (/api/me); mount: the element the panel
 * goes before (the room's editor).
 */
export function setupPlayer ({ send, roomId, me, mount }) {
  const sync = new ClockSync({ send })
  const follower = new Follower()
  let userRole = me.role
  let canEdit = false
  let room = null // the latest demo.state (the follower puts it in force at its `at`)
  let demo = null // {id, doc, kind, title, steps, recording, duration}
  let loading = null // the id being fetched
  let local = null // this viewer's own playback {position, playing, rate, at (local ms), duration}
  let shown = 0
  let shownAt = 0 // the local ms of the frame that computed it
  let applied = null // what the view shows: {step} or {t}
  let frameHandle = null
  let lastDemoSend = 0
  let library = null // [{id, title, kind}]
  let connected = false // the socket is open (a hello came since the last disconnect)
  let greeted = false // a hello came and no demo.state yet (the server sends it right after, if any)

  const staff = () => STAFF_ROLES.has(userRole) && canEdit
  const selfPaced = () => Boolean(room && room.demo && room.mode === 'self-paced')
  /** This page drives the room's playback (rather than its own). */
  const presenting = () => staff() && !selfPaced() && local === null

  // --- the panel ------------------------------------------------------------------
  const picker = h('select', { id: 'demo-picker', 'aria-label': 'Demo to load' }, h('option', { value: '' }, 'Choose a demo…'))
  const loadBtn = h('button', { class: 'btn small primary', id: 'demo-load', type: 'button', onclick: loadChosen }, 'Load')
  const unloadBtn = h('button', { class: 'btn small', id: 'demo-unload', type: 'button', onclick: () => command('unload') }, 'Close demo')
  const copyBtn = h('button', {
    class: 'btn small', id: 'demo-copy', type: 'button', onclick: () => command('copy'),
    title: 'Put the demo’s files as they are now into the room’s shared files (with the step’s highlights), for the class to work on'
  }, 'Copy into room')
  const modeSel = h('select', { id: 'demo-mode', 'aria-label': 'Playback mode', onchange: () => command('mode', { mode: modeSel.value }) },
    h('option', { value: 'live' }, 'Live: everyone follows'), h('option', { value: 'self-paced' }, 'Self-paced'))
  const refreshBtn = h('button', { class: 'icon-btn', type: 'button', title: 'Refresh the list', 'aria-label': 'Refresh the demo list', onclick: () => fetchLibrary(true) }, '↻')
  const staffBar = h('div', { class: 'demo-staff', id: 'demo-staff', hidden: true }, h('span', { class: 'demo-label' }, 'Demo'), picker, refreshBtn, loadBtn, unloadBtn, copyBtn, modeSel)

  const title = h('h2', { class: 'demo-title', id: 'demo-title' })
  const liveBadge = h('span', { class: 'demo-live', id: 'demo-live' })
  const syncText = h('span', { class: 'demo-sync', id: 'demo-sync', title: 'How closely this page follows the server clock' })
  const collapseBtn = h('button', { class: 'icon-btn', type: 'button', id: 'demo-collapse', 'aria-expanded': 'true', 'aria-label': 'Hide the demo', onclick: toggleCollapsed }, '▾')

  const prevBtn = h('button', { class: 'btn small', id: 'demo-prev', type: 'button', 'aria-label': 'Previous step', onclick: () => step(-1) }, '◀ Prev')
  const playBtn = h('button', { class: 'btn small primary', id: 'demo-play', type: 'button', onclick: playPause }, '▶ Play')
  const nextBtn = h('button', { class: 'btn small', id: 'demo-next', type: 'button', 'aria-label': 'Next step', onclick: () => step(1) }, 'Next ▶')
  const position = h('span', { class: 'demo-position', id: 'demo-position', role: 'timer', 'aria-live': 'off' })
  const rateSel = h('select', { id: 'demo-rate', 'aria-label': 'Playback rate', onchange: () => setRate(Number(rateSel.value)) },
    RATES.map((r) => h('option', { value: String(r) }, `${r}×`)))
  const pauseMe = h('button', { class: 'btn small', id: 'demo-pause-me', type: 'button', onclick: pauseForMe, title: 'Stop following the presenter: pause here, on your own' }, '❚❚ Pause for me')
  const backLive = h('button', { class: 'btn small primary', id: 'demo-back-live', type: 'button', onclick: backToLive, title: 'Follow the presenter again' }, '⟲ Back to live')
  const tryIt = createTryIt({ roomId, me, files: () => (demo ? view.files() : {}), highlights: () => view.resolved() })
  const transport = h('div', { class: 'demo-transport' }, prevBtn, playBtn, nextBtn, position, rateSel, pauseMe, backLive, h('span', { class: 'spacer' }), tryIt.button, tryIt.link)

  const timeline = createTimeline({ seek: (where) => seek(where), shown: () => shown })

  const stepTitle = h('h3', { class: 'demo-step-title', id: 'demo-step-title' })
  const narration = h('div', { class: 'demo-narration', id: 'demo-narration' })
  const branches = h('div', { class: 'demo-branches', id: 'demo-branches' })
  const runNote = h('p', { class: 'demo-run-note', id: 'demo-run-note', hidden: true })
  const quizHost = h('section', { class: 'demo-quiz', id: 'demo-quiz', 'aria-label': 'Question of this step', hidden: true })
  const questionsHost = h('section', { class: 'demo-questions', id: 'demo-questions', 'aria-label': 'Questions' })
  const viewHost = h('div', { class: 'demo-view', id: 'demo-view' })
  const output = h('pre', { class: 'demo-output', id: 'demo-output', 'aria-label': 'Output of the recording so far' })
  const side = h('div', { class: 'demo-side' }, stepTitle, narration, branches, runNote, quizHost, questionsHost)
  const body = h('div', { class: 'demo-body', id: 'demo-body', hidden: true },
    transport, timeline.element,
    h('div', { class: 'demo-columns' }, side, h('div', { class: 'demo-main' }, viewHost, output)))
  const recordHost = h('span', { class: 'demo-record' })
  const panel = h('section', { class: 'demo', id: 'demo-panel', 'aria-label': 'Demo', hidden: true, dataset: { state: 'none' } },
    h('div', { class: 'demo-bar' }, collapseBtn, title, staffBar, recordHost, h('span', { class: 'spacer' }), liveBadge, syncText),
    body)
  mount.before(panel)

  const view = createDemoView(viewHost)
  const questions = setupQuestions({ host: questionsHost, send, staff, where: place, serverNow: () => sync.serverNow() })
  const quiz = setupQuiz({ host: quizHost, send, staff })
  const saver = progressSaver(progressNow)
  const recorder = setupRecordControls({
    host: recordHost,
    send,
    staff,
    serverNow: () => sync.serverNow(),
    onSaved: async (id) => {
      await fetchLibrary(true)
      if (library && library.some((d) => d.id === id)) picker.value = id
    }
  })

  function toggleCollapsed () {
    const collapsed = !panel.classList.contains('collapsed')
    panel.classList.toggle('collapsed', collapsed)
    collapseBtn.setAttribute('aria-expanded', String(!collapsed))
    collapseBtn.setAttribute('aria-label', collapsed ? 'Show the demo' : 'Hide the demo')
    collapseBtn.textContent = collapsed ? '▸' : '▾'
  }

  // --- the library (staff) ----------------------------------------------------------
  async function fetchLibrary (force = false) {
    if (!staff() || (library && !force)) return
    try {
      const answer = await fetchJSON('/api/demos')
      library = Array.isArray(answer.demos) ? answer.demos : []
    } catch (err) {
      library = library || []
      toast(`The demo library cannot be read: ${err.message}`)
    }
    const chosen = picker.value
    picker.replaceChildren(h('option', { value: '' }, library.length ? 'Choose a demo…' : 'No demos in the library'),
      ...library.map((d) => h('option', { value: d.id }, `${d.title} (${d.kind})`)))
    if (library.some((d) => d.id === chosen)) picker.value = chosen
  }

  function loadChosen () {
    if (picker.value) command('load', { demo: picker.value })
  }

  // --- commands: to the room, or to this page's own playback ------------------------------
  function command (action, fields = {}) {
    lastDemoSend = Date.now()
    if (!send({ type: 'demo', action, ...fields })) toast('Not connected: the command was not sent')
  }

  function nowLocal () { return localNow() }

  /** Leave live (or keep playing on one's own): this page's playback from where it shows. */
  function ownPlayback (changes = {}) {
    const base = local || { position: shown, playing: false, rate: room ? room.rate : 1, duration: demo ? demo.duration : 0 }
    const here = local ? positionAt(local, nowLocal()) : shown
    local = { ...base, position: here, at: nowLocal(), duration: demo ? demo.duration : 0, ...changes }
    render()
  }

  function playPause () {
    if (!demo || demo.kind !== 'recording') return
    if (presenting()) {
      command(room && room.playing ? 'pause' : 'play')
    } else {
      const playing = local ? local.playing : Boolean(room && room.playing)
      let position
      if (!playing && shown >= demo.duration) position = 0 // start a finished recording again
      ownPlayback({ playing: !playing, ...(position !== undefined ? { position } : {}) })
    }
  }

  function pauseForMe () {
    if (!demo) return
    ownPlayback({ playing: false })
  }

  function backToLive () {
    if (selfPaced()) return
    local = null // the follower kept following the room meanwhile
    render()
  }

  function step (delta) {
    if (!demo || demo.kind !== 'walkthrough') return
    const target = Math.round(shown) + delta
    if (target < 0 || target > demo.duration) return
    if (presenting()) command(delta > 0 ? 'next' : 'prev')
    else ownPlayback({ position: target, playing: false })
  }

  /** {position} seconds or step index, or {marker} label, or {step} id. */
  function seek (where) {
    if (!demo) return
    if (presenting()) { command('seek', where); return }
    let position = where.position
    if (where.marker !== undefined) position = (demo.recording.markers.find((m) => m.label === where.marker) || {}).t
    if (where.step !== undefined) position = demo.steps.findIndex((s) => s.id === where.step)
    if (!Number.isFinite(position) || position < 0) return
    ownPlayback({ position })
  }

  function setRate (rate) {
    if (!demo) return
    if (presenting()) command('rate', { rate })
    else ownPlayback({ rate })
  }

  // --- messages ---------------------------------------------------------------------
  function hello (msg) {
    if (typeof msg.user_role === 'string' && msg.user_role) userRole = msg.user_role
    canEdit = Boolean(msg.can_edit)
    greeted = true
    connected = true
    // the clock is probed only while a demo is loaded (its demo.state follows the hello)
    sync.stop()
    sync.seedWith(msg.server_time)
    render()
    fetchLibrary()
  }

  function access (role, edit) {
    canEdit = Boolean(edit)
    render()
    fetchLibrary()
  }

  function demoState (msg) {
    const next = normalize(msg)
    const wasSelfPaced = selfPaced()
    room = next
    follower.update(next)
    if (next.demo && connected && !sync.running) sync.start()
    else if (!next.demo) sync.stop()
    if (!next.demo) {
      unloadDemo()
    } else if (!demo || demo.id !== next.demo) {
      if (demo) unloadDemo() // another demo: nothing of the old one stays on screen
      fetchDemo(next.demo)
    }
    if (selfPaced() && !wasSelfPaced) startSelfPaced()
    else if (!selfPaced() && wasSelfPaced) { saver.save(); local = null }
    render()
  }

  async function fetchDemo (id) {
    if (loading === id) return
    loading = id
    panel.dataset.state = 'loading'
    title.textContent = 'Loading the demo…'
    let doc
    try {
      doc = await fetchJSON(`/api/demos/${encodeURIComponent(id)}`)
    } catch (err) {
      if (loading === id) { loading = null; title.textContent = `The demo cannot be shown: ${err.message}` }
      return
    }
    if (loading !== id) return
    loading = null
    if (!room || room.demo !== id) return
    openDemo(id, doc)
  }

  function openDemo (id, doc) {
    const recording = doc.recording ? new Recording(doc) : null
    const steps = Array.isArray(doc.steps) ? doc.steps : []
    demo = {
      id,
      doc,
      title: String(doc.title || id),
      kind: recording ? 'recording' : 'walkthrough',
      steps,
      recording,
      duration: recording ? recording.duration : Math.max(steps.length - 1, 0)
    }
    applied = null
    output.replaceChildren()
    if (demo.kind === 'walkthrough') view.setDoc(new Y.Doc())
    questions.setDemo(id)
    timeline.show(demo)
    if (selfPaced()) startSelfPaced()
    start()
    render()
  }

  function unloadDemo () {
    demo = null
    loading = null
    local = null
    applied = null
    stop()
    view.setDoc(new Y.Doc())
    view.setHighlights([])
    output.replaceChildren()
    stepTitle.textContent = ''
    narration.replaceChildren()
    branches.replaceChildren()
    runNote.hidden = true
    questions.setDemo(null)
    quiz.show(null, null)
    timeline.show(null)
  }

  async function startSelfPaced () {
    if (!demo) return
    if (!local) local = { position: room.position, playing: false, rate: room.rate, at: nowLocal(), duration: demo.duration }
    const id = demo.id
    const mark = local
    const saved = await loadProgress(id)
    // resume where this person was, unless they moved meanwhile
    if (saved && demo && demo.id === id && selfPaced() && local === mark) {
      local = { ...local, position: Math.min(Math.max(saved.position, 0), demo.duration), playing: false, at: nowLocal() }
      saver.forget()
      render()
    }
  }

  function progressNow () {
    if (!demo || !selfPaced() || !local) return null
    const p = positionAt(local, nowLocal())
    const fraction = demo.duration > 0 ? Math.min(1, p / demo.duration) : 1
    const out = { demo: demo.id, position: Math.round(p * 1000) / 1000, fraction: Math.round(fraction * 1000) / 1000, completed: fraction >= 1 }
    if (demo.kind === 'walkthrough' && demo.steps[Math.round(p)]) out.step = demo.steps[Math.round(p)].id
    return out
  }

  function message (msg) {
    if (greeted && msg.type !== 'demo.state' && msg.type !== 'hello') {
      // (re)connected and no demo.state came right after the hello: none is loaded now
      greeted = false
      if (room && room.demo) demoState({ ...room, demo: null, playing: false, kind: '', mode: 'live' })
    }
    if (msg.type === 'demo.state') greeted = false
    if (msg.type === 'pong') sync.pong(msg)
    else if (msg.type === 'demo.state') demoState(msg)
    else if (questions.message(msg)) return true
    else if (quiz.message(msg)) return true
    else if (recorder.message(msg)) { render(); return true }
    else return false
    return true
  }

  /** A notice: true when it is about demos (the caller shows the server's text as it is). */
  function notice (code, _level, text) {
    if (code === 'bad-quiz-answer') quiz.refused()
    if (DEMO_NOTICES.has(code)) return true
    // a demo command refused ("controlling a demo needs..."), not an edit (the room's id
    // may well contain "demo")
    return code === 'permission-denied' &&
      (Date.now() - lastDemoSend < 15_000 || /\b(a|the) demo\b|\brecording\b/i.test(String(text).split(roomId).join('')))
  }

  function disconnected () { connected = false; sync.stop() }

  // --- the frame loop: follow the room (or this page's own playback) ---------------------
  function start () {
    if (frameHandle !== null) return
    const loop = () => {
      frameHandle = document.hidden ? setTimeout(loop, 250) : requestAnimationFrame(loop)
      frame()
    }
    loop()
  }
  function stop () {
    if (frameHandle === null) return
    cancelAnimationFrame(frameHandle)
    clearTimeout(frameHandle)
    frameHandle = null
  }

  function frame () {
    if (!demo || !room) return
    const now = localNow()
    // the follower keeps following the room even while this page plays on its own
    const live = follower.tick(now, now + sync.offset())
    shownAt = now
    if (local) {
      shown = positionAt(local, now)
      if (local.playing && shown >= local.duration) local = { ...local, position: local.duration, playing: false, at: now }
    } else {
      shown = live
    }
    applyPosition(shown)
    renderTime()
  }

  function applyPosition (p) {
    if (demo.kind === 'walkthrough') {
      const index = Math.min(Math.max(Math.round(p), 0), Math.max(demo.steps.length - 1, 0))
      if (!applied || applied.step !== index) showStep(index)
      return
    }
    const rec = demo.recording
    if (!applied) {
      view.setDoc(rec.docAt(p))
      output.replaceChildren()
      appendOutput(rec.outputBetween(-Infinity, p))
    } else if (p > applied.t) {
      rec.advance(view.doc, applied.t, p)
      appendOutput(rec.outputBetween(applied.t, p))
    } else if (p < applied.t) {
      if (rec.updatesBetween(p, applied.t)) view.setDoc(rec.docAt(p))
      if (rec.outputBetween(p, applied.t).length) {
        output.replaceChildren()
        appendOutput(rec.outputBetween(-Infinity, p))
      }
    } else {
      return // nothing moved
    }
    applied = { t: p }
    const chapter = rec.markers[countUpTo(rec.markers, p) - 1]
    const heading = chapter ? `Chapter: ${chapter.label}` : ''
    if (stepTitle.textContent !== heading) stepTitle.textContent = heading
    view.setCursors(rec.cursorsAt(p).map((c) => ({ file: c.file, anchor: c.anchor, head: c.head, user: c.user })))
  }

  function appendOutput (events) {
    for (const e of events) {
      const stream = e.stream === 'stderr' ? 'stderr' : e.stream === 'stdin' ? 'stdin' : 'stdout'
      const last = output.lastElementChild
      if (last && last.dataset.stream === stream) last.append(String(e.data))
      else output.append(h('span', { class: `out ${stream}`, dataset: { stream } }, String(e.data)))
    }
    if (events.length) output.scrollTop = output.scrollHeight
  }

  function showStep (index) {
    applied = { step: index }
    const s = demo.steps[index]
    const files = filesAtStep(demo.doc, index)
    const map = view.doc.getMap('files')
    view.doc.transact(() => {
      for (const path of [...map.keys()]) if (!Object.hasOwn(files, path)) map.delete(path)
      for (const [path, text] of Object.entries(files)) {
        const ytext = map.get(path)
        if (ytext instanceof Y.Text) setText(ytext, text)
        else map.set(path, new Y.Text(text))
      }
    }, 'demo')
    if (!s) { stepTitle.textContent = ''; narration.replaceChildren(); quiz.show(demo.id, null); view.setHighlights([]); return }
    stepTitle.textContent = `Step ${index + 1} of ${demo.steps.length}: ${s.title}`
    side.scrollTop = 0
    narration.replaceChildren(renderMarkdown(s.narration))
    const ranges = []
    for (const hl of s.highlights || []) {
      if (typeof files[hl.file] !== 'string') continue
      const r = highlightRange(files[hl.file], hl)
      if (r) ranges.push({ file: hl.file, from: r[0], to: r[1], note: hl.note })
    }
    if (!ranges.length) {
      const changed = (s.changes || []).map((c) => c.path).find((p) => Object.hasOwn(files, p))
      if (changed) view.open(changed)
    }
    view.setHighlights(ranges)
    runNote.hidden = !s.run
    runNote.textContent = s.run ? `▶ This step runs ${s.run.entry || 'the code'}. Try it to run it yourself.` : ''
    branches.replaceChildren(...(s.branches || []).map((b) => h('button', {
      class: 'btn small demo-branch', type: 'button', dataset: { to: b.to }, onclick: () => seek({ step: b.to })
    }, b.label)))
    quiz.show(demo.id, s)
    questions.placeHint()
  }

  // --- rendering ----------------------------------------------------------------------
  let lastTime = ''
  function renderTime () {
    if (!demo) return
    let text
    if (demo.kind === 'walkthrough') {
      text = `Step ${Math.round(shown) + 1} of ${demo.steps.length}`
    } else {
      text = `${clock(shown)} / ${clock(demo.duration)}`
    }
    timeline.position(shown)
    if (text !== lastTime) { position.textContent = text; lastTime = text }
    const playing = local ? local.playing : Boolean(room && room.playing)
    const label = playing ? '❚❚ Pause' : '▶ Play'
    if (playBtn.textContent !== label) playBtn.textContent = label
    const syncLabel = syncLine()
    if (syncText.textContent !== syncLabel) syncText.textContent = syncLabel
  }

  function syncLine () {
    if (!sync.synced()) return 'syncing clock…'
    const d = sync.delay()
    return `in sync ±${Math.max(1, Math.round(d / 2))} ms`
  }

  function render () {
    const isStaff = staff()
    staffBar.hidden = !isStaff
    unloadBtn.hidden = !(room && room.demo)
    copyBtn.hidden = !(room && room.demo && room.kind === 'walkthrough')
    modeSel.hidden = !(room && room.demo)
    if (room) modeSel.value = room.mode
    recorder.render()
    // everyone sees that the room is being recorded
    panel.hidden = !isStaff && !(room && room.demo) && !recorder.state().recording
    body.hidden = !demo
    panel.dataset.state = demo ? demo.kind : loading ? 'loading' : 'none'
    panel.dataset.following = local ? 'own' : 'live'
    if (!demo) {
      if (!loading) title.textContent = isStaff ? 'No demo loaded' : ''
      liveBadge.textContent = ''
      return
    }
    title.textContent = demo.title
    const walkthrough = demo.kind === 'walkthrough'
    prevBtn.hidden = nextBtn.hidden = !walkthrough
    playBtn.hidden = walkthrough
    rateSel.hidden = walkthrough
    rateSel.value = String(local ? local.rate : room.rate)
    pauseMe.hidden = presenting() || selfPaced() || local !== null || (walkthrough ? false : !(room && room.playing))
    if (walkthrough) pauseMe.textContent = '❚❚ Stay here'
    else pauseMe.textContent = '❚❚ Pause for me'
    backLive.hidden = selfPaced() || local === null
    output.hidden = walkthrough
    liveBadge.dataset.state = selfPaced() ? 'self-paced' : local ? 'own' : 'live'
    liveBadge.textContent = selfPaced()
      ? 'Self-paced: at your own speed'
      : local ? 'On your own' : presenting() ? 'Presenting live' : `Live${room.by ? ` · ${room.by}` : ''}`
    renderTime()
  }

  // --- where the viewer is (questions attach to it) -------------------------------------
  function place () {
    if (!demo) return { label: 'the demo' }
    if (demo.kind === 'walkthrough') {
      const s = demo.steps[Math.round(shown)]
      return s ? { step: s.id, label: `step ${Math.round(shown) + 1}: ${s.title}` } : { label: 'the demo' }
    }
    return { at: Math.round(shown * 100) / 100, label: clock(shown) }
  }

  render()

  // the test hook
  const hook = {
    state: () => (room ? { ...room } : null),
    shown: () => shown,
    shownAt: () => shownAt,
    offset: () => sync.offset(),
    synced: () => sync.synced(),
    demo: () => (demo ? { id: demo.id, kind: demo.kind, title: demo.title, duration: demo.duration } : null),
    live: () => local === null,
    own: () => (local ? { ...local } : null),
    files: () => view.files(),
    text: (path) => view.text(path),
    current: () => view.current,
    highlights: () => view.resolved(),
    narration: () => narration.textContent,
    questions: () => questions.items()
  }
  return { message, hello, access, notice, disconnected, render, hook }
}
