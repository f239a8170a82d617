// The progress view: XP and streak, courses → modules → lessons with their status, the
// exercises tried with their best score, and the points ledger (newest first, paged), where
// a row the daily cap cut says what was wanted and what was granted.
import { h, fetchJSON } from './util.js'
import { percent, plural, day, bar, note } from './progress-format.js'

const LEDGER_PAGE = 20
const STATUS = { completed: 'Completed', in_progress: 'In progress', not_started: 'Not started' }
const TYPES = {
  exercise: 'Exercise',
  lesson: 'Lesson',
  achievement: 'Achievement',
  demo: 'Demo',
  pairing: 'Pairing',
  question: 'Question',
  answer: 'Answer'
}

/** Render {progress, points} (the API's answers) into `panel`; `user` is the API's user path part. */
export function renderProgress (panel, user, progress, points) {
  panel.replaceChildren(
    stats(progress),
    courses(progress),
    ledger(user, points))
}

function stats (p) {
  const s = p.streak || {}
  const passed = (p.exercises || []).filter((e) => e.passed).length
  return h('section', { class: 'card stats', 'aria-label': 'Totals' },
    stat('xp', 'XP', String(p.xp ?? 0), 'all points granted, after daily caps'),
    stat('streak-current', 'Current streak', plural(s.current || 0, 'day'),
      s.last_day ? `last active ${day(s.last_day)}` : 'no activity yet'),
    stat('streak-longest', 'Longest streak', plural(s.longest || 0, 'day'), ''),
    stat('grace-days', 'Grace days', String(s.grace_days || 0),
      'a missed day is covered by one; one earned per 7 days in a row'),
    stat('exercises-passed', 'Exercises passed', String(passed),
      `of ${plural((p.exercises || []).length, 'exercise')} tried`))
}

function stat (key, label, value, hint) {
  return h('div', { class: 'stat', dataset: { stat: key } },
    h('span', { class: 'stat-label' }, label),
    h('strong', { class: 'stat-value' }, value),
    hint ? h('span', { class: 'stat-hint' }, hint) : null)
}

/** course -> module -> lesson, from the lessons and exercises the person touched. */
function tree (p) {
  const courses = new Map()
  const lessonNode = (id, fields) => {
    const parts = id.split('.')
    const course = fields.course || parts[0]
    const module = fields.module || parts.slice(0, 2).join('.')
    if (!courses.has(course)) courses.set(course, new Map())
    const modules = courses.get(course)
    if (!modules.has(module)) modules.set(module, new Map())
    const lessons = modules.get(module)
    if (!lessons.has(id)) lessons.set(id, { lesson: id, title: id, status: 'not_started', percentage: 0, exercises: [] })
    const node = lessons.get(id)
    Object.assign(node, fields)
    return node
  }
  for (const l of p.lessons || []) lessonNode(l.lesson, { ...l, exercises: [] })
  for (const x of p.exercises || []) lessonNode(x.lesson, {}).exercises.push(x)
  return courses
}

const shortId = (id, parent) => (id.startsWith(parent + '.') ? id.slice(parent.length + 1) : id)

function courses (p) {
  const t = tree(p)
  const body = t.size === 0
    ? [note('Nothing started yet: open a lesson or submit an exercise, and it shows here.')]
    : [...t].map(([course, modules]) => h('section', { class: 'course', dataset: { course } },
        h('h3', { class: 'course-title' }, `Course ${course}`),
        [...modules].map(([module, lessons]) => h('section', { class: 'module', dataset: { module } },
          h('h4', { class: 'module-title' }, `Module ${shortId(module, course)}`,
            h('span', { class: 'module-summary' }, moduleSummary([...lessons.values()]))),
          h('ul', { class: 'lesson-list' }, [...lessons.values()].map(lessonItem))))))
  return h('section', { class: 'card', 'aria-labelledby': 'courses-title' },
    h('h2', { id: 'courses-title' }, 'Courses'), body)
}

function moduleSummary (lessons) {
  const done = lessons.filter((l) => l.status === 'completed').length
  return ` · ${done} of ${plural(lessons.length, 'lesson')} completed`
}

function lessonItem (l) {
  const pct = Math.round(Number(l.percentage) || 0)
  return h('li', { class: 'lesson', dataset: { lesson: l.lesson, status: l.status } },
    h('div', { class: 'lesson-head' },
      h('span', { class: 'lesson-title' }, l.title),
      l.kind ? h('span', { class: 'badge subtle' }, l.kind) : null,
      h('span', { class: 'lesson-status', dataset: { status: l.status } }, STATUS[l.status] || l.status),
      bar(pct, 100, `${l.title}: ${pct}%`, `${pct}%`),
      l.completed_at ? h('span', { class: 'lesson-when' }, `completed ${day(l.completed_at)}`) : null),
    l.exercises.length
      ? h('ul', { class: 'exercise-list', 'aria-label': `Exercises of ${l.title}` }, l.exercises.map(exerciseItem))
      : null)
}

function exerciseItem (x) {
  const facts = [
    `best score ${percent(x.best_score)}`,
    plural(x.attempts, 'attempt'),
    `${x.xp} of ${x.points} XP`
  ]
  if (x.passed_first_try) facts.push('first try')
  if (x.solution_viewed) facts.push('solution viewed (XP halved)')
  return h('li', { class: 'exercise', dataset: { exercise: x.exercise, passed: String(Boolean(x.passed)) } },
    h('span', { class: 'exercise-mark', 'aria-hidden': 'true' }, x.passed ? '✓' : '•'),
    h('span', { class: 'exercise-title' }, x.title),
    h('span', { class: 'exercise-state' }, x.passed ? `passed ${day(x.first_passed_at)}` : 'not passed yet'),
    h('span', { class: 'exercise-facts' }, facts.join(' · ')))
}

function ledger (user, first) {
  const rows = h('tbody')
  const more = h('button', { class: 'btn small', type: 'button', hidden: true }, 'Show older')
  const status = h('p', { class: 'status-line', 'aria-live': 'polite' })
  let next = null
  function add (page) {
    rows.append(...page.entries.map(entryRow))
    next = page.next
    more.hidden = next == null
    if (!rows.children.length) status.textContent = 'No points yet.'
  }
  more.addEventListener('click', async () => {
    more.disabled = true
    try {
      add(await fetchJSON(`/api/users/${encodeURIComponent(user)}/points?limit=${LEDGER_PAGE}&before=${next}`))
      status.textContent = ''
    } catch (err) {
      status.textContent = `Could not load older points: ${err.message}`
    } finally {
      more.disabled = false
    }
  })
  add(first)
  return h('section', { class: 'card', 'aria-labelledby': 'ledger-title' },
    h('h2', { id: 'ledger-title' }, 'Points'),
    h('p', { class: 'hint' }, 'Every point granted, newest first. A daily cap per kind of activity keeps points fair: a row it cut shows what was wanted and what was granted.'),
    h('table', { class: 'ledger', id: 'ledger' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Day'),
        h('th', { scope: 'col' }, 'Kind'),
        h('th', { scope: 'col' }, 'Reason'),
        h('th', { scope: 'col', class: 'num' }, 'XP'))),
      rows),
    more, status)
}

export const LEDGER_FIRST_PAGE = LEDGER_PAGE

function entryRow (e) {
  const capped = e.points < e.wanted
  const reversal = e.reverses != null
  return h('tr', { class: 'entry' + (capped ? ' capped' : ''), dataset: { entry: String(e.id), type: e.type, capped: String(capped) } },
    h('td', {}, day(e.day)),
    h('td', {}, TYPES[e.type] || e.type),
    h('td', {}, e.reason + (reversal ? ' (correction)' : '')),
    h('td', { class: 'num' },
      capped
        ? h('span', { class: 'capped-points', title: 'The daily cap for this kind of activity was reached' },
          `+${e.points} of ${e.wanted} wanted · daily cap`)
        : `${e.points > 0 ? '+' : ''}${e.points}`))
}
