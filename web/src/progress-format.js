// Small formatting shared by the progress, achievements and leaderboard views, so that the
// same number reads the same way in each of them.
import { h } from './util.js'

/** 0.4 -> "40%", 0.3333 -> "33%", 0.005 -> "0.5%" (a share that is not zero never reads 0%). */
export function percent (share) {
  if (share == null || !Number.isFinite(share)) return '–'
  const p = share * 100
  if (p > 0 && p < 1) return `${Math.max(0.1, Math.round(p * 10) / 10)}%`
  return `${Math.round(p)}%`
}

export const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`

/** An ISO date or instant as a local date: "26 Nov 2026". */
export function day (iso) {
  if (!iso) return ''
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(iso) ? iso + 'T00:00:00Z' : iso)
  if (Number.isNaN(t)) return String(iso)
  const opts = { day: 'numeric', month: 'short', year: 'numeric' }
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) opts.timeZone = 'UTC' // a calendar day, not an instant
  return new Date(t).toLocaleDateString(undefined, opts)
}

/** A labelled bar: <progress> for assistive technology, with the numbers beside it. */
export function bar (value, max, label, text) {
  return h('span', { class: 'bar' },
    h('progress', { value: String(Math.min(value, max)), max: String(max), 'aria-label': label }),
    h('span', { class: 'bar-text' }, text))
}

/** A card-sized message: nothing yet, or why something could not be shown. */
export function note (text, cls = 'status-line') {
  return h('p', { class: cls }, text)
}
