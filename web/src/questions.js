// Questions about the loaded demo: anyone asks (attached to the step or time on screen),
// everyone sees the list (unanswered first, then most votes, then oldest), upvotes others'
// questions, and staff who can edit mark them answered. Anyone answers someone else's question;
// the asker (or staff) accepts one answer, once. The server keeps the questions and answers and
// sends `questions` (all, on joining and on a load) and `question` (one, as it now stands).
import { h } from './util.js'

const MAX_TEXT = 2000
const MAX_ANSWERS = 20

function ago (ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

/**
 * host: the element to fill; send(message) → bool; staff(): may mark answered;
 * where(): {step?, at?, label} the place on screen; serverNow(): server ms.
 */
export function setupQuestions ({ host, send, staff, where, serverNow }) {
  const items = new Map() // id → question
  const voted = new Set()
  const drafts = new Map() // question id → the answer being typed (kept across renders)
  let demo = null
  let me = '' // this person's user id (from the server's hello)

  const input = h('textarea', {
    id: 'question-text', rows: '2', maxlength: String(MAX_TEXT), placeholder: 'Ask about what is on screen…', 'aria-label': 'Your question'
  })
  const hint = h('span', { class: 'question-where' })
  const form = h('form', { class: 'question-form', 'aria-label': 'Ask a question' },
    input,
    h('div', { class: 'question-form-row' }, hint, h('button', { class: 'btn small primary', type: 'submit', id: 'question-ask' }, 'Ask')))
  const list = h('ol', { class: 'question-list', id: 'question-list', 'aria-label': 'Questions' })
  const count = h('span', { class: 'count' })
  host.replaceChildren(h('h3', { class: 'demo-subtitle' }, 'Questions ', count), form, list)

  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const text = input.value.trim()
    if (!text) return
    const place = where()
    const msg = { type: 'question.ask', text }
    if (place.step != null) msg.step = place.step
    if (place.at != null) msg.at = place.at
    if (send(msg)) input.value = ''
  })
  input.addEventListener('focus', () => placeHint())
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit() }
  })

  function sorted () {
    return [...items.values()].sort((a, b) =>
      (a.answered - b.answered) || (b.votes - a.votes) || (a.created - b.created) || (a.id - b.id))
  }

  function placeHint () {
    hint.textContent = demo ? `About ${where().label}` : 'No demo loaded'
  }

  function render () {
    // an answer being typed keeps its focus and caret across the list being redrawn
    const active = document.activeElement
    const typing = active && active.classList && active.classList.contains('answer-input')
      ? { id: active.closest('li.question')?.dataset.id, start: active.selectionStart, end: active.selectionEnd }
      : null
    draw()
    if (typing && typing.id) {
      const field = list.querySelector(`li.question[data-id="${typing.id}"] .answer-input`)
      if (field) { field.focus(); field.setSelectionRange(typing.start, typing.end) }
    }
  }

  function draw () {
    placeHint()
    const now = serverNow()
    const all = sorted()
    const open = all.filter((q) => !q.answered).length
    count.textContent = all.length ? `(${open} open)` : ''
    list.replaceChildren(...all.map((q) => {
      const mine = voted.has(q.id)
      return h('li', { class: 'question' + (q.answered ? ' answered' : ''), dataset: { id: String(q.id), answered: String(q.answered) } },
        h('button', {
          class: 'vote' + (mine ? ' voted' : ''),
          type: 'button',
          'aria-pressed': String(mine),
          'aria-label': `${mine ? 'Withdraw your vote' : 'Upvote'} (${q.votes} vote${q.votes === 1 ? '' : 's'})`,
          title: mine ? 'Withdraw your vote' : 'Upvote',
          onclick: () => vote(q, !mine)
        }, '▲ ', h('span', { class: 'votes' }, String(q.votes))),
        h('div', { class: 'question-body' },
          h('p', { class: 'question-text' }, q.text),
          h('p', { class: 'question-meta' },
            `${q.by || 'Someone'} · ${ago(now - q.created)}`,
            q.step ? ` · step ${q.step}` : q.at != null ? ` · at ${formatSeconds(q.at)}` : '',
            q.answered ? ' · answered' : ''),
          answersOf(q)),
        staff() && h('button', {
          class: 'btn small mark-answered', type: 'button', 'aria-pressed': String(q.answered),
          onclick: () => send({ type: 'question.answered', id: q.id, answered: !q.answered })
        }, q.answered ? 'Reopen' : 'Answered'))
    }))
  }

  function answersOf (q) {
    const accepted = q.answers.some((a) => a.accepted)
    const mayAccept = !accepted && (staff() || (me !== '' && me === q.user))
    const items = q.answers.map((a) => h('li', { class: 'answer' + (a.accepted ? ' accepted' : ''), dataset: { id: String(a.id), accepted: String(a.accepted) } },
      h('p', { class: 'answer-text', style: 'margin:0;overflow-wrap:anywhere;white-space:pre-wrap' }, a.accepted ? '✓ ' : '', a.text),
      h('p', { class: 'question-meta' }, `${a.by || 'Someone'}`, a.accepted ? ' · accepted' : ''),
      mayAccept && a.user !== q.user && h('button', {
        class: 'btn small accept-answer', type: 'button',
        onclick: () => send({ type: 'question.accept', id: q.id, answer: a.id })
      }, 'Accept')))
    const box = me !== q.user && q.answers.length < MAX_ANSWERS && answerForm(q)
    if (!items.length && !box) return null
    return h('div', { class: 'answers', style: 'margin-top:4px' },
      items.length ? h('ol', { class: 'answer-list', 'aria-label': 'Answers', style: 'margin:0;padding-left:1.2em' }, ...items) : null,
      box)
  }

  function answerForm (q) {
    const field = h('input', {
      class: 'answer-input', type: 'text', style: 'flex:1;min-width:0', maxlength: String(MAX_TEXT), placeholder: 'Answer…', 'aria-label': 'Your answer', value: drafts.get(q.id) || ''
    })
    field.addEventListener('input', () => drafts.set(q.id, field.value))
    const form = h('form', { class: 'answer-form', 'aria-label': 'Answer this question', style: 'display:flex;gap:4px;margin-top:4px' },
      field, h('button', { class: 'btn small', type: 'submit' }, 'Answer'))
    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const text = field.value.trim()
      if (!text) return
      if (send({ type: 'question.answer', id: q.id, text })) drafts.delete(q.id)
    })
    return form
  }

  function vote (q, up) {
    if (!send({ type: 'question.vote', id: q.id, up })) return
    if (up) voted.add(q.id)
    else voted.delete(q.id)
    render()
  }

  function upsert (q) {
    if (typeof q.id !== 'number') return
    items.set(q.id, {
      id: q.id,
      text: String(q.text || ''),
      by: String(q.by || ''),
      votes: Number(q.votes) || 0,
      answered: Boolean(q.answered),
      created: Number(q.created) || 0,
      step: typeof q.step === 'string' ? q.step : null,
      at: typeof q.at === 'number' ? q.at : null,
      user: String(q.user || ''),
      answers: (Array.isArray(q.answers) ? q.answers : []).map((a) => ({
        id: Number(a.id),
        text: String(a.text || ''),
        by: String(a.by || ''),
        user: String(a.user || ''),
        accepted: Boolean(a.accepted)
      }))
    })
  }

  /** A room message: true when it was about questions. */
  function message (msg) {
    if (msg.type === 'hello') {
      me = String(msg.user || '')
      return false // the page's other parts want it too
    }
    if (msg.type === 'questions') {
      items.clear()
      voted.clear()
      demo = msg.demo || null
      for (const q of msg.items || []) upsert(q)
      for (const id of msg.voted || []) voted.add(id)
    } else if (msg.type === 'question') {
      if (demo !== null && msg.demo && msg.demo !== demo) return true
      upsert(msg)
    } else {
      return false
    }
    render()
    return true
  }

  /** The loaded demo changed (or was unloaded). */
  function setDemo (id) {
    if (id === demo) return
    demo = id
    items.clear()
    voted.clear()
    render()
  }

  const ticker = setInterval(() => { if (items.size) render() }, 30_000)
  render()
  return { message, setDemo, render, placeHint, items: () => sorted(), stop: () => clearInterval(ticker) }
}

export function formatSeconds (s) {
  const total = Math.max(0, Math.floor(s))
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`
}
