// Small helpers shared by the pages.

/** Create an element: h('button', {class: 'x', onclick}, 'text', child) */
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

export const $ = (sel, root = document) => root.querySelector(sel)

let toastTimer = null
/** A short message at the bottom of the screen, read out by screen readers. */
export function toast (text) {
  const el = $('#toast')
  if (!el) return
  el.textContent = text
  el.classList.add('show')
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => el.classList.remove('show'), 2500)
}

/** The same rule as the server's file paths: relative POSIX, no ./.. or empty parts. */
export function checkPath (path) {
  if (!path) return 'a file needs a name'
  if (path.length > 512) return 'that name is too long'
  if (path.startsWith('/')) return 'use a relative path (no leading /)'
  if (path.includes('\\')) return 'use / to separate folders'
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'no control characters in names'
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') return 'no empty, "." or ".." parts in a path'
  }
  return null
}

const ROOM_ID = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/
export const validRoomId = (id) => ROOM_ID.test(id)

/** An HTTP API error: the server's JSON message, with the status to act on. */
export class ApiError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

export async function fetchJSON (url, options = {}) {
  const res = await fetch(url, {
    credentials: 'same-origin', // the session cookie
    ...options,
    headers: { Accept: 'application/json', ...(options.body ? { 'Content-Type': 'application/json' } : {}) }
  })
  let body = null
  try { body = await res.json() } catch { body = null }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`)
  return body
}

export function timeAgo (iso) {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const s = Math.max(0, Math.round((Date.now() - t) / 1000))
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return new Date(t).toLocaleString()
}
