// "Try it": the demo's files as they are on screen, copied into a private room of the
// viewer's own (`<room>-fork-<short user id>`, made with POST /api/rooms; an existing one is
// reused) with PUT /api/rooms/<fork>/files/<path>, where they can edit and run them.
import { h, toast, fetchJSON, ApiError } from './util.js'
import { saveForkHighlights } from './room-highlights.js'

/** The fork's room id: at most 128 characters, the room's own id shortened if need be. */
export function forkId (roomId, me) {
  const short = String(me.uuid || me.id || 'me').replace(/[^A-Za-z0-9]/g, '').slice(0, 8) || 'me'
  const suffix = `-fork-${short}`
  return roomId.slice(0, 128 - suffix.length) + suffix
}

const encodePath = (path) => path.split('/').map(encodeURIComponent).join('/')

/**
 * Copy `files` (path → text) into the fork; `replace(existing)` is asked whether to overwrite
 * the files of a copy made before. Resolves to {room, url, created, copied}.
 */
export async function forkFiles (roomId, me, files, { replace = () => true } = {}) {
  const room = forkId(roomId, me)
  let created = true
  try {
    await fetchJSON('/api/rooms', { method: 'POST', body: JSON.stringify({ id: room, visibility: 'private', title: `My copy of ${roomId}` }) })
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err
    created = false
  }
  const url = `/r/${encodeURIComponent(room)}`
  if (!created && !replace(room)) return { room, url, created, copied: false }
  for (const [path, text] of Object.entries(files)) {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/files/${encodePath(path)}`, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'text/plain; charset=utf-8', Accept: 'application/json' },
      body: text
    })
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`
      try { message = (await res.json()).error || message } catch { /* not JSON */ }
      throw new ApiError(res.status, `${path}: ${message}`)
    }
  }
  return { room, url, created, copied: true }
}

/**
 * The "Try it" button and the link to the copy: files() → {path: text} on screen now,
 * highlights() → [{file, from, to, note}] in them (they travel with the copy).
 */
export function createTryIt ({ roomId, me, files, highlights }) {
  const button = h('button', {
    class: 'btn small', id: 'demo-try', type: 'button', title: 'Copy the files on screen into a room of your own, to edit and run'
  }, 'Try it')
  const link = h('a', { class: 'demo-try-link', id: 'demo-try-link', target: '_blank', rel: 'opener', hidden: true }, 'Open your copy')

  button.addEventListener('click', async () => {
    const now = files()
    if (Object.keys(now).length === 0) { toast('No files to copy here'); return }
    const marks = highlights()
    button.disabled = true
    button.textContent = 'Copying…'
    try {
      const fork = await forkFiles(roomId, me, now, {
        replace: () => confirm('You already have a copy of this room. Replace its files with the files on screen now?')
      })
      if (fork.copied) saveForkHighlights(fork.room, marks)
      link.href = fork.url
      link.hidden = false
      const opened = window.open(fork.url, '_blank')
      toast(fork.copied ? 'Your own copy is ready: edit and run it there.' : 'Your earlier copy is unchanged.')
      if (!opened) link.focus()
    } catch (err) {
      toast(err instanceof ApiError && err.status === 401 ? 'Your session expired: sign in again.' : `Could not make your copy: ${err.message}`)
    } finally {
      button.disabled = false
      button.textContent = 'Try it'
    }
  })
  return { button, link }
}
