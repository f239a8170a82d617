// Who am I: a name asked once and remembered, and a colour that follows the name.
import { $ } from './util.js'

const KEY = 'opencode-live.name'
const COLORS = [
  ['#d7263d', '#d7263d33'], ['#1b998b', '#1b998b33'], ['#2e86de', '#2e86de33'],
  ['#f46036', '#f4603633'], ['#8e44ad', '#8e44ad33'], ['#c0392b', '#c0392b33'],
  ['#16a085', '#16a08533'], ['#d35400', '#d3540033'], ['#2c3e50', '#2c3e5033'],
  ['#b8860b', '#b8860b33'], ['#0f7b6c', '#0f7b6c33'], ['#6c5ce7', '#6c5ce733']
]

export function userColor (name) {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  const [color, light] = COLORS[hash % COLORS.length]
  return { color, light }
}

function stored () {
  try { return localStorage.getItem(KEY) } catch { return null }
}

/** The remembered name, or ask for one in the name dialog. */
export function askName ({ force = false } = {}) {
  const known = stored()
  if (known && !force) return Promise.resolve(known)
  const dialog = $('#name-dialog')
  const form = $('#name-form')
  const input = $('#name-input')
  input.value = known || ''
  return new Promise((resolve) => {
    const done = (ev) => {
      ev.preventDefault()
      const name = input.value.trim().slice(0, 40)
      if (!name) { input.focus(); return }
      try { localStorage.setItem(KEY, name) } catch { /* private mode: ask again next time */ }
      form.removeEventListener('submit', done)
      dialog.close()
      resolve(name)
    }
    form.addEventListener('submit', done)
    dialog.addEventListener('cancel', (ev) => {
      if (!known) { ev.preventDefault(); return }
      form.removeEventListener('submit', done)
      resolve(known)
    }, { once: true })
    dialog.showModal()
    input.focus()
  })
}
