// A small, safe Markdown subset for a demo's narration: paragraphs, bulleted and numbered
// lists, `code`, **bold** and *emphasis*. Built as DOM nodes from text: no HTML in the
// narration is ever interpreted (it shows as typed), and nothing goes through innerHTML.

const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*\n]+?)\*\*|\*([^*\s][^*\n]*?)\*/g

/** The inline nodes of one stretch of text. */
export function inline (text) {
  const out = []
  let last = 0
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)))
    let el
    if (m[2] !== undefined) {
      el = document.createElement('code')
      el.textContent = m[2].trim() || m[2]
    } else if (m[3] !== undefined) {
      el = document.createElement('strong')
      el.append(...inline(m[3]))
    } else {
      el = document.createElement('em')
      el.append(...inline(m[4]))
    }
    out.push(el)
    last = m.index + m[0].length
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)))
  return out
}

const BULLET = /^\s{0,3}[-*+]\s+(.*)$/
const NUMBER = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/

/** A fragment for `source` (Markdown), safe to append anywhere. */
export function renderMarkdown (source) {
  const frag = document.createDocumentFragment()
  const lines = String(source || '').replace(/\r\n?/g, '\n').split('\n')
  let para = []
  let list = null // {el, kind}
  const flushPara = () => {
    if (para.length === 0) return
    const p = document.createElement('p')
    p.append(...inline(para.join(' ')))
    frag.append(p)
    para = []
  }
  for (const line of lines) {
    const bullet = BULLET.exec(line)
    const number = bullet ? null : NUMBER.exec(line)
    if (bullet || number) {
      flushPara()
      const kind = bullet ? 'ul' : 'ol'
      if (!list || list.kind !== kind) {
        list = { kind, el: document.createElement(kind) }
        frag.append(list.el)
      }
      const li = document.createElement('li')
      li.append(...inline((bullet || number)[1]))
      list.el.append(li)
    } else if (line.trim() === '') {
      flushPara()
      list = null
    } else if (list && /^\s+\S/.test(line)) {
      const li = list.el.lastElementChild // a list item's continuation line
      li.append(' ', ...inline(line.trim()))
    } else {
      list = null
      para.push(line.trim())
    }
  }
  flushPara()
  return frag
}
