// The demo's timeline under the transport: a walkthrough's steps as buttons, or a recording's
// track with its chapters (markers); a click (or ← → on the track) asks to seek there.
import { h } from './util.js'
import { formatSeconds } from './questions.js'

/** m:ss.t */
export function clock (s) {
  const tenths = Math.max(0, Math.floor(s * 10))
  return `${formatSeconds(tenths / 10)}.${tenths % 10}`
}

/** seek({position} | {marker} | {step}); shown() is the position on screen now. */
export function createTimeline ({ seek, shown }) {
  let demo = null
  const element = h('div', { class: 'demo-timeline', id: 'demo-timeline' })
  const fill = h('div', { class: 'demo-fill' })
  const track = h('div', {
    class: 'demo-track', id: 'demo-track', role: 'slider', tabindex: '0', 'aria-label': 'Position in the demo', 'aria-valuemin': '0'
  }, fill)
  track.addEventListener('click', (ev) => {
    if (!demo || demo.kind !== 'recording') return
    const box = track.getBoundingClientRect()
    const fraction = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width))
    seek({ position: Math.round(fraction * demo.duration * 100) / 100 })
  })
  track.addEventListener('keydown', (ev) => {
    if (!demo || demo.kind !== 'recording') return
    const delta = ev.key === 'ArrowRight' ? 5 : ev.key === 'ArrowLeft' ? -5 : 0
    if (!delta) return
    ev.preventDefault()
    seek({ position: Math.min(demo.duration, Math.max(0, Math.round((shown() + delta) * 100) / 100)) })
  })

  /** A newly opened demo ({kind, steps, recording, duration}), or null. */
  function show (d) {
    demo = d
    if (!d) { element.replaceChildren(); return }
    if (d.kind === 'walkthrough') {
      element.replaceChildren(h('ol', { class: 'demo-steps', 'aria-label': 'Steps' }, d.steps.map((s, i) => h('li', {},
        h('button', {
          class: 'demo-step', type: 'button', dataset: { index: String(i), step: s.id }, title: s.title, onclick: () => seek({ step: s.id })
        }, h('span', { class: 'demo-step-n' }, String(i + 1)), ' ', s.title)))))
      return
    }
    const length = d.duration || 1
    for (const el of track.querySelectorAll('.demo-marker')) el.remove()
    track.append(...d.recording.markers.map((m) => h('button', {
      class: 'demo-marker',
      type: 'button',
      style: `left: ${(m.t / length) * 100}%`,
      dataset: { label: m.label, t: String(m.t) },
      title: `${m.label} (${clock(m.t)})`,
      'aria-label': `Chapter: ${m.label}`,
      onclick: (ev) => { ev.stopPropagation(); seek({ marker: m.label }) }
    }, h('span', { class: 'demo-marker-label' }, m.label))))
    track.setAttribute('aria-valuemax', String(d.duration))
    element.replaceChildren(track)
  }

  /** The position on screen: the track's fill, or the current step. */
  function position (p) {
    if (!demo) return
    if (demo.kind === 'recording') {
      fill.style.width = `${demo.duration ? Math.min(100, (p / demo.duration) * 100) : 0}%`
      track.setAttribute('aria-valuenow', p.toFixed(1))
      return
    }
    const index = Math.round(p)
    for (const el of element.querySelectorAll('.demo-step')) {
      const on = Number(el.dataset.index) === index
      if (el.classList.contains('current') === on) continue
      el.classList.toggle('current', on)
      el.setAttribute('aria-current', on ? 'step' : 'false')
    }
  }

  return { element, show, position }
}
