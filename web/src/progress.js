// Self-paced progress through a demo: read once when the demo is opened on one's own
// (GET /api/demos/<id>/progress), saved every few seconds while it changes and when the page
// is left (PUT, kept alive past unload). Errors are quiet: progress is a convenience.

const SAVE_EVERY_MS = 5000

const url = (demo) => `/api/demos/${encodeURIComponent(demo)}/progress`

/** The saved progress {position, step, fraction, completed, updated_at} or null (none saved, or the server cannot say). */
export async function loadProgress (demo) {
  try {
    const res = await fetch(url(demo), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    if (!res.ok) return null
    const body = await res.json()
    const p = body && typeof body === 'object' && body.progress && typeof body.progress === 'object' ? body.progress : body
    // nothing reported yet is answered as "at the start" with no updated_at
    return p && Number.isFinite(p.position) && p.updated_at ? p : null
  } catch {
    return null
  }
}

/** current() → {demo, position, step?, fraction, completed} or null when nothing to save. */
export function progressSaver (current) {
  let last = ''
  function save (keepalive = false) {
    const p = current()
    if (!p) return
    const { demo, ...body } = p
    const text = JSON.stringify(body)
    if (text === last) return
    last = text
    fetch(url(demo), {
      method: 'PUT',
      credentials: 'same-origin',
      keepalive,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: text
    }).catch(() => {})
  }
  const timer = setInterval(() => save(false), SAVE_EVERY_MS)
  const leave = () => save(true)
  window.addEventListener('pagehide', leave)
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') leave() })
  return { save, forget: () => { last = '' }, stop: () => clearInterval(timer) }
}
