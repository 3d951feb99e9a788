'use strict'

// Child process of the benchmark: opens N raw HTTP/1.1 connections to 127.0.0.1, de-chunks
// each body, parses it as SSE (events vs comments) and checks every client's sequence of
// `data: N` values: each client must see consecutive numbers from its first event on, so a
// gap counts as lost deliveries and a repeat or step back as disorder. Reports totals to the
// parent on request. With LOAD_PACE=bytes:ms in the environment, each client reads at most
// that many bytes every that many milliseconds: a slow reader, in bursts, until the parent
// says 'read-all'.

const net = require('node:net')

const [port, count, path] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] || '/']
const totals = { delivered: 0, connected: 0, closed: 0, lost: 0, disorder: 0 }
const sockets = []
/** Paced clients' switches to reading everything as it comes. */
const unpacers = []
const [paceBytes, paceMs] = (process.env.LOAD_PACE || '').split(':').map(Number)

/** One client's stream state: HTTP head, chunk framing, SSE frames, sequence. */
class StreamCheck {
  head = true
  headText = ''
  chunked = false
  chunkLeft = 0 // body bytes left in the current chunk
  sizeLine = '' // the chunk-size line being read
  skip = 0 // CRLF after a chunk's data still to skip
  pending = '' // body text after the last complete frame
  expected = null

  feed (buf) {
    let at = 0
    if (this.head) {
      const text = this.headText + buf.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) {
        this.headText = text
        return
      }
      this.head = false
      totals.connected++
      this.chunked = /\r\ntransfer-encoding: chunked/i.test(text.slice(0, end))
      at = buf.length - (text.length - (end + 4))
    }
    if (!this.chunked) return this.body(buf.toString('latin1', at))
    while (at < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - at)
        this.skip -= n
        at += n
      } else if (this.chunkLeft > 0) {
        const n = Math.min(this.chunkLeft, buf.length - at)
        this.body(buf.toString('latin1', at, at + n))
        this.chunkLeft -= n
        at += n
        if (this.chunkLeft === 0) this.skip = 2
      } else {
        const lf = buf.indexOf(0x0a, at)
        if (lf < 0) {
          this.sizeLine += buf.toString('latin1', at)
          return
        }
        this.sizeLine += buf.toString('latin1', at, lf)
        this.chunkLeft = parseInt(this.sizeLine, 16)
        this.sizeLine = ''
        at = lf + 1
        if (this.chunkLeft === 0) this.skip = 2 // the last chunk: the stream ends
      }
    }
  }

  body (text) {
    const all = this.pending + text
    let from = 0
    for (let end = all.indexOf('\n\n'); end >= 0; end = all.indexOf('\n\n', from)) {
      this.frame(all.slice(from, end))
      from = end + 2
    }
    this.pending = all.slice(from)
  }

  frame (frame) {
    const at = frame.startsWith('data: ') ? 0 : frame.indexOf('\ndata: ') + 1
    if (at === 0 && !frame.startsWith('data: ')) return // a comment (heartbeat, opening)
    const seq = parseInt(frame.slice(at + 6), 10)
    totals.delivered++
    if (this.expected === null || seq === this.expected) {
      this.expected = seq + 1
    } else if (seq > this.expected) {
      totals.lost += seq - this.expected
      this.expected = seq + 1
    } else {
      totals.disorder++
    }
  }
}

function open () {
  const socket = net.connect(port, '127.0.0.1')
  const check = new StreamCheck()
  socket.setNoDelay(true)
  if (paceBytes > 0 && paceMs > 0) {
    // Non-flowing: Node stops reading from the kernel once its small buffer is full.
    const timer = setInterval(() => {
      // read(n) takes exactly n bytes (read() would take all Node holds: 48 KB a tick on
      // Node 20 and 95 KB on 24 for a pace of 32 KiB).
      for (let taken = 0; taken < paceBytes;) {
        const want = Math.min(paceBytes - taken, socket.readableLength)
        const chunk = want > 0 ? socket.read(want) : null
        if (chunk === null) break
        taken += chunk.length
        check.feed(chunk)
      }
    }, paceMs)
    socket.on('close', () => clearInterval(timer))
    unpacers.push(() => {
      clearInterval(timer)
      socket.on('data', (buf) => check.feed(buf))
    })
  } else {
    socket.on('data', (buf) => check.feed(buf))
  }
  socket.on('error', () => {})
  socket.on('close', () => { totals.closed++ })
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
  sockets.push(socket)
}

let opened = 0
function openBatch () {
  for (let i = 0; i < 100 && opened < count; i++, opened++) open()
  if (opened < count) setImmediate(openBatch)
}
openBatch()

process.on('message', (msg) => {
  if (msg === 'report') process.send({ ...totals })
  if (msg === 'read-all') for (const unpace of unpacers.splice(0)) unpace()
  if (msg === 'exit') {
    for (const s of sockets) s.destroy()
    process.exit(0)
  }
})
