// The achievements view: the whole catalogue (GET /api/users/<id>/achievements), the earned
// ones first with the day they were earned, the others with a bar per condition (value /
// target); each with its rarity label and the real share of people who hold it, overall and
// in the person's cohort.
import { h } from './util.js'
import { percent, day, bar, note } from './progress-format.js'

const RARITY = ['common', 'rare', 'epic', 'legendary']
const METRICS = {
  exercises_passed: 'exercises passed',
  first_try_passes: 'exercises passed at the first try',
  lessons_completed: 'lessons completed',
  demos_watched: 'demos watched',
  distinct_partners: 'different partners',
  questions_asked: 'questions asked',
  questions_answered: 'questions answered',
  streak_days: 'days in a row'
}

export function renderAchievements (panel, body, { self }) {
  const items = [...(body.achievements || [])].sort((a, b) =>
    Number(b.awarded) - Number(a.awarded) ||
    (a.awarded ? String(b.awarded_at).localeCompare(String(a.awarded_at)) : b.fraction - a.fraction) ||
    a.name.localeCompare(b.name))
  const earned = items.filter((a) => a.awarded).length
  panel.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'achievements-title' },
    h('h2', { id: 'achievements-title' }, 'Achievements'),
    h('p', { class: 'hint', id: 'achievements-summary' },
      `${self ? 'You have' : 'They have'} earned ${earned} of ${items.length}. ` +
      'The share says how many people really hold each one' + (body.cohort ? `, overall and in cohort ${body.cohort}.` : '.')),
    items.length
      ? h('ul', { class: 'achievement-list' }, items.map(achievementItem))
      : note('No achievements are set up on this server yet.')))
}

function achievementItem (a) {
  const rarity = RARITY.includes(a.rarity) ? a.rarity : 'common'
  const overall = a.held && a.held.overall
  const cohort = a.held && a.held.cohort
  return h('li', {
    class: 'achievement' + (a.awarded ? ' earned' : ''),
    dataset: { achievement: a.id, rarity, earned: String(Boolean(a.awarded)) },
    'aria-label': `${a.name}: ${a.awarded ? 'earned' : 'not earned yet'}, ${rarity}`
  },
  h('span', { class: 'achievement-icon', 'aria-hidden': 'true' }, a.icon || '🏅'),
  h('div', { class: 'achievement-body' },
    h('div', { class: 'achievement-head' },
      h('strong', { class: 'achievement-name' }, a.name),
      h('span', { class: `rarity rarity-${rarity}`, title: 'Rarity' }, rarity),
      h('span', { class: 'badge subtle' }, `+${a.xp} XP`),
      a.retired ? h('span', { class: 'badge subtle' }, 'retired') : null),
    a.description ? h('p', { class: 'achievement-description' }, a.description) : null,
    a.awarded
      ? h('p', { class: 'achievement-earned' }, `✓ Earned ${day(a.awarded_at)}`)
      : h('div', { class: 'achievement-progress' },
        (a.progress || []).map((c) => {
          const what = METRICS[c.metric] || c.metric.replace(/_/g, ' ')
          return h('div', { class: 'condition', dataset: { metric: c.metric } },
            bar(c.value, c.target, `${a.name}: ${c.value} of ${c.target} ${what}`,
              `${Math.min(c.value, c.target)} / ${c.target} ${what}`))
        })),
    h('p', { class: 'achievement-held' },
      share('Held by', overall, 'people'),
      cohort ? share(' · in cohort ' + cohort.cohort + ':', cohort, '') : null)))
}

function share (label, s, noun) {
  if (!s) return null
  return h('span', { class: 'held', dataset: { holders: String(s.holders), of: String(s.of) } },
    `${label} ${percent(s.share)} (${s.holders} of ${s.of}${noun ? ' ' + noun : ''})`)
}
