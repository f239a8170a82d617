// Resolve Yjs relative positions the way the page does, for tests of anchors made by the
// server (pycrdt). Reads one JSON object on stdin:
//   {"state": base64 Yjs update, "file": path, "anchors": [[start base64, end base64], ...]}
// and prints [[start, end, text], ...]: UTF-16 indexes and the text between them.
import * as Y from 'yjs'

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  const { state, file, anchors } = JSON.parse(input)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Buffer.from(state, 'base64'))
  const text = doc.getMap('files').get(file)
  const whole = text.toString()
  const out = anchors.map(([start, end]) => {
    const at = (b64) => {
      const rel = Y.decodeRelativePosition(Buffer.from(b64, 'base64'))
      const abs = Y.createAbsolutePositionFromRelativePosition(rel, doc)
      if (abs === null || abs.type !== text) throw new Error('position is not in ' + file)
      return abs.index
    }
    const a = at(start)
    const b = at(end)
    return [a, b, whole.slice(a, b)]
  })
  process.stdout.write(JSON.stringify(out) + '\n')
})
