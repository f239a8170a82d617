// Recording the room into a demo (staff who can edit): ● Record / ■ Stop, ⚑ Marker (a chapter,
// named or numbered by the server), and the state everyone is told (`record.state`,
// `record.marker`). Once saved, `record.state` names the new demo in the library.
import { h, toast } from './util.js'

/** host: where the controls go; send(message) → bool; staff(); serverNow(); onSaved(id). */
export function setupRecordControls ({ host, send, staff, serverNow, onSaved }) {
  let state = { recording: false, events: 0, started: 0, by: '', demo: null }
  let markers = 0
  let ticker = null

  const toggle = h('button', { class: 'btn small', id: 'record-toggle', type: 'button', onclick: () => {
    send(state.recording ? { type: 'record', action: 'stop' } : { type: 'record', action: 'start' })
  } }, '● Record')
  const label = h('input', { id: 'record-label', class: 'record-label', maxlength: '200', placeholder: 'Chapter name', 'aria-label': 'Marker label' })
  const marker = h('button', { class: 'btn small', id: 'record-marker', type: 'button', onclick: dropMarker }, '⚑ Marker')
  label.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); dropMarker() } })
  const status = h('span', { class: 'record-status', id: 'record-status', role: 'status' })
  const box = h('span', { class: 'record-controls', id: 'record-controls' }, toggle, label, marker, status)
  host.append(box)

  function dropMarker () {
    const text = label.value.trim()
    if (send({ type: 'record', action: 'marker', ...(text ? { label: text } : {}) })) label.value = ''
  }

  function elapsed () {
    const s = Math.max(0, Math.floor((serverNow() - state.started) / 1000))
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
  }

  function render () {
    const isStaff = staff()
    toggle.hidden = !isStaff
    label.hidden = marker.hidden = !(isStaff && state.recording)
    toggle.textContent = state.recording ? '■ Stop recording' : '● Record'
    toggle.classList.toggle('recording', state.recording)
    box.dataset.recording = String(state.recording)
    status.textContent = state.recording
      ? `● Recording ${elapsed()}${state.by ? ` by ${state.by}` : ''} · ${markers} marker${markers === 1 ? '' : 's'}`
      : ''
    if (state.recording && ticker === null) ticker = setInterval(render, 1000)
    if (!state.recording && ticker !== null) { clearInterval(ticker); ticker = null }
  }

  function message (msg) {
    if (msg.type === 'record.state') {
      const was = state
      state = {
        recording: Boolean(msg.recording),
        events: Number(msg.events) || 0,
        started: Number(msg.started) || 0,
        by: String(msg.by || ''),
        demo: typeof msg.demo === 'string' ? msg.demo : null
      }
      if (state.recording && !was.recording) markers = 0
      if (!state.recording && state.demo && state.demo !== was.demo) {
        if (staff()) toast(`Recording saved as “${state.demo}”: load it from the demo list.`)
        onSaved(state.demo)
      }
    } else if (msg.type === 'record.marker') {
      markers++
      if (staff()) toast(`Marker “${msg.label}” at ${Math.round(Number(msg.t) * 10) / 10} s`)
    } else {
      return false
    }
    render()
    return true
  }

  render()
  return { message, render, state: () => ({ ...state, markers }) }
}
