// The leaderboards view: everyone or one's cohort, by week, month or all time (UTC windows,
// as the server ranks them), earlier weeks and months through ‹ ›, whose final standings the
// server froze. The board is as the API returns it: the top, then the viewer's neighbours
// (a gap row between them), the viewer's own line highlighted. A checkbox hides or shows the
// viewer on other people's boards (PUT /api/leaderboards/me).
import { h, fetchJSON } from './util.js'
import { plural, day } from './progress-format.js'

const PERIODS = { week: 'Week', month: 'Month', all: 'All time' }
const DAY_MS = 86_400_000

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10)
const dayMs = (iso) => Date.parse(iso + 'T00:00:00Z')

export function setupLeaderboard (panel, me) {
  const state = { scope: 'global', period: 'week', date: null, board: null }

  const scope = h('select', { id: 'board-scope' },
    h('option', { value: 'global' }, 'Everyone'),
    h('option', { value: 'cohort', disabled: !me.cohort }, me.cohort ? `My cohort (${me.cohort})` : 'My cohort (you are in none)'))
  const period = h('select', { id: 'board-window' },
    Object.entries(PERIODS).map(([value, label]) => h('option', { value }, label)))
  const prev = h('button', { class: 'btn small', type: 'button', id: 'board-prev', 'aria-label': 'Earlier period' }, '‹ Earlier')
  const next = h('button', { class: 'btn small', type: 'button', id: 'board-next', 'aria-label': 'Later period' }, 'Later ›')
  const range = h('span', { class: 'board-range', id: 'board-range', 'aria-live': 'polite' })
  const frozen = h('span', { class: 'badge frozen', id: 'board-frozen', hidden: true, title: 'This period is over: its standings are final and no longer change' }, 'Final standings · frozen')
  const rows = h('tbody')
  const table = h('table', { class: 'board', id: 'board', 'aria-describedby': 'board-range' },
    h('caption', { class: 'visually-hidden' }, 'Leaderboard'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'num' }, 'Rank'),
      h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col', class: 'num' }, 'XP'))),
    rows)
  const mine = h('p', { class: 'board-me', id: 'board-me', 'aria-live': 'polite' })
  const status = h('p', { class: 'status-line', id: 'board-status', 'aria-live': 'polite' })
  const visible = h('input', { type: 'checkbox', id: 'board-visible' })
  const visibleHint = h('span', { class: 'hint', id: 'board-visible-hint' })
  const visibleStatus = h('span', { class: 'status-line', id: 'board-visible-status', 'aria-live': 'polite' })

  panel.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'boards-title' },
    h('h2', { id: 'boards-title' }, 'Leaderboards'),
    h('div', { class: 'board-controls', role: 'group', 'aria-label': 'Which board' },
      h('label', { for: 'board-scope' }, 'Who'), scope,
      h('label', { for: 'board-window' }, 'Period'), period,
      prev, range, next, frozen),
    table, mine, status,
    h('div', { class: 'board-visibility' },
      h('label', { for: 'board-visible' }, visible, ' Show me on other people’s leaderboards'),
      visibleHint, visibleStatus)))

  let asked = 0 // only the answer to the latest request is shown (controls change quickly)
  async function load () {
    const ticket = ++asked
    const q = new URLSearchParams({ scope: state.scope, window: state.period })
    if (state.date && state.period !== 'all') q.set('date', state.date)
    status.textContent = 'Loading…'
    table.setAttribute('aria-busy', 'true')
    try {
      const board = await fetchJSON('/api/leaderboards?' + q)
      if (ticket !== asked) return
      state.board = board
      render(board)
      status.textContent = ''
    } catch (err) {
      if (ticket === asked) status.textContent = `Could not load the leaderboard: ${err.message}`
    } finally {
      if (ticket === asked) table.removeAttribute('aria-busy')
    }
  }

  function render (b) {
    const w = b.window
    const last = w.end ? isoDay(dayMs(w.end) - DAY_MS) : null
    range.textContent = w.period === 'all'
      ? 'All time'
      : `${w.period === 'week' ? 'Week' : 'Month'} of ${day(w.start)} – ${day(last)} (UTC)`
    frozen.hidden = !w.frozen
    table.dataset.frozen = String(Boolean(w.frozen))
    prev.hidden = next.hidden = w.period === 'all'
    next.disabled = !w.frozen // the current window is the latest there is
    const lines = []
    let previous = 0
    for (const e of b.entries) {
      if (previous && e.rank > previous + 1) {
        lines.push(h('tr', { class: 'gap', 'aria-hidden': 'true' }, h('td', { colspan: '3' }, '⋯')))
      }
      previous = e.rank
      lines.push(entryRow(e, b.me))
    }
    rows.replaceChildren(...lines)
    if (!b.entries.length) rows.append(h('tr', { class: 'empty' }, h('td', { colspan: '3' }, 'No points in this period yet.')))
    mine.textContent = summary(b)
    visible.checked = Boolean(b.me.visible)
  }

  function entryRow (e, meLine) {
    const hidden = e.me && !meLine.visible
    return h('tr', {
      class: 'board-row' + (e.me ? ' mine' : ''),
      dataset: { rank: String(e.rank), user: e.username, me: String(Boolean(e.me)) },
      'aria-current': e.me ? 'true' : null
    },
    h('td', { class: 'num rank' }, `#${e.rank}`),
    h('td', { class: 'who' }, e.name || e.username,
      e.me ? h('span', { class: 'badge you' }, 'you') : null,
      hidden ? h('span', { class: 'badge subtle hidden-me', title: 'Others do not see this line' }, 'hidden from others') : null),
    h('td', { class: 'num' }, String(e.points)))
  }

  function summary (b) {
    const where = b.scope === 'cohort' ? `in cohort ${b.cohort}` : 'overall'
    if (b.me.rank == null) return `You have no points ${b.window.period === 'all' ? 'yet' : 'in this period'}.`
    const points = plural(b.me.points, 'point')
    if (!b.me.visible) return `You are hidden: others do not see you. You would stand #${b.me.rank} ${where} with ${points}.`
    const of = b.ranked != null ? ` of ${b.ranked}` : ''
    return `You are #${b.me.rank}${of} ${where} with ${points}.`
  }

  scope.addEventListener('change', () => { state.scope = scope.value; load() })
  period.addEventListener('change', () => { state.period = period.value; state.date = null; load() })
  prev.addEventListener('click', () => {
    if (!state.board || !state.board.window.start) return
    state.date = isoDay(dayMs(state.board.window.start) - DAY_MS)
    load()
  })
  next.addEventListener('click', () => {
    const w = state.board && state.board.window
    if (!w || !w.end) return
    state.date = w.end // the window after a closed one (the current one answers unfrozen)
    load()
  })

  visible.addEventListener('change', async () => {
    const want = visible.checked
    visible.disabled = true
    visibleStatus.textContent = 'Saving…'
    try {
      const answer = await fetchJSON('/api/leaderboards/me', { method: 'PUT', body: JSON.stringify({ visible: want }) })
      visibleStatus.textContent = answer.visible ? 'Others see you on their boards.' : 'You are hidden from other people’s boards.'
      visibleHint.textContent = ''
      await load()
    } catch (err) {
      visible.checked = !want
      visibleStatus.textContent = `Not saved: ${err.message}`
    } finally {
      visible.disabled = false
    }
  })

  async function start () {
    try {
      const pref = await fetchJSON('/api/leaderboards/me')
      visible.checked = Boolean(pref.visible)
      if (pref.choice == null) visibleHint.textContent = pref.visible ? ' (as everyone by default)' : ' (hidden by default in your cohort)'
    } catch {
      // the board itself says whether the person is shown
    }
    await load()
  }

  return { start }
}
