// Runs: the ▶ Run button, the output panel everyone in the room watches, and the running
// program's input line. The server runs the room's files (one run per room at a time) and
// streams run.started / run.output / run.exit to everyone here; this page shows them and,
// for editors, sends run / run.input / run.stop on the room extension channel. The server
// decides who may run: viewers are not offered the controls, and a refusal is a notice.
import { $, h, toast } from './util.js'

/** What the page keeps of the output (older output is dropped, with a note saying so). */
const MAX_CHARS = 1 << 20
const MAX_LINES = 5000
const MAX_RUNS = 20
/** Output received but not yet shown is flushed at once past this many characters. */
const MAX_QUEUED = 2 * MAX_CHARS
/** Give up waiting for run.started (or a refusal) after this long. */
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 10_000
/** After a reconnect the server says run.started at once if the run still goes on. */
const RECONNECT_CONFIRM_MS = 3000

// What the server runs (executor/languages/*.json), as its `run.languages` message says on
// joining; these are the shipped specs, used until that message arrives.
let defaultEntries = ['main.js', 'main.py']
let runnableSuffixes = new Set(['.py', '.js', '.mjs', '.cjs'])

/** Take the server's languages: the default entries sorted by name, as the server sorts them. */
export function setLanguages (languages) {
  if (!Array.isArray(languages) || languages.length === 0) return
  defaultEntries = languages.map((l) => String(l.entry)).sort()
  runnableSuffixes = new Set(languages.flatMap((l) => (l.extensions || []).map(String)))
}

function suffixOf (path) {
  const name = path.slice(path.lastIndexOf('/') + 1)
  const dot = name.lastIndexOf('.')
  return dot > 0 ? name.slice(dot) : ''
}
const RUN_NOTICES = new Set(['runs-unavailable', 'run-busy', 'rate-limited', 'bad-run-request', 'no-such-run'])

const STATUS = {
  ok: { icon: '✓', label: 'OK' },
  error: { icon: '✗', label: 'Error' },
  timeout: { icon: '⏱', label: 'Timed out' },
  memory: { icon: '⚠', label: 'Out of memory' },
  'output-limit': { icon: '⚠', label: 'Output limit reached' },
  killed: { icon: '■', label: 'Stopped' }
}
const SIGNALS = {
  1: 'SIGHUP', 2: 'SIGINT', 4: 'SIGILL', 6: 'SIGABRT', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV',
  13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ'
}

/** The file the server runs when a request names none (docs/protocol.md, `run`). */
export function defaultEntry (paths) {
  const have = new Set(paths)
  const first = defaultEntries.find((p) => have.has(p) && isRunnable(p))
  if (first) return first
  return [...paths].sort().find((p) => isRunnable(p)) || null
}

export const isRunnable = (path) => typeof path === 'string' && runnableSuffixes.has(suffixOf(path))

const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1)

function countLines (s) {
  let n = 0
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++
  return n
}

/** The index just after the n-th newline of s (s.length when it has fewer). */
function afterNewlines (s, n) {
  let at = 0
  for (let k = 0; k < n; k++) {
    const i = s.indexOf('\n', at)
    if (i === -1) return s.length
    at = i + 1
  }
  return at
}

export function formatDuration (ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return ''
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
}

export function formatBytes (n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) return ''
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/**
 * The run controls and output panel.
 * send(message) → bool: sends on the room channel; mayRun(): an editor, session not closed;
 * connected(): the socket is open; paths(): the room's files; current(): the open file.
 */
export function setupRuns ({ send, mayRun, connected, paths, current }) {
  const panel = $('#output')
  const log = $('#output-log')
  const empty = $('#output-empty')
  const status = $('#run-status')
  const button = $('#run')
  const runFile = $('#run-file')
  const form = $('#run-input-form')
  const input = $('#run-input')

  const runs = new Map() // id → run record, oldest first (at most MAX_RUNS)
  let active = null // the run going on, as far as this page knows
  let requested = null // our run request, until run.started or a refusal
  let stopping = null // our stop request, until run.exit
  let confirmTimer = null // after a reconnect: does the active run still go on?
  let ticker = null
  let clockOffset = 0 // server ms − local ms (from the server's hello)
  let lastSend = 0 // when this page last sent a run message (to tell refusals apart)
  let refusal = null // the last refusal, shown in the status line until something happens

  // --- the output, bounded --------------------------------------------------
  // Each run's output is a <pre> of spans, one per stretch of one stream. Every span is a
  // segment, oldest first across runs; past MAX_CHARS or MAX_LINES the oldest go first.
  const segments = []
  let totalChars = 0
  let totalLines = 0
  let queue = []
  let queued = 0
  let flushTimer = null

  function newRun (id, info = {}) {
    const run = {
      id,
      by: '',
      entry: '',
      language: '',
      at: null,
      state: 'running',
      nextSeq: null,
      last: null, // the newest segment
      trimNote: null,
      eof: false,
      reconnected: false, // said so since the last output
      el: null,
      head: null,
      out: h('pre', { class: 'run-out' })
    }
    run.head = h('div', { class: 'run-head' })
    run.el = h('section', { class: 'run', dataset: { run: id, state: 'running' }, 'aria-label': 'Run' }, run.head, run.out)
    runs.set(id, run)
    empty.hidden = true
    log.append(run.el)
    while (runs.size > MAX_RUNS) dropRun(runs.values().next().value)
    describe(run, info)
    return run
  }

  function dropRun (run) {
    runs.delete(run.id)
    run.el.remove()
    for (let i = segments.length - 1; i >= 0; i--) {
      if (segments[i].run === run) {
        totalChars -= segments[i].chars
        totalLines -= segments[i].lines
        segments.splice(i, 1)
      }
    }
    if (active === run) active = null
  }

  function describe (run, info) {
    if (typeof info.by === 'string' && info.by) run.by = info.by
    if (typeof info.entry === 'string' && info.entry) run.entry = info.entry
    if (typeof info.language === 'string' && info.language) run.language = info.language
    if (typeof info.at === 'number') run.at = info.at
    const when = run.at !== null ? new Date(run.at - clockOffset) : null
    const label = `${run.by || 'Someone'} ran ${run.entry || 'the room’s code'}`
    run.el.setAttribute('aria-label', label)
    run.head.replaceChildren(
      h('span', { class: 'run-icon', 'aria-hidden': 'true' }, '▶'),
      h('span', { class: 'run-by' }, run.by || 'Someone'),
      ' ran ',
      h('span', { class: 'run-entry' }, run.entry || 'the room’s code'),
      run.language && h('span', { class: 'run-lang' }, run.language),
      when && h('time', { class: 'run-time', datetime: when.toISOString() }, when.toLocaleTimeString()),
      h('span', { class: 'run-live' }, 'running')
    )
  }

  function enqueue (run, stream, data) {
    if (!data) return
    queue.push({ run, stream, data })
    queued += data.length
    if (queued > MAX_QUEUED) flush()
    else if (flushTimer === null) flushTimer = setTimeout(flush, 16)
  }

  function flush () {
    clearTimeout(flushTimer)
    flushTimer = null
    if (queue.length === 0) return
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40
    const items = queue
    queue = []
    queued = 0
    for (const { run, stream, data } of items) if (runs.get(run.id) === run) append(run, stream, data)
    trim()
    if (atBottom) log.scrollTop = log.scrollHeight
  }

  function append (run, stream, data) {
    const lines = countLines(data)
    const last = run.last
    if (last && last.stream === stream && last.span.isConnected) {
      last.span.firstChild.appendData(data)
      last.chars += data.length
      last.lines += lines
    } else {
      const span = h('span', { class: `out ${stream}`, dataset: { stream } }, data)
      run.out.append(span)
      run.last = { span, run, stream, chars: data.length, lines }
      segments.push(run.last)
    }
    totalChars += data.length
    totalLines += lines
  }

  function trim () {
    while ((totalChars > MAX_CHARS || totalLines > MAX_LINES) && segments.length > 0) {
      const seg = segments[0]
      const text = seg.span.firstChild
      let cut = Math.max(0, totalChars - MAX_CHARS)
      if (totalLines > MAX_LINES) cut = Math.max(cut, afterNewlines(text.data, totalLines - MAX_LINES))
      else if (cut > 0 && cut < seg.chars) {
        const nl = text.data.indexOf('\n', cut - 1) // end on a whole line when there is one
        if (nl !== -1) cut = nl + 1
      }
      if (cut >= seg.chars) {
        segments.shift()
        seg.span.remove()
        if (seg.run.last === seg) seg.run.last = null
        totalChars -= seg.chars
        totalLines -= seg.lines
      } else {
        const lines = countLines(text.data.slice(0, cut))
        text.deleteData(0, cut)
        seg.chars -= cut
        seg.lines -= lines
        totalChars -= cut
        totalLines -= lines
      }
      markTrimmed(seg.run)
    }
  }

  function markTrimmed (run) {
    if (run.trimNote) return
    run.trimNote = h('span', { class: 'out-note' },
      `… earlier output is not shown (this page keeps the last ${formatBytes(MAX_CHARS)} or ${MAX_LINES} lines)\n`)
    run.out.prepend(run.trimNote)
  }

  function note (run, text) {
    enqueue(run, 'note', text)
  }

  // --- messages from the server ---------------------------------------------
  function started (msg) {
    const id = String(msg.run)
    clearTimeout(confirmTimer)
    confirmTimer = null
    if (active && active.id !== id) lost(active, '… this page did not see how this run ended\n')
    const run = runs.get(id) || newRun(id)
    describe(run, msg)
    if (STATUS[run.state]) return render() // a late repeat of a finished run
    run.state = 'running'
    run.el.dataset.state = 'running'
    active = run
    if (requested) { clearTimeout(requested.timer); requested = null }
    refusal = null
    if (panel.classList.contains('collapsed')) setCollapsed(false)
    render()
  }

  function output (msg) {
    const id = String(msg.run)
    let run = runs.get(id)
    if (!run) { // output before run.started: show it, the header follows
      run = newRun(id)
      if (!active) active = run
      render()
    }
    const stream = msg.stream === 'stderr' ? 'stderr' : 'stdout'
    const seq = Number.isInteger(msg.seq) ? msg.seq : null
    if (seq !== null) {
      if (run.nextSeq !== null && seq < run.nextSeq) return // seen already
      if (run.nextSeq === null && seq > 0) note(run, '… output printed before you joined is not shown\n')
      else if (run.nextSeq !== null && seq > run.nextSeq && !run.reconnected) note(run, '… some output is missing here\n')
      run.nextSeq = seq + 1
      run.reconnected = false
    }
    enqueue(run, stream, typeof msg.data === 'string' ? msg.data : '')
  }

  function exited (msg) {
    const id = String(msg.run)
    const run = runs.get(id) || newRun(id)
    flush()
    finish(run, msg)
  }

  function finish (run, msg) {
    const status = typeof msg.status === 'string' ? msg.status : 'error'
    const known = STATUS[status] || { icon: '?', label: capitalize(status) }
    run.state = status
    run.el.dataset.state = status
    refusal = null
    const parts = []
    if (msg.signal !== null && msg.signal !== undefined) {
      parts.push(`signal ${msg.signal}${SIGNALS[msg.signal] ? ` (${SIGNALS[msg.signal]})` : ''}`)
    } else if (msg.exit_code !== null && msg.exit_code !== undefined) {
      parts.push(`exit code ${msg.exit_code}`)
    }
    const wall = formatDuration(msg.wall_ms)
    if (wall) parts.push(wall)
    const cpu = formatDuration(msg.cpu_ms)
    if (cpu) parts.push(`CPU ${cpu}`)
    const memory = formatBytes(msg.peak_memory_bytes)
    if (memory) parts.push(`${memory} peak memory`)
    if (msg.output_truncated) parts.push('output cut short')
    const exit = h('div', { class: 'run-exit', dataset: { status }, role: 'status' },
      h('strong', { class: 'run-exit-status' }, `${known.icon} ${known.label}`),
      parts.map((p) => h('span', { class: 'run-exit-fact' }, p)),
      msg.message && h('span', { class: 'run-exit-message' }, String(msg.message))
    )
    run.el.append(exit)
    if (Array.isArray(msg.tests)) {
      const passed = msg.tests.filter((t) => t && t.passed).length
      run.el.append(h('div', { class: 'run-tests' },
        h('div', { class: 'run-score' },
          `Tests: ${passed} of ${msg.tests.length} passed`,
          typeof msg.score === 'number' && ` · score ${Math.round(msg.score * 1000) / 10}%`),
        h('ul', { class: 'run-test-list' }, msg.tests.map((t) => h('li', {
          class: 'run-test', dataset: { passed: String(Boolean(t && t.passed)) }
        }, h('span', { class: 'run-test-mark', 'aria-label': t && t.passed ? 'passed' : 'failed' }, t && t.passed ? '✓' : '✗'),
        ' ', h('span', { class: 'run-test-name' }, String((t && t.name) || '')),
        t && t.message && h('span', { class: 'run-test-message' }, ` — ${t.message}`))))
      ))
    } else if (typeof msg.score === 'number') {
      run.el.append(h('div', { class: 'run-tests' }, h('div', { class: 'run-score' }, `Score ${Math.round(msg.score * 1000) / 10}%`)))
    }
    if (log.scrollHeight - log.scrollTop - log.clientHeight < 200) log.scrollTop = log.scrollHeight
    if (active === run) {
      active = null
      if (stopping) { clearTimeout(stopping.timer); stopping = null }
      if (input === document.activeElement) input.blur()
    }
    render()
  }

  /** A run this page stopped hearing about (reconnected after it ended, a newer one began). */
  function lost (run, why) {
    note(run, why)
    flush()
    run.state = 'unknown'
    run.el.dataset.state = 'unknown'
    if (active === run) active = null
    if (stopping) { clearTimeout(stopping.timer); stopping = null }
    render()
  }

  /** The server's hello (first connect or a reconnect): the clock, and is our run still on? */
  function hello (msg) {
    if (typeof msg.server_time === 'number') clockOffset = msg.server_time - Date.now()
    if (active) { // a reconnect while it ran
      const run = active
      note(run, '… the connection was down for a moment: output printed meanwhile is not shown\n')
      run.reconnected = true
      clearTimeout(confirmTimer)
      confirmTimer = setTimeout(() => {
        confirmTimer = null
        if (active === run) lost(run, '… the run ended while the connection was down\n')
      }, RECONNECT_CONFIRM_MS)
    }
    render()
  }

  /** A notice: true when it is about runs (then the caller shows its text as it is). */
  function notice (code, level, text) {
    const recent = Date.now() - lastSend < 15_000
    const ours = RUN_NOTICES.has(code) || (code === 'permission-denied' && recent && /\brun/i.test(text))
    if (!ours) return false
    if (requested) { clearTimeout(requested.timer); requested = null }
    if (code === 'no-such-run' && stopping) { clearTimeout(stopping.timer); stopping = null }
    refusal = { code, level, text: capitalize(text) }
    render()
    return true
  }

  // --- what this person does ----------------------------------------------
  function request (entry = null) {
    if (!mayRun()) { toast('Viewers cannot run the room’s code.'); return }
    if (active) { toast('A run is going: stop it first (■ Stop).'); return }
    if (requested) return
    if (!connected()) { toast('Not connected: runs start once the connection is back.'); return }
    const message = { type: 'run' }
    if (entry) message.entry = entry
    if (!send(message)) { toast('Not connected: runs start once the connection is back.'); return }
    lastSend = Date.now()
    refusal = null
    requested = {
      entry: entry || defaultEntry(paths()),
      timer: setTimeout(() => {
        requested = null
        refusal = { code: 'no-answer', level: 'warning', text: 'The server did not start the run: try again.' }
        render()
      }, START_TIMEOUT_MS)
    }
    if (panel.classList.contains('collapsed')) setCollapsed(false)
    render()
  }

  function stop () {
    if (!active || stopping || !mayRun()) return
    if (!send({ type: 'run.stop', run: active.id })) return
    lastSend = Date.now()
    stopping = { timer: setTimeout(() => { stopping = null; render() }, STOP_TIMEOUT_MS) }
    render()
  }

  function sendInput (eof) {
    const run = active
    if (!run || run.eof || !mayRun()) return
    const line = input.value
    const data = eof ? line : line + '\n'
    if (!send({ type: 'run.input', run: run.id, data, eof })) return
    lastSend = Date.now()
    // Echoed here only (a pipe does not echo): the others see what the program makes of it.
    if (data) enqueue(run, 'stdin', data)
    if (eof) { run.eof = true; note(run, '… end of input\n') }
    flush()
    log.scrollTop = log.scrollHeight
    input.value = ''
    render()
  }

  button.addEventListener('click', () => {
    if (button.dataset.action === 'stop') stop()
    else request()
  })
  runFile.addEventListener('click', () => request(current()))
  form.addEventListener('submit', (ev) => { ev.preventDefault(); sendInput(false) })
  $('#run-eof').addEventListener('click', () => sendInput(true))
  input.addEventListener('keydown', (ev) => {
    if ((ev.key === 'd' || ev.key === 'D') && ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault()
      sendInput(true)
    }
  })
  $('#output-clear').addEventListener('click', () => {
    flush()
    for (const run of [...runs.values()]) if (run !== active) dropRun(run)
    if (active) {
      for (const seg of segments.splice(0)) seg.span.remove()
      totalChars = 0
      totalLines = 0
      active.last = null
    }
    refusal = null
    render()
  })

  // --- the panel: collapse and resize ---------------------------------------
  const toggle = $('#output-toggle')
  function setCollapsed (collapsed) {
    panel.classList.toggle('collapsed', collapsed)
    toggle.setAttribute('aria-expanded', String(!collapsed))
    toggle.setAttribute('aria-label', collapsed ? 'Show the output' : 'Hide the output')
    toggle.textContent = collapsed ? '▸' : '▾'
    try { localStorage.setItem('ocl.output.collapsed', collapsed ? '1' : '') } catch { /* private mode */ }
  }
  toggle.addEventListener('click', () => setCollapsed(!panel.classList.contains('collapsed')))

  const grip = $('#output-resize')
  const main = panel.parentElement
  function setHeight (px, store = true) {
    const max = Math.max(120, main.clientHeight - 140)
    const height = Math.round(Math.min(max, Math.max(90, px)))
    panel.style.flexBasis = `${height}px`
    grip.setAttribute('aria-valuenow', String(height))
    if (store) try { localStorage.setItem('ocl.output.height', String(height)) } catch { /* private mode */ }
  }
  grip.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return
    ev.preventDefault()
    grip.setPointerCapture(ev.pointerId)
    panel.classList.add('resizing')
    const move = (e) => setHeight(main.getBoundingClientRect().bottom - e.clientY)
    const up = () => {
      panel.classList.remove('resizing')
      grip.removeEventListener('pointermove', move)
      grip.removeEventListener('pointerup', up)
      grip.removeEventListener('pointercancel', up)
    }
    grip.addEventListener('pointermove', move)
    grip.addEventListener('pointerup', up)
    grip.addEventListener('pointercancel', up)
  })
  grip.addEventListener('keydown', (ev) => {
    const step = ev.shiftKey ? 80 : 20
    if (ev.key === 'ArrowUp') setHeight(panel.getBoundingClientRect().height + step)
    else if (ev.key === 'ArrowDown') setHeight(panel.getBoundingClientRect().height - step)
    else return
    ev.preventDefault()
  })
  try {
    const saved = Number(localStorage.getItem('ocl.output.height'))
    if (saved > 0) setHeight(saved, false)
    if (localStorage.getItem('ocl.output.collapsed')) setCollapsed(true)
  } catch { /* private mode */ }

  // --- how it all looks now -------------------------------------------------
  function elapsed (run) {
    if (run.at === null) return ''
    const s = Math.floor(Math.max(0, Date.now() + clockOffset - run.at) / 1000)
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
  }

  function render () {
    const editor = mayRun()
    const online = connected()
    const entry = defaultEntry(paths())
    // The Run button: Stop for editors while a run goes on.
    if (active && editor) {
      button.dataset.action = 'stop'
      button.textContent = stopping ? '■ Stopping…' : '■ Stop'
      button.disabled = Boolean(stopping) || !online
      button.setAttribute('aria-label', 'Stop the run')
      button.title = `Stop ${active.entry || 'the run'} for everyone`
    } else {
      button.dataset.action = 'run'
      button.textContent = requested ? '▶ Starting…' : '▶ Run'
      button.disabled = !editor || !online || Boolean(requested) || Boolean(active)
      button.setAttribute('aria-label', 'Run (Ctrl or Cmd + Enter)')
      button.title = !editor
        ? 'Viewers cannot run the room’s code'
        : !online
            ? 'Not connected: runs start once the connection is back'
            : active
              ? 'A run is going'
              : entry ? `Run ${entry} for everyone in the room (Ctrl/Cmd-Enter)` : 'Nothing to run: add main.py or main.js'
    }
    const file = current()
    runFile.hidden = !editor || !isRunnable(file) || file === entry
    runFile.disabled = !online || Boolean(requested) || Boolean(active)
    if (!runFile.hidden) runFile.title = `Run ${file} instead of ${entry || 'the default entry'}`

    // The input line: editors, while a run goes on.
    form.hidden = !(active && editor)
    const inputOn = Boolean(active) && online && !active.eof
    input.disabled = !inputOn
    for (const b of form.querySelectorAll('button')) b.disabled = !inputOn
    input.placeholder = active && active.eof
      ? 'The program’s input is closed'
      : 'Type a line for the program and press Enter (Ctrl-D: end of input)'

    // The status line and the panel's state.
    let text = ''
    let level = 'info'
    if (active) {
      panel.dataset.state = 'running'
      text = runningText()
    } else if (requested) {
      panel.dataset.state = 'starting'
      text = `Starting ${requested.entry || 'the run'}…`
    } else if (refusal) {
      panel.dataset.state = 'refused'
      text = refusal.text
      level = refusal.level
    } else {
      const last = [...runs.values()].pop()
      if (last) {
        panel.dataset.state = 'done'
        const known = STATUS[last.state]
        text = last.state === 'unknown'
          ? `${last.entry || 'The run'}: ended while the connection was down`
          : `${known ? known.label : capitalize(last.state)} · ${last.entry || 'the run'}` + (last.by ? ` (run by ${last.by})` : '')
      } else {
        panel.dataset.state = 'idle'
        text = 'Nothing run yet'
      }
    }
    status.textContent = text
    status.dataset.level = level
    empty.textContent = editor
      ? `Press ▶ Run (Ctrl/Cmd-Enter) to run ${entry || 'main.py or main.js'}: everyone in the room sees the output here.`
      : 'When an editor runs the room’s code, its output shows here, live.'
    for (const run of runs.values()) run.el.toggleAttribute('data-active', run === active)

    if (active && ticker === null) {
      ticker = setInterval(() => { if (active) status.textContent = runningText() }, 1000)
    } else if (!active && ticker !== null) {
      clearInterval(ticker)
      ticker = null
    }
  }

  function runningText () {
    return `Running ${active.entry || 'the room’s code'}` + (active.by ? ` · started by ${active.by}` : '') +
      (elapsed(active) ? ` · ${elapsed(active)}` : '') + (stopping ? ' · stopping…' : '')
  }

  /** The socket went away (or the session ended): nothing we asked for will be answered. */
  function disconnected () {
    if (requested) { clearTimeout(requested.timer); requested = null }
    if (stopping) { clearTimeout(stopping.timer); stopping = null }
    render()
  }

  function message (msg) {
    if (msg.type === 'run.languages') { setLanguages(msg.languages); render() }
    else if (msg.type === 'run.started') started(msg)
    else if (msg.type === 'run.output') output(msg)
    else if (msg.type === 'run.exit') exited(msg)
    else return false
    return true
  }

  render()
  return {
    message,
    hello,
    notice,
    request,
    stop,
    render,
    disconnected,
    get active () { return active ? active.id : null }
  }
}
