// The room: files, editor, presence, connection state, versions.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { EditorView, basicSetup } from 'codemirror'
import { EditorState, Compartment, Prec } from '@codemirror/state'
import { keymap } from '@codemirror/view'
import { indentWithTab } from '@codemirror/commands'
import { python } from '@codemirror/lang-python'
import { javascript } from '@codemirror/lang-javascript'
import { yCollab } from 'y-codemirror.next'
import { $, h, toast, checkPath, fetchJSON, timeAgo } from './util.js'
import { askName, userColor } from './identity.js'

const STARTER = '# Welcome! Everyone in this room edits these files together.\nprint("hello, class")\n'

function languageFor (path) {
  if (/\.py$/i.test(path)) return python()
  if (/\.(m|c)?jsx?$/i.test(path)) return javascript({ jsx: /x$/i.test(path) })
  if (/\.tsx?$/i.test(path)) return javascript({ typescript: true, jsx: /x$/i.test(path) })
  return []
}

export async function startRoom (roomId) {
  const name = await askName()
  const color = userColor(name)

  const doc = new Y.Doc()
  const files = doc.getMap('files')
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rooms`
  // No BroadcastChannel: every edit goes through the server, so "pending" means what it says.
  const provider = new WebsocketProvider(wsUrl, roomId, doc, { disableBc: true, maxBackoffTime: 2000 })
  const awareness = provider.awareness
  awareness.setLocalStateField('user', { name, color: color.color, colorLight: color.light })

  let current = null // path of the open file
  let view = null
  const undoManagers = new Map()

  // --- connection indicator -------------------------------------------------
  const indicator = $('#connection')
  const indicatorText = $('#connection-text')
  let everConnected = false
  let pending = 0 // local changes made since the last full sync with the server

  function renderConnection () {
    let state, text
    const connected = provider.wsconnected && provider.synced
    if (connected) {
      state = 'connected'; text = 'Connected'
    } else if (pending > 0) {
      state = 'offline'
      text = `Offline · ${pending} edit${pending === 1 ? '' : 's'} pending`
    } else if (!everConnected) {
      state = 'connecting'; text = 'Connecting…'
    } else {
      state = 'reconnecting'; text = navigator.onLine ? 'Reconnecting…' : 'Offline · reconnecting'
    }
    indicator.dataset.state = state
    indicatorText.textContent = text
    indicator.title = connected
      ? 'Every change is saved automatically'
      : 'Your edits are kept here and sent when the connection is back'
  }
  provider.on('status', () => renderConnection())
  provider.on('sync', (synced) => {
    if (synced && provider.wsconnected) {
      // Our sync step 2 (everything the server lacked) went out before the server's step 2
      // arrived, so nothing local is pending any more.
      everConnected = true
      pending = 0
      ensureAFile()
    }
    renderConnection()
  })
  doc.on('update', (_update, origin) => {
    if (origin === provider) return
    if (!(provider.wsconnected && provider.synced)) { pending++; renderConnection() }
  })
  window.addEventListener('online', () => {
    if (!provider.wsconnected) provider.connect()
    renderConnection()
  })
  window.addEventListener('offline', renderConnection)
  window.addEventListener('beforeunload', (ev) => {
    if (pending > 0) { ev.preventDefault(); ev.returnValue = '' }
  })
  renderConnection()

  // --- files ----------------------------------------------------------------
  const fileList = $('#file-list')
  const sortedPaths = () => [...files.keys()].sort((a, b) => a.localeCompare(b))

  function ensureAFile () {
    if (files.size === 0) {
      doc.transact(() => files.set('main.py', new Y.Text(STARTER)))
    }
    if (current === null || !files.has(current)) openFile(pickDefault())
  }

  function pickDefault () {
    const wanted = location.hash.slice(1) ? decodeURIComponent(location.hash.slice(1)) : null
    if (wanted && files.has(wanted)) return wanted
    const paths = sortedPaths()
    return paths.find((p) => /(^|\/)main\.py$/.test(p)) || paths[0] || null
  }

  function renderFiles () {
    const paths = sortedPaths()
    fileList.replaceChildren(...paths.map((path) => {
      const active = path === current
      return h('li', { class: 'file' + (active ? ' active' : ''), dataset: { path } },
        h('button', {
          class: 'file-open',
          'aria-label': `Open ${path}`,
          'aria-current': active ? 'true' : null,
          onclick: () => openFile(path)
        }, path),
        h('button', { class: 'icon-btn file-rename', 'aria-label': `Rename ${path}`, title: 'Rename', onclick: () => renameFile(path) }, '✎'),
        h('button', { class: 'icon-btn file-delete', 'aria-label': `Delete ${path}`, title: 'Delete', onclick: () => deleteFile(path) }, '×')
      )
    }))
    $('#file-count').textContent = String(paths.length)
    if (paths.length === 0 && view) closeEditor()
  }

  function askPath (title, initial) {
    const value = prompt(title, initial)
    if (value === null) return null
    const path = value.trim()
    const problem = checkPath(path)
    if (problem) { toast(`Not a valid name: ${problem}`); return null }
    return path
  }

  function addFile () {
    const path = askPath('New file name (e.g. util.py, app.js):', '')
    if (path === null) return
    if (files.has(path)) { openFile(path); toast(`${path} already exists`); return }
    doc.transact(() => files.set(path, new Y.Text('')))
    openFile(path)
  }

  function renameFile (from) {
    const to = askPath(`Rename ${from} to:`, from)
    if (to === null || to === from) return
    if (files.has(to)) { toast(`${to} already exists`); return }
    const text = files.get(from)
    if (!text) return
    // One transaction: everyone sees the file move, never a copy or a gap.
    doc.transact(() => {
      files.set(to, new Y.Text(text.toString()))
      files.delete(from)
    })
    if (current === from) openFile(to)
  }

  function deleteFile (path) {
    if (!confirm(`Delete ${path} for everyone in the room?`)) return
    doc.transact(() => files.delete(path))
  }

  $('#add-file').addEventListener('click', addFile)

  files.observe((event) => {
    renderFiles()
    if (current !== null && !files.has(current)) {
      // Renamed or deleted (maybe by someone else): follow a rename if we can tell.
      const added = [...event.keys].filter(([k, c]) => c.action === 'add').map(([k]) => k)
      openFile(added.length === 1 ? added[0] : pickDefault())
    } else if (current === null && files.size > 0 && provider.synced) {
      openFile(pickDefault())
    } else if (current !== null && event.keysChanged.has(current)) {
      openFile(current) // replaced by a restore: bind to the new text
    }
    renderPeople()
  })

  // --- the editor -----------------------------------------------------------
  const editorHost = $('#editor')
  const language = new Compartment()

  const roomKeys = Prec.highest(keymap.of([
    { key: 'Mod-s', preventDefault: true, run: () => { savedHint(); return true } },
    { key: 'Mod-Enter', preventDefault: true, run: () => { runHint(); return true } }
  ]))

  function closeEditor () {
    if (view) { view.destroy(); view = null }
    current = null
    $('#current-file').textContent = 'No file open'
    editorHost.replaceChildren(h('p', { class: 'empty' }, 'No files yet. Add one with “+ New file”.'))
    setAwarenessFile(null)
  }

  function openFile (path) {
    if (path === null || !files.has(path)) { closeEditor(); renderFiles(); return }
    const ytext = files.get(path)
    if (view && current === path && view.__ytext === ytext) return
    const hadFocus = view ? view.hasFocus : false
    if (view) view.destroy()
    current = path
    let um = undoManagers.get(ytext)
    if (!um) { um = new Y.UndoManager(ytext); undoManagers.set(ytext, um) }
    view = new EditorView({
      parent: editorHost,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          roomKeys,
          basicSetup,
          keymap.of([indentWithTab]),
          language.of(languageFor(path)),
          EditorView.contentAttributes.of({ 'aria-label': `Editor for ${path}` }),
          yCollab(ytext, awareness, { undoManager: um })
        ]
      })
    })
    view.__ytext = ytext
    editorHost.querySelectorAll(':scope > :not(.cm-editor)').forEach((el) => el.remove())
    $('#current-file').textContent = path
    history.replaceState(null, '', '#' + encodeURIComponent(path))
    setAwarenessFile(path)
    renderFiles()
    if (hadFocus) view.focus()
  }

  function setAwarenessFile (path) {
    awareness.setLocalStateField('file', path)
  }

  // --- people ---------------------------------------------------------------
  const peopleList = $('#people')
  function renderPeople () {
    const states = [...awareness.getStates().entries()]
      .filter(([, s]) => s && s.user && s.user.name)
      .sort(([a], [b]) => (a === doc.clientID ? -1 : b === doc.clientID ? 1 : a - b))
    peopleList.replaceChildren(...states.map(([id, s]) => {
      const me = id === doc.clientID
      const label = `${s.user.name}${me ? ' (you)' : ''}${s.file ? ` — in ${s.file}` : ''}`
      return h('li', {
        class: 'person' + (me ? ' me' : ''),
        title: label,
        'aria-label': label,
        dataset: { name: s.user.name, client: String(id) },
        style: `--person: ${safeColor(s.user.color)}`
      }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(s.user.name)),
      h('span', { class: 'person-name' }, s.user.name + (me ? ' (you)' : '')))
    }))
    $('#people-count').textContent = `${states.length} here`
  }
  awareness.on('change', renderPeople)
  renderPeople()

  // --- name -----------------------------------------------------------------
  $('#change-name').addEventListener('click', async () => {
    const next = await askName({ force: true })
    const c = userColor(next)
    awareness.setLocalStateField('user', { name: next, color: c.color, colorLight: c.light })
    if (current) { const p = current; current = null; openFile(p) } // redraw own caret label colour
  })

  // --- keyboard: Ctrl/Cmd-S and Ctrl/Cmd-Enter outside the editor -----------
  function savedHint () { toast('Saved automatically — every change is stored as you type.') }
  function runHint () { toast('Run (Ctrl/Cmd-Enter) is coming soon.') }
  window.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || !(ev.ctrlKey || ev.metaKey)) return
    if (ev.key === 's' || ev.key === 'S') { ev.preventDefault(); savedHint() }
    if (ev.key === 'Enter') { ev.preventDefault(); runHint() }
  })
  $('#run').addEventListener('click', runHint)

  // --- versions -------------------------------------------------------------
  setupVersions(roomId)

  // Tests and curious people: the live objects.
  window.ocl = { doc, provider, awareness, files, get view () { return view }, get current () { return current } }
  renderFiles()
}

function setupVersions (roomId) {
  const panel = $('#versions')
  const toggle = $('#toggle-versions')
  const list = $('#version-list')
  const form = $('#version-form')
  const input = $('#version-name')
  const status = $('#versions-status')
  const base = `/api/rooms/${encodeURIComponent(roomId)}/versions`

  function setOpen (open) {
    panel.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    document.body.classList.toggle('versions-open', open)
    if (open) refresh()
  }
  toggle.addEventListener('click', () => setOpen(panel.hidden))
  $('#close-versions').addEventListener('click', () => setOpen(false))

  async function refresh () {
    try {
      const { versions } = await fetchJSON(base)
      versions.sort((a, b) => b.id - a.id)
      list.replaceChildren(...versions.map((v) => h('li', { class: 'version', dataset: { version: String(v.id) } },
        h('div', { class: 'version-text' },
          h('span', { class: 'version-name' }, v.name),
          h('time', { datetime: v.created_at, class: 'version-time' }, timeAgo(v.created_at))),
        h('button', { class: 'btn small', 'aria-label': `Restore version ${v.name}`, onclick: () => restore(v) }, 'Restore')
      )))
      status.textContent = versions.length ? '' : 'No saved versions yet.'
    } catch (err) {
      status.textContent = `Could not load versions: ${err.message}`
    }
  }

  async function restore (v) {
    if (!confirm(`Restore “${v.name}”? Everyone's files become that version (this can itself be undone by restoring another version).`)) return
    try {
      await fetchJSON(`${base}/${v.id}/restore`, { method: 'POST', body: '{}' })
      toast(`Restored “${v.name}”`)
    } catch (err) {
      toast(`Restore failed: ${err.message}`)
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const name = input.value.trim()
    if (!name) { input.focus(); return }
    const button = form.querySelector('button')
    button.disabled = true
    try {
      await fetchJSON(base, { method: 'POST', body: JSON.stringify({ name }) })
      input.value = ''
      toast(`Saved version “${name}”`)
      await refresh()
    } catch (err) {
      toast(`Could not save the version: ${err.message}`)
    } finally {
      button.disabled = false
    }
  })
}

function initials (name) {
  const parts = name.trim().split(/\s+/).filter(Boolean)
  return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase()
}

function safeColor (c) {
  return typeof c === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(c) ? c : '#888888'
}
