// The front page: live rooms (from /api/rooms, refreshed), a new room, open a room by id.
import { $, h, fetchJSON, validRoomId } from './util.js'

export function startIndex () {
  const list = $('#room-list')
  const status = $('#rooms-status')
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

  async function refresh () {
    try {
      const { rooms } = await fetchJSON('/api/rooms')
      rooms.sort((a, b) => b.connections - a.connections || a.id.localeCompare(b.id))
      list.replaceChildren(...rooms.map((r) => h('li', { class: 'room-item', dataset: { room: r.id } },
        h('a', { href: '/r/' + encodeURIComponent(r.id), class: 'room-link' }, r.id),
        h('span', { class: 'room-people', 'aria-label': `${r.connections} connected` },
          r.connections === 1 ? '1 person' : `${r.connections} people`)
      )))
      status.textContent = rooms.length ? '' : 'No live rooms right now. Start one!'
    } catch (err) {
      status.textContent = `Could not load the rooms: ${err.message}`
    }
  }
  refresh()
  setInterval(() => { if (!document.hidden) refresh() }, 3000)
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh() })
}
