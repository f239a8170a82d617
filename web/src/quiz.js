// A walkthrough step's question: choices as buttons (or a free-text answer), the person's
// own result (`quiz.result`), and for staff who can edit the live tally (`quiz.tally`).
import { h } from './util.js'
import { inline } from './markdown.js'

/** host: the element to fill; send(message) → bool; staff(): sees the tally. */
export function setupQuiz ({ host, send, staff }) {
  let demo = null
  let step = null // {id, question}
  const results = new Map() // `${demo}/${step}` → {correct, choice, text}
  const tallies = new Map() // `${demo}/${step}` → tally
  const key = (d, s) => `${d}/${s}`

  function answer (payload) {
    if (!step) return
    if (!send({ type: 'quiz.answer', step: step.id, ...payload })) return
    results.set(key(demo, step.id), { pending: true, ...payload })
    render()
  }

  function render () {
    const q = step && step.question
    host.hidden = !q
    if (!q) { host.replaceChildren(); return }
    const mine = results.get(key(demo, step.id))
    const choices = Array.isArray(q.choices) ? q.choices : null
    let body
    if (choices) {
      body = h('div', { class: 'quiz-choices', role: 'group', 'aria-label': 'Choices' },
        choices.map((c, i) => h('button', {
          class: 'btn quiz-choice' + (mine && mine.choice === i ? ' chosen' : ''),
          type: 'button',
          dataset: { choice: String(i) },
          'aria-pressed': String(Boolean(mine && mine.choice === i)),
          onclick: () => answer({ choice: i })
        }, String(c))))
    } else {
      const input = h('input', { class: 'quiz-text', 'aria-label': 'Your answer', maxlength: '2000', placeholder: 'Your answer', value: mine && mine.text ? mine.text : '' })
      body = h('form', {
        class: 'quiz-free',
        onsubmit: (ev) => { ev.preventDefault(); if (input.value.trim()) answer({ text: input.value.trim() }) }
      }, input, h('button', { class: 'btn small', type: 'submit' }, 'Answer'))
    }
    let result = null
    if (mine) {
      const text = mine.pending
        ? 'Answer sent…'
        : mine.correct === true ? '✓ Right!' : mine.correct === false ? '✗ Not quite: try again' : '✓ Answer recorded'
      result = h('p', { class: 'quiz-result', role: 'status', dataset: { correct: String(mine.correct ?? (mine.pending ? 'pending' : 'null')) } }, text)
    }
    let tally = null
    const t = tallies.get(key(demo, step.id))
    if (staff() && t) {
      tally = h('div', { class: 'quiz-tally', 'aria-label': 'Answers so far' },
        h('p', { class: 'quiz-tally-total' }, `${t.total} answer${t.total === 1 ? '' : 's'} · ${t.correct} right`),
        choices && h('ul', { class: 'quiz-bars' }, choices.map((c, i) => {
          const n = (t.counts || [])[i] || 0
          const pct = t.total ? Math.round(n / t.total * 100) : 0
          return h('li', { class: 'quiz-bar', dataset: { choice: String(i), count: String(n) } },
            h('span', { class: 'quiz-bar-label' }, `${c}${q.answer === i || q.answer === c ? ' ✓' : ''}`),
            h('span', { class: 'quiz-bar-fill', style: `--pct: ${pct}%` }),
            h('span', { class: 'quiz-bar-count' }, String(n)))
        })))
    }
    host.replaceChildren(...[
      h('h3', { class: 'demo-subtitle' }, 'Question'),
      h('p', { class: 'quiz-prompt' }, ...inline(String(q.prompt || ''))),
      body, result, tally].filter(Boolean))
  }

  /** The server refused our answer (the notice says why): it is not pending any more. */
  function refused () {
    if (!step) return
    const k = key(demo, step.id)
    if (results.get(k)?.pending) results.delete(k)
    render()
  }

  function show (demoId, s) {
    demo = demoId
    if (step === s) return
    step = s
    render()
  }

  function message (msg) {
    if (msg.type === 'quiz.result') {
      if (typeof msg.step !== 'string') return true
      const k = key(demo, msg.step)
      const before = results.get(k) || {}
      results.set(k, { ...before, pending: false, correct: msg.correct ?? null })
    } else if (msg.type === 'quiz.tally') {
      if (typeof msg.step !== 'string') return true
      tallies.set(key(msg.demo || demo, msg.step), msg)
    } else {
      return false
    }
    render()
    return true
  }

  render()
  return { show, message, render, refused }
}
