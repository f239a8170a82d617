// The versions panel: everyone who can enter may list versions; saving and restoring need
// an editor (the server refuses them otherwise, so viewers are not offered them).
import { $, h, toast, fetchJSON, timeAgo } from './util.js'

export function setupVersions (roomId, { onOpen, onUnauthorized }) {
  const panel = $('#versions')
  const toggle = $('#toggle-versions')
  const list = $('#version-list')
  const form = $('#version-form')
  const input = $('#version-name')
  const status = $('#versions-status')
  const base = `/api/rooms/${encodeURIComponent(roomId)}/versions`
  let canEdit = false
  let shown = []

  function setOpen (open) {
    panel.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    if (open) { onOpen('versions'); refresh() } else if (!document.querySelector('.panel:not([hidden])')) onOpen(null)
  }
  toggle.addEventListener('click', () => setOpen(panel.hidden))
  $('#close-versions').addEventListener('click', () => setOpen(false))

  function render () {
    list.replaceChildren(...shown.map((v) => h('li', { class: 'version', dataset: { version: String(v.id) } },
      h('div', { class: 'version-text' },
        h('span', { class: 'version-name' }, v.name),
        h('time', { datetime: v.created_at, class: 'version-time' }, timeAgo(v.created_at))),
      canEdit && h('button', { class: 'btn small', 'aria-label': `Restore version ${v.name}`, onclick: () => restore(v) }, 'Restore')
    )))
  }

  async function refresh () {
    try {
      const { versions } = await fetchJSON(base)
      shown = versions.sort((a, b) => b.id - a.id)
      render()
      status.textContent = shown.length ? '' : 'No saved versions yet.'
    } catch (err) {
      onUnauthorized(err)
      status.textContent = `Could not load versions: ${err.message}`
    }
  }

  async function restore (v) {
    if (!confirm(`Restore “${v.name}”? Everyone's files become that version (this can itself be undone by restoring another version).`)) return
    try {
      await fetchJSON(`${base}/${v.id}/restore`, { method: 'POST', body: '{}' })
      toast(`Restored “${v.name}”`)
    } catch (err) {
      onUnauthorized(err)
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
      onUnauthorized(err)
      toast(`Could not save the version: ${err.message}`)
    } finally {
      button.disabled = false
    }
  })

  return {
    close () { if (!panel.hidden) { panel.hidden = true; toggle.setAttribute('aria-expanded', 'false') } },
    setCanEdit (value) {
      canEdit = value
      form.hidden = !value
      render()
    }
  }
}
