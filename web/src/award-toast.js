// Toasts for `progress.award` on the room channel: someone in the room passed an exercise or
// earned an achievement (told by the server after the ledger recorded it). Stacked in one
// polite live region, so a screen reader reads each as it comes without interrupting; each
// goes away by itself after a few seconds (held while the pointer or focus is on it), or
// with its ✕.
import { h } from './util.js'

const SHOW_MS = 7000
const MAX_SHOWN = 4

/** The sentence a toast says: "You passed “Sum a list” · +20 XP". */
export function awardText (award, myUuid) {
  const mine = award.user === myUuid
  const who = mine ? 'You' : String(award.name || 'Someone')
  const title = `“${String(award.title || '')}”`
  const what = award.kind === 'achievement'
    ? `${who} earned the achievement ${title}`
    : `${who} passed ${title}`
  const xp = Number(award.xp) > 0 ? ` · +${Number(award.xp)} XP` : ''
  return what + xp
}

/** Returns {message(msg)}: true when the message was a progress.award (and shown). */
export function setupAwardToasts (me) {
  const region = h('div', {
    class: 'award-toasts',
    id: 'award-toasts',
    role: 'status',
    'aria-live': 'polite',
    'aria-label': 'Progress in this room'
  })
  document.body.append(region)

  function dismiss (toast) {
    clearTimeout(toast.timer)
    toast.remove()
  }

  function show (award) {
    const mine = award.user === me.uuid
    const achievement = award.kind === 'achievement'
    const toast = h('div', {
      class: 'award-toast' + (mine ? ' mine' : ''),
      dataset: { kind: achievement ? 'achievement' : 'exercise-passed', user: String(award.user || '') }
    },
    h('span', { class: 'award-icon', 'aria-hidden': 'true' }, achievement ? '🏆' : '✅'),
    h('span', { class: 'award-text' }, awardText(award, me.uuid)),
    h('button', { class: 'icon-btn award-close', type: 'button', 'aria-label': 'Dismiss', onclick: () => dismiss(toast) }, '✕'))
    const arm = () => { clearTimeout(toast.timer); toast.timer = setTimeout(() => dismiss(toast), SHOW_MS) }
    const hold = () => clearTimeout(toast.timer)
    toast.addEventListener('mouseenter', hold)
    toast.addEventListener('mouseleave', arm)
    toast.addEventListener('focusin', hold)
    toast.addEventListener('focusout', arm)
    region.append(toast)
    while (region.children.length > MAX_SHOWN) dismiss(region.firstElementChild)
    arm()
  }

  return {
    message (msg) {
      if (msg.type !== 'progress.award') return false
      show(msg)
      return true
    }
  }
}
