// Who is signed in. The session is an HttpOnly cookie this script never sees: the browser
// sends it with every request to this server and with the room socket's upgrade, and
// /api/me says whose it is. Without one, the page shows the sign-in screen instead.
import { $, fetchJSON, ApiError } from './util.js'

export const STAFF_ROLES = new Set(['instructor', 'teaching_assistant', 'admin'])
const ROLE_LABELS = {
  student: 'student',
  instructor: 'instructor',
  teaching_assistant: 'teaching assistant',
  admin: 'admin'
}
export const roleLabel = (role) => ROLE_LABELS[role] || String(role || 'unknown role')

/** Who may change a room's visibility and members: its owner, an instructor or an admin. */
export const canManage = (me, roomRole) =>
  roomRole === 'owner' || me.role === 'instructor' || me.role === 'admin'

/** The signed-in person (GET /api/me), or null once the sign-in screen is shown. */
export async function signedIn () {
  try {
    return await fetchJSON('/api/me')
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      showSignIn(err.message)
      return null
    }
    showProblem('The server cannot say who you are', `${err.message}. Reload the page to try again.`)
    return null
  }
}

function showGate (which) {
  for (const el of document.querySelectorAll('.here-origin')) el.textContent = location.origin
  $('#checking')?.remove()
  const app = $('#app')
  if (app) app.hidden = true
  $('#gate').hidden = false
  $('#signin').hidden = which !== 'signin'
  $('#problem').hidden = which !== 'problem'
}

/** The sign-in screen, saying why (not signed in, session expired, token refused). */
export function showSignIn (reason = '') {
  const expired = /expired/i.test(reason)
  let text
  if (expired) text = 'Your session has expired: sign in again.'
  else if (!reason || /missing token/i.test(reason)) text = 'You are not signed in.'
  else text = `Your session is not accepted any more (${reason}): sign in again.`
  document.body.dataset.auth = expired ? 'expired' : 'signed-out'
  $('#signin-reason').textContent = text
  showGate('signin')
  document.title = 'Sign in · opencode-live'
}

/** Instead of the page: something that stops it (no access to the room, server trouble). */
export function showProblem (title, text) {
  document.body.dataset.auth = 'problem'
  $('#problem-title').textContent = title
  $('#problem-text').textContent = text
  showGate('problem')
}

/** The page itself, once the person is known. */
export function showApp (me) {
  document.body.dataset.auth = 'signed-in'
  $('#checking')?.remove()
  $('#gate').hidden = true
  $('#app').hidden = false
  const chip = $('#me')
  $('#me-name').textContent = me.name
  const role = $('#me-role')
  role.textContent = roleLabel(me.role)
  role.dataset.role = me.role
  const cohort = $('#me-cohort')
  cohort.hidden = !me.cohort
  cohort.textContent = me.cohort ? `cohort ${me.cohort}` : ''
  const until = me.expires_at ? new Date(me.expires_at * 1000).toLocaleString() : null
  chip.title = `Signed in as ${me.name} (${me.id}), ${roleLabel(me.role)}` +
    (me.cohort ? `, cohort ${me.cohort}` : '') + (until ? `; session until ${until}` : '')
  chip.setAttribute('aria-label', chip.title)
  chip.hidden = false
}
