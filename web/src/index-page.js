// The front page: the rooms you can enter (from /api/rooms, refreshed), a new room, open a room by id.
import { $, h, fetchJSON, ApiError, validRoomId } from './util.js'
import { signedIn, showApp, showSignIn, STAFF_ROLES } from './session.js'

const REFRESH_MS = 10_000 // well inside the hourly API allowance, even for a tab left open

export async function startIndex () {
  const me = await signedIn()
  if (!me) return
  showApp(me)
  setupOpenForm()
  setupNewRoom(me)
  setupRoomList()
}

function setupOpenForm () {
  const form = $('#open-form')
  const input = $('#open-room-id')
  const error = $('#open-error')
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const id = input.value.trim()
    if (!validRoomId(id)) {
      error.textContent = 'Room ids use letters, digits, "-", "_" and "." (up to 128).'
      input.setAttribute('aria-invalid', 'true')
      input.focus()
      return
    }
    location.href = '/r/' + encodeURIComponent(id)
  })
  input.addEventListener('input', () => {
    error.textContent = ''
    input.removeAttribute('aria-invalid')
  })
}

function setupNewRoom (me) {
  const toggle = $('#new-room')
  const form = $('#new-room-form')
  const id = $('#new-room-id')
  const title = $('#new-room-title')
  const visibility = $('#new-room-visibility')
  const cohort = $('#new-room-cohort')
  const error = $('#new-room-error')
  const staff = STAFF_ROLES.has(me.role)

  // Course staff choose any cohort; a student may open a room only to their own cohort.
  for (const el of form.querySelectorAll('.staff-only')) el.hidden = !staff
  cohort.value = me.cohort || ''
  const cohortOption = visibility.querySelector('option[value="cohort"]')
  if (!staff) {
    cohortOption.hidden = cohortOption.disabled = !me.cohort
    if (me.cohort) cohortOption.textContent = `Your cohort (${me.cohort}): its people can edit`
  }

  function setOpen (open) {
    form.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    if (open) { id.focus(); id.select() }
  }
  toggle.addEventListener('click', () => setOpen(form.hidden))
  $('#new-room-cancel').addEventListener('click', () => setOpen(false))

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    error.textContent = ''
    const roomId = id.value.trim()
    if (!validRoomId(roomId)) {
      error.textContent = 'Room ids use letters, digits, "-", "_" and "." (up to 128).'
      id.focus()
      return
    }
    const body = { id: roomId, visibility: visibility.value }
    if (title.value.trim()) body.title = title.value.trim()
    if (staff && visibility.value === 'cohort') {
      if (!cohort.value.trim()) { error.textContent = 'A room open to a cohort needs a cohort.'; cohort.focus(); return }
      body.cohort = cohort.value.trim()
    }
    const button = form.querySelector('button[type=submit]')
    button.disabled = true
    try {
      await fetchJSON('/api/rooms', { method: 'POST', body: JSON.stringify(body) })
      location.href = '/r/' + encodeURIComponent(roomId)
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) { showSignIn(err.message); return }
      error.textContent = err instanceof ApiError && err.status === 409
        ? `There is a room "${roomId}" already: choose another id, or open it above.`
        : `Could not create the room: ${err.message}`
    } finally {
      button.disabled = false
    }
  })
}

function setupRoomList () {
  const list = $('#room-list')
  const status = $('#rooms-status')
  let timer = null

  async function refresh () {
    try {
      const { rooms } = await fetchJSON('/api/rooms')
      rooms.sort((a, b) => b.connections - a.connections || a.id.localeCompare(b.id))
      list.replaceChildren(...rooms.map(roomItem))
      status.textContent = rooms.length ? '' : 'No rooms yet. Start one, or open the link someone shared with you.'
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        clearInterval(timer)
        showSignIn(err.message)
        return
      }
      status.textContent = `Could not load the rooms: ${err.message}`
    }
  }
  refresh()
  timer = setInterval(() => { if (!document.hidden) refresh() }, REFRESH_MS)
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh() })
}

const VISIBILITY = { private: 'private', cohort: 'cohort', public: 'public' }

function roomItem (r) {
  const people = r.connections === 0 ? 'no one here' : r.connections === 1 ? '1 person' : `${r.connections} people`
  const where = r.visibility === 'cohort' && r.cohort ? `cohort ${r.cohort}` : VISIBILITY[r.visibility] || r.visibility
  return h('li', { class: 'room-item', dataset: { room: r.id, role: r.role } },
    h('div', { class: 'room-text' },
      h('a', { href: '/r/' + encodeURIComponent(r.id), class: 'room-link' }, r.title || r.id),
      r.title ? h('span', { class: 'room-id' }, r.id) : null),
    h('span', { class: 'badge room-role', title: 'Your role in this room' }, r.role),
    h('span', { class: 'badge subtle room-visibility', title: 'Who can enter' }, where),
    h('span', { class: 'room-people', 'aria-label': `${r.connections} connected` }, people))
}
