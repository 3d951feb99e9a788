'use strict'

// Child process of the benchmark: opens N raw HTTP/1.1 connections to 127.0.0.1 and counts
// delivered events (blank-line frame ends), reporting totals to the parent on request.

const net = require('node:net')

const [port, count, path] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] || '/']
let delivered = 0
let connected = 0
let closed = 0
const sockets = []

function open () {
  const socket = net.connect(port, '127.0.0.1')
  let headDone = false
  let last = 0
  socket.setNoDelay(true)
  socket.on('data', (buf) => {
    let from = 0
    if (!headDone) {
      const at = buf.indexOf('\r\n\r\n')
      if (at < 0) return
      headDone = true
      connected++
      from = at + 4
    }
    // Frames end with "\n\n"; the pair may straddle two reads.
    if (last === 0x0a && buf[from] === 0x0a) delivered++
    let at = buf.indexOf('\n\n', from)
    while (at >= 0) {
      delivered++
      at = buf.indexOf('\n\n', at + 2)
    }
    last = buf[buf.length - 1]
  })
  socket.on('error', () => {})
  socket.on('close', () => { closed++ })
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
  if (msg === 'report') process.send({ delivered, connected, closed })
  if (msg === 'exit') {
    for (const s of sockets) s.destroy()
    process.exit(0)
  }
})
