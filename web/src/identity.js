// A person's colour (caret, avatar): it follows their stable user id, so it is the same
// in every room and on every device.
const COLORS = [
  ['#d7263d', '#d7263d33'], ['#1b998b', '#1b998b33'], ['#2e86de', '#2e86de33'],
  ['#f46036', '#f4603633'], ['#8e44ad', '#8e44ad33'], ['#c0392b', '#c0392b33'],
  ['#16a085', '#16a08533'], ['#d35400', '#d3540033'], ['#2c3e50', '#2c3e5033'],
  ['#b8860b', '#b8860b33'], ['#0f7b6c', '#0f7b6c33'], ['#6c5ce7', '#6c5ce733']
]

export function userColor (key) {
  let hash = 0
  for (const ch of key) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  const [color, light] = COLORS[hash % COLORS.length]
  return { color, light }
}
