// Room settings, for those who may manage the room (its owner, an instructor, an admin):
// who can enter (PATCH /api/rooms/<id>) and members (PUT/DELETE .../members/<user>).
// Changes reach people already in the room at once: the server sends them their new role.
import { $, h, toast, fetchJSON } from './util.js'

const ROLES = ['owner', 'editor', 'viewer']

export function setupSettings (roomId, me, room, { onOpen, onUnauthorized }) {
  const panel = $('#settings')
  const toggle = $('#toggle-settings')
  const accessForm = $('#access-form')
  const visibility = $('#room-visibility')
  const cohort = $('#room-cohort')
  const list = $('#member-list')
  const memberForm = $('#member-form')
  const memberUser = $('#member-user')
  const memberRole = $('#member-role')
  const status = $('#settings-status')
  const base = `/api/rooms/${encodeURIComponent(roomId)}`
  let canManage = false

  function setOpen (open) {
    panel.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    if (open) { onOpen('settings'); refresh() } else if (!document.querySelector('.panel:not([hidden])')) onOpen(null)
  }
  toggle.addEventListener('click', () => setOpen(panel.hidden))
  $('#close-settings').addEventListener('click', () => setOpen(false))

  function failed (what, err) {
    onUnauthorized(err)
    status.textContent = `${what}: ${err.message}`
  }

  function showRules (info) {
    visibility.value = info.visibility
    cohort.value = info.cohort || ''
    const title = $('#room-name')
    title.textContent = info.title ? `${info.title} · ${info.id}` : info.id
  }

  async function refresh () {
    status.textContent = ''
    try {
      const [info, { members }] = await Promise.all([
        fetchJSON(base),
        fetchJSON(`${base}/members`)
      ])
      showRules(info)
      const owner = info.owner === me.uuid ? 'you' : (info.owner || 'nobody')
      list.replaceChildren(
        h('li', { class: 'member owner-line' }, h('span', { class: 'member-name' }, `Owner: ${owner}`)),
        ...members.map(memberItem))
      if (!members.length) status.textContent = 'No members yet: add people by their user id.'
    } catch (err) {
      failed('Could not load the settings', err)
    }
  }

  function memberItem (m) {
    const self = m.user === me.uuid
    const label = m.name ? `${m.name} (${m.username || m.user})` : (m.username || m.user)
    const select = h('select', {
      class: 'member-role',
      'aria-label': `Role of ${label}`,
      disabled: self, // the server refuses changing one's own role
      title: self ? 'You cannot change your own role' : null,
      onchange: (ev) => setMember(m.user, ev.target.value, label)
    }, ...ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r)))
    return h('li', { class: 'member', dataset: { user: m.user, username: m.username || '' } },
      h('span', { class: 'member-name', title: m.user }, label),
      select,
      !self && h('button', {
        class: 'icon-btn member-remove',
        type: 'button',
        'aria-label': `Remove ${label}`,
        title: 'Remove from the room',
        onclick: () => removeMember(m.user, label)
      }, '×'))
  }

  async function setMember (user, role, label) {
    try {
      await fetchJSON(`${base}/members/${encodeURIComponent(user)}`, { method: 'PUT', body: JSON.stringify({ role }) })
      toast(`${label} is now ${role === 'owner' ? 'an' : 'a'} ${role} here`)
    } catch (err) {
      failed(`Could not change ${label}`, err)
    }
    await refresh()
  }

  async function removeMember (user, label) {
    if (!confirm(`Remove ${label} from this room?`)) return
    try {
      await fetchJSON(`${base}/members/${encodeURIComponent(user)}`, { method: 'DELETE' })
      toast(`${label} was removed`)
    } catch (err) {
      failed(`Could not remove ${label}`, err)
    }
    await refresh()
  }

  memberForm.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const user = memberUser.value.trim()
    if (!user) { memberUser.focus(); return }
    try {
      await fetchJSON(`${base}/members/${encodeURIComponent(user)}`, { method: 'PUT', body: JSON.stringify({ role: memberRole.value }) })
      memberUser.value = ''
      toast(`Added ${user} as ${memberRole.value}`)
    } catch (err) {
      failed(`Could not add ${user}`, err)
      return
    }
    await refresh()
  })

  accessForm.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const body = { visibility: visibility.value, cohort: cohort.value.trim() || null }
    try {
      showRules(await fetchJSON(base, { method: 'PATCH', body: JSON.stringify(body) }))
      toast('Room settings saved')
      status.textContent = ''
    } catch (err) {
      failed('Could not save', err)
    }
  })

  showRules(room)
  return {
    close () { if (!panel.hidden) { panel.hidden = true; toggle.setAttribute('aria-expanded', 'false') } },
    setCanManage (value) {
      canManage = value
      toggle.hidden = !canManage
      if (!canManage) setOpen(false)
    }
  }
}
