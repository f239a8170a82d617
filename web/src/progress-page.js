// /progress: one's progress, achievements and leaderboards, as three tabs (#achievements and
// #leaderboards link straight to theirs). Course staff look at a student's with
// ?user=<id>; whether they may is the API's call, and its refusal is shown as it says it.
import { $, h, fetchJSON, ApiError } from './util.js'
import { signedIn, showApp, showSignIn, STAFF_ROLES } from './session.js'
import { renderProgress, LEDGER_FIRST_PAGE } from './progress-view.js'
import { renderAchievements } from './achievements-view.js'
import { setupLeaderboard } from './leaderboard-view.js'

const TABS = [
  { id: 'progress', label: 'Progress' },
  { id: 'achievements', label: 'Achievements' },
  { id: 'leaderboards', label: 'Leaderboards', selfOnly: true }
]

export async function startProgress () {
  const me = await signedIn()
  if (!me) return
  showApp(me)
  const asked = (new URLSearchParams(location.search).get('user') || '').trim()
  const self = !asked || asked === 'me' || asked === me.id || asked === me.uuid
  const user = self ? 'me' : asked
  const root = $('#progress-root')
  const title = self ? 'Your progress' : `Progress of ${asked}`
  document.title = `${title} · opencode-live`

  const tabs = TABS.filter((t) => self || !t.selfOnly)
  const panels = Object.fromEntries(tabs.map((t) => [t.id, h('section', {
    class: 'tab-panel', id: `view-${t.id}`, role: 'tabpanel', 'aria-labelledby': `tab-${t.id}`, tabindex: '0', hidden: true
  }, h('p', { class: 'status-line' }, 'Loading…'))]))
  const buttons = tabs.map((t) => h('button', {
    class: 'tab', type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-controls': `view-${t.id}`,
    'aria-selected': 'false', tabindex: '-1', dataset: { tab: t.id }, onclick: () => select(t.id, true)
  }, t.label))
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Views' }, buttons)
  tablist.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement)
    if (i < 0) return
    const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key]
    if (ev.key === 'Home' || ev.key === 'End' || step) {
      ev.preventDefault()
      const j = ev.key === 'Home' ? 0 : ev.key === 'End' ? buttons.length - 1 : (i + step + buttons.length) % buttons.length
      select(tabs[j].id, true)
      buttons[j].focus()
    }
  })
  const refusal = h('div', { class: 'refusal', id: 'progress-refused', role: 'alert', hidden: true })
  root.replaceChildren(...[
    h('h1', { id: 'progress-title' }, title),
    !self && STAFF_ROLES.has(me.role) ? h('p', { class: 'lead' }, `You are looking at ${asked}’s progress as course staff. `, h('a', { href: '/progress' }, 'Your own')) : null,
    STAFF_ROLES.has(me.role) ? staffLookup(asked) : null,
    refusal, tablist, ...Object.values(panels)].filter(Boolean))
  root.removeAttribute('aria-busy')

  const loaded = new Set()
  const loaders = {
    progress: () => loadProgress(panels.progress, user),
    achievements: () => loadAchievements(panels.achievements, user, self),
    leaderboards: () => setupLeaderboard(panels.leaderboards, me).start()
  }
  async function select (id, push) {
    const tab = tabs.find((t) => t.id === id) || tabs[0]
    for (const b of buttons) {
      const on = b.dataset.tab === tab.id
      b.setAttribute('aria-selected', String(on))
      b.tabIndex = on ? 0 : -1
    }
    for (const [key, panel] of Object.entries(panels)) panel.hidden = key !== tab.id
    if (push) history.replaceState(null, '', tab.id === 'progress' ? location.pathname + location.search : '#' + tab.id)
    if (loaded.has(tab.id)) return
    loaded.add(tab.id)
    try {
      await loaders[tab.id]()
    } catch (err) {
      loaded.delete(tab.id)
      if (err instanceof ApiError && err.status === 401) { showSignIn(err.message); return }
      if (err instanceof ApiError && (err.status === 403 || err.status === 404)) { refuse(err); return }
      panels[tab.id].replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not load this: ${err.message}. Reload to try again.`))
    }
  }

  function refuse (err) {
    // Who may see whom is the server's rule: say what it said, and offer one's own page.
    tablist.hidden = true
    for (const panel of Object.values(panels)) panel.hidden = true
    refusal.replaceChildren(
      h('h2', {}, err.status === 403 ? 'You cannot see this person’s progress' : 'No such person among those you may see'),
      h('p', { class: 'refusal-reason' }, `The server said: ${err.message}.`),
      h('p', {}, h('a', { class: 'btn primary', href: '/progress' }, 'See your own progress')))
    refusal.hidden = false
  }

  window.addEventListener('hashchange', () => select(location.hash.slice(1), false))
  select(location.hash.slice(1), false)
}

async function loadProgress (panel, user) {
  const base = `/api/users/${encodeURIComponent(user)}`
  const [progress, points] = await Promise.all([
    fetchJSON(`${base}/progress`),
    fetchJSON(`${base}/points?limit=${LEDGER_FIRST_PAGE}`)
  ])
  renderProgress(panel, user, progress, points)
}

async function loadAchievements (panel, user, self) {
  const body = await fetchJSON(`/api/users/${encodeURIComponent(user)}/achievements`)
  renderAchievements(panel, body, { self })
}

/** Staff: open a student's page by their user id (a plain GET form: /progress?user=…). */
function staffLookup (asked) {
  return h('form', { class: 'staff-lookup', method: 'get', action: '/progress', role: 'search', 'aria-label': 'A student’s progress' },
    h('label', { for: 'lookup-user' }, 'A student’s progress'),
    h('input', { id: 'lookup-user', name: 'user', value: asked || '', placeholder: 'user id, e.g. ada', autocomplete: 'off', spellcheck: 'false', required: true, maxlength: '200' }),
    h('button', { class: 'btn small', type: 'submit' }, 'Show'))
}
