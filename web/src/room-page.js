// The room: files, editor, presence, connection state, runs, versions, settings, and what
// the person's role allows. The server decides every permission; this page only shows them:
// viewers get read-only editors and no edit controls, and what the server refuses anyway
// (a forced edit) is said in a notice.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as authProtocol from 'y-protocols/auth'
import { EditorView, basicSetup } from 'codemirror'
import { EditorState, Compartment, Prec } from '@codemirror/state'
import { keymap } from '@codemirror/view'
import { indentWithTab } from '@codemirror/commands'
import { python } from '@codemirror/lang-python'
import { javascript } from '@codemirror/lang-javascript'
import { yCollab } from 'y-codemirror.next'
import { $, h, toast, checkPath, fetchJSON, ApiError } from './util.js'
import { userColor } from './identity.js'
import { signedIn, showApp, showSignIn, showProblem, canManage } from './session.js'
import { encode, decode } from './msgpack.js'
import { setupVersions } from './versions.js'
import { setupSettings } from './settings.js'
import { setupRuns } from './runs.js'
import { setupPlayer } from './player.js'
import { setupRoomHighlights } from './room-highlights.js'
import { setupAwardToasts } from './award-toast.js'

const STARTER = '# Welcome! Everyone in this room edits these files together.\nprint("hello, class")\n'
const MESSAGE_AUTH = 2
const MESSAGE_ROOM = 100 // the room extension channel: a MessagePack body

/** What the server's close codes 4400-4499 mean here (y-websocket does not reconnect). */
const FINAL_CLOSES = {
  4400: { state: 'Disconnected', text: 'The server refused a malformed message and closed the connection.', action: 'reload' },
  4401: { state: 'Session expired', text: 'Your session expired, so the room closed your connection. Sign in again with your sign-in link, then reload this page.', action: 'signin' },
  4403: { state: 'Access withdrawn', text: 'Your access to this room was withdrawn: ask its owner to add you again.', action: 'rooms' },
  4429: { state: 'Rate limited', text: 'Disconnected: this tab sent too many changes too fast (rate limit).', action: 'reconnect' }
}

function languageFor (path) {
  if (/\.py$/i.test(path)) return python()
  if (/\.(m|c)?jsx?$/i.test(path)) return javascript({ jsx: /x$/i.test(path) })
  if (/\.tsx?$/i.test(path)) return javascript({ typescript: true, jsx: /x$/i.test(path) })
  return []
}

export async function startRoom (roomId) {
  const me = await signedIn()
  if (!me) return
  const room = await enterRoom(roomId)
  if (!room) return
  showApp(me)
  runRoom(roomId, me, room)
}

/** The room as the API describes it to this person, created (owned by them) if new. */
async function enterRoom (roomId, retried = false) {
  const url = `/api/rooms/${encodeURIComponent(roomId)}`
  try {
    return await fetchJSON(url)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && !retried) {
      try {
        return await fetchJSON('/api/rooms', { method: 'POST', body: JSON.stringify({ id: roomId }) })
      } catch (again) {
        if (again instanceof ApiError && again.status === 409) return enterRoom(roomId, true)
        return refused(again)
      }
    }
    return refused(err)
  }
}

function refused (err) {
  if (err instanceof ApiError && err.status === 401) showSignIn(err.message)
  else if (err instanceof ApiError && err.status === 403) showProblem('You cannot enter this room', capitalize(err.message) + '.')
  else showProblem('This room cannot be opened right now', `${capitalize(err.message)}. Reload the page to try again.`)
  return null
}

const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1)

function runRoom (roomId, me, room) {
  const color = userColor(me.uuid || me.name)
  const access = {
    role: room.role,
    canEdit: room.role === 'owner' || room.role === 'editor',
    canManage: canManage(me, room.role)
  }
  let closed = null // the final close, once the server ended the session for good

  const doc = new Y.Doc()
  const files = doc.getMap('files')
  // a demo step's highlights in the room's files (after a presenter's copy, or in a "Try it"
  // copy), following the edits
  const roomMarks = setupRoomHighlights(roomId, doc, () => ({ view, path: current }))
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rooms`
  // No BroadcastChannel: every edit goes through the server, so "pending" means what it says.
  // ext=1: the room extension channel (hello with our role, role changes, notices).
  const provider = new WebsocketProvider(wsUrl, roomId, doc, {
    connect: false, disableBc: true, maxBackoffTime: 2000, params: { ext: '1' }
  })
  const awareness = provider.awareness
  awareness.setLocalStateField('user', { name: me.name, color: color.color, colorLight: color.light })

  let current = null // path of the open file
  let view = null
  const undoManagers = new Map()

  // --- the room extension channel and refusals --------------------------------
  provider.messageHandlers[MESSAGE_ROOM] = (_encoder, decoder) => {
    let message
    try { message = decode(decoding.readVarUint8Array(decoder)) } catch { return }
    if (message && typeof message === 'object') roomMessage(message)
  }
  provider.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => {
      showNotice('permission-denied', 'error', reason)
    })
  }
  /** One message on the room channel; false when the socket is not open. */
  function sendRoom (message) {
    const ws = provider.ws
    if (!ws || ws.readyState !== WebSocket.OPEN) return false
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_ROOM)
    encoding.writeVarUint8Array(encoder, encode(message))
    ws.send(encoding.toUint8Array(encoder))
    return true
  }

  const awards = setupAwardToasts(me) // progress.award: passes and achievements, as toasts
  function roomMessage (message) {
    if (awards.message(message)) return
    if (runs.message(message)) return
    if (roomMarks.message(message)) return
    if (player.message(message)) return
    if (message.type === 'hello') {
      if (typeof message.role === 'string' && message.role) setAccess(message.role, Boolean(message.can_edit))
      runs.hello(message)
      player.hello(message)
    } else if (message.type === 'access') {
      setAccess(String(message.role), Boolean(message.can_edit))
      player.access(String(message.role), Boolean(message.can_edit))
    } else if (message.type === 'notice') {
      showNotice(String(message.code || ''), String(message.level || 'info'), String(message.text || ''))
    }
  }

  // --- notices (from the server) and final closes -----------------------------
  const notice = $('#notice')
  let noticeTimer = null
  function showNotice (code, level, text) {
    clearTimeout(noticeTimer)
    let shown = text
    const actions = []
    if (runs.notice(code, level, text)) {
      shown = capitalize(text) // a run refused or unavailable: the server says why
    } else if (player.notice(code, level, text)) {
      shown = capitalize(text) // a demo command, question or answer refused: the server says why
    } else if (code === 'permission-denied') {
      shown = `Not saved: ${text}. Reload to see the room as it is.`
      actions.push(h('button', { class: 'btn small', type: 'button', onclick: () => location.reload() }, 'Reload'))
    } else if (code === 'role-changed') {
      // Said from the role the server just sent (its `access` message comes first).
      const role = access.role
      shown = `You are now ${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} in this room` +
        (access.canEdit ? '.' : ': you see every change live but cannot edit.')
    }
    notice.dataset.code = code
    notice.dataset.level = level
    notice.setAttribute('role', level === 'error' ? 'alert' : 'status')
    $('#notice-text').textContent = shown
    $('#notice-actions').replaceChildren(...actions)
    notice.hidden = false
    if (level === 'info') noticeTimer = setTimeout(hideNotice, 6000)
  }
  function hideNotice () { notice.hidden = true; delete notice.dataset.code }
  $('#notice-close').addEventListener('click', hideNotice)

  const alertBar = $('#room-alert')
  function endSession (code, reason) {
    const known = FINAL_CLOSES[code] || { state: 'Disconnected', text: `The server closed the connection (${code}${reason ? ': ' + reason : ''}).`, action: 'reload' }
    closed = { code, ...known }
    provider.disconnect()
    runs.disconnected()
    player.disconnected()
    hideNotice()
    alertBar.dataset.code = String(code)
    $('#room-alert-text').textContent = known.text
    const actions = {
      reload: () => h('button', { class: 'btn small', type: 'button', onclick: () => location.reload() }, 'Reload'),
      signin: () => h('button', { class: 'btn small', type: 'button', onclick: () => showSignIn('token expired') }, 'How to sign in'),
      rooms: () => h('a', { class: 'btn small', href: '/' }, 'All rooms'),
      reconnect: () => h('button', { class: 'btn small', type: 'button', onclick: reconnect }, 'Reconnect')
    }
    $('#room-alert-actions').replaceChildren(actions[known.action]())
    alertBar.hidden = false
    applyAccess()
    renderConnection()
  }
  function reconnect () {
    closed = null
    alertBar.hidden = true
    applyAccess()
    provider.connect()
    renderConnection()
  }
  provider.on('closed', ({ code, reason }) => endSession(code, reason))

  // A refused upgrade (session expired, access withdrawn while away) is only a failed
  // socket to the browser: ask the API why, at most every few seconds, and stop if so.
  let opened = false
  let lastCheck = 0
  provider.on('status', ({ status }) => {
    if (status === 'connecting') opened = false
    if (status === 'connected') opened = true
    if (status === 'disconnected') { runs.disconnected(); player.disconnected() }
    else runs.render()
  })
  provider.on('connection-close', (event) => {
    if (opened || closed || !event || Date.now() - lastCheck < 5000) return
    lastCheck = Date.now()
    fetchJSON(`/api/rooms/${encodeURIComponent(roomId)}`).then((fresh) => {
      if (fresh && fresh.role && fresh.role !== access.role) setAccess(fresh.role, fresh.role !== 'viewer')
    }, (err) => {
      if (!(err instanceof ApiError) || closed) return // offline: y-websocket keeps trying
      if (err.status === 401) endSession(4401, err.message)
      else if (err.status === 403) endSession(4403, err.message)
    })
  })

  // --- connection indicator -------------------------------------------------
  const indicator = $('#connection')
  const indicatorText = $('#connection-text')
  let everConnected = false
  let pending = 0 // local changes made since the last full sync with the server

  function renderConnection () {
    let state, text
    const connected = provider.wsconnected && provider.synced
    if (closed) {
      state = 'closed'; text = closed.state
    } else if (connected) {
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
    indicator.title = closed
      ? closed.text
      : connected
        ? (access.canEdit ? 'Every change is saved automatically' : 'You follow every change live (read-only)')
        : 'Your edits are kept here and sent when the connection is back'
  }
  provider.on('status', () => renderConnection())
  provider.on('sync', (synced) => {
    if (synced && provider.wsconnected) {
      // Our sync step 2 (everything the server lacked) went out before the server's step 2
      // arrived, so nothing local is pending any more.
      everConnected = true
      pending = 0
      roomMarks.load()
      ensureAFile()
    }
    renderConnection()
  })
  doc.on('update', (_update, origin) => {
    if (origin === provider) return
    if (!(provider.wsconnected && provider.synced)) { pending++; renderConnection() }
  })
  window.addEventListener('online', () => {
    if (!provider.wsconnected && !closed) provider.connect()
    renderConnection()
  })
  window.addEventListener('offline', renderConnection)
  window.addEventListener('beforeunload', (ev) => {
    if (pending > 0 && access.canEdit && !closed) { ev.preventDefault(); ev.returnValue = '' }
  })

  // --- what this person may do ----------------------------------------------
  const editable = new Compartment()
  const mayEdit = () => access.canEdit && !closed
  function editableExtension () {
    const on = mayEdit()
    return [
      EditorState.readOnly.of(!on),
      EditorView.editable.of(on),
      EditorView.contentAttributes.of({ 'aria-readonly': String(!on) })
    ]
  }

  function setAccess (role, canEdit) {
    const changed = role !== access.role || canEdit !== access.canEdit
    access.role = role
    access.canEdit = canEdit
    access.canManage = canManage(me, role)
    applyAccess()
    if (changed && canEdit && provider.synced) ensureAFile()
  }

  function applyAccess () {
    const on = mayEdit()
    document.body.dataset.roomRole = access.role
    document.body.dataset.canEdit = String(on)
    const badge = $('#room-role')
    badge.textContent = access.role
    badge.dataset.role = access.role
    badge.title = `Your role in this room: ${access.role}` +
      (access.canEdit ? '' : ' (you see every change live but cannot edit)')
    $('#readonly').hidden = access.canEdit || Boolean(closed)
    $('#add-file').hidden = !access.canEdit
    $('#add-file').disabled = !on
    runs.render()
    $('#save-hint').textContent = closed
      ? 'Disconnected: nothing more is sent or saved.'
      : access.canEdit
        ? 'Changes are saved automatically.'
        : 'You are a viewer: you see every change live.'
    if (view) view.dispatch({ effects: editable.reconfigure(editableExtension()) })
    if (view === null && provider.synced) closeEditor()
    renderFiles()
    versions.setCanEdit(on)
    settings.setCanManage(access.canManage)
    renderConnection()
  }

  // --- files ----------------------------------------------------------------
  const fileList = $('#file-list')
  const sortedPaths = () => [...files.keys()].sort((a, b) => a.localeCompare(b))

  function ensureAFile () {
    if (files.size === 0 && mayEdit()) {
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
    const on = mayEdit()
    fileList.replaceChildren(...paths.map((path) => {
      const active = path === current
      return h('li', { class: 'file' + (active ? ' active' : ''), dataset: { path } },
        h('button', {
          class: 'file-open',
          'aria-label': `Open ${path}`,
          'aria-current': active ? 'true' : null,
          onclick: () => openFile(path)
        }, path),
        on && h('button', { class: 'icon-btn file-rename', 'aria-label': `Rename ${path}`, title: 'Rename', onclick: () => renameFile(path) }, '✎'),
        on && h('button', { class: 'icon-btn file-delete', 'aria-label': `Delete ${path}`, title: 'Delete', onclick: () => deleteFile(path) }, '×')
      )
    }))
    $('#file-count').textContent = String(paths.length)
    runs.render() // what Run runs follows the files and the open one
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
    if (!mayEdit()) return
    const path = askPath('New file name (e.g. util.py, app.js):', '')
    if (path === null) return
    if (files.has(path)) { openFile(path); toast(`${path} already exists`); return }
    doc.transact(() => files.set(path, new Y.Text('')))
    openFile(path)
  }

  function renameFile (from) {
    if (!mayEdit()) return
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
    if (!mayEdit()) return
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
    { key: 'Mod-Enter', preventDefault: true, run: () => { runs.request(); return true } }
  ]))

  function closeEditor () {
    if (view) { view.destroy(); view = null }
    current = null
    $('#current-file').textContent = 'No file open'
    const empty = access.canEdit ? 'No files yet. Add one with “+ New file”.' : 'No files yet.'
    editorHost.replaceChildren(h('p', { class: 'empty' }, empty))
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
          editable.of(editableExtension()),
          EditorView.contentAttributes.of({ 'aria-label': `Editor for ${path}` }),
          yCollab(ytext, awareness, { undoManager: um }),
          roomMarks.extension
        ]
      })
    })
    view.__ytext = ytext
    roomMarks.render(view, path)
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

  // --- keyboard: Ctrl/Cmd-S and Ctrl/Cmd-Enter outside the editor -----------
  function savedHint () {
    toast(access.canEdit
      ? 'Saved automatically — every change is stored as you type.'
      : 'You are a viewer here: there is nothing of yours to save.')
  }
  window.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || !(ev.ctrlKey || ev.metaKey)) return
    if (ev.key === 's' || ev.key === 'S') { ev.preventDefault(); savedHint() }
    if (ev.key === 'Enter') { ev.preventDefault(); runs.request() }
  })

  // --- side panels: versions, settings (one at a time) ----------------------
  function onPanel (which) {
    document.body.classList.toggle('panel-open', which !== null)
    if (which !== 'versions') versions.close()
    if (which !== 'settings') settings.close()
  }
  const onSessionEnd = (err) => { if (err instanceof ApiError && err.status === 401) endSession(4401, err.message) }
  const versions = setupVersions(roomId, { onOpen: onPanel, onUnauthorized: onSessionEnd })

  // --- runs: the Run button, the output everyone watches, the program's input --
  // (set up here, after everything it reads; the handlers above only call it later)
  const runs = setupRuns({
    send: sendRoom,
    mayRun: mayEdit,
    connected: () => Boolean(provider.wsconnected) && !closed,
    paths: sortedPaths,
    current: () => current
  })
  const settings = setupSettings(roomId, me, room, { onOpen: onPanel, onUnauthorized: onSessionEnd })
  // --- the demo player: the room's synchronized demo, questions, "Try it" --------------
  const player = setupPlayer({ send: sendRoom, roomId, me, mount: editorHost })

  // Tests and curious people: the live objects.
  window.ocl = {
    doc,
    provider,
    awareness,
    files,
    me,
    access,
    sendRoom,
    runs,
    player: player.hook,
    get view () { return view },
    get current () { return current }
  }
  applyAccess()
  renderPeople()
  provider.connect()
  renderConnection()
}

function initials (name) {
  const parts = name.trim().split(/\s+/).filter(Boolean)
  return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase()
}

function safeColor (c) {
  return typeof c === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(c) ? c : '#888888'
}
