'use strict'

// Child process of bench/soak.js: keeps COUNT raw HTTP/1.1 event streams open to 127.0.0.1,
// each on one of CHANNELS channels, and every second drops CHURN of them (half FIN, half RST)
// and opens CHURN new ones. It reads everything and counts events (blank-line-ended frames
// with a data line) without parsing more, so it keeps up on one core. Reports totals on request.

const net = require('node:net')

const [port, count, churn, channels] = process.argv.slice(2).map(Number)
const totals = { opened: 0, dropped: 0, closedByServer: 0, failed: 0, events: 0, bytes: 0 }
const live = new Set()
let serial = 0
let stopping = false

function open () {
  const index = serial++
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${1 + (index % 8)}` })
  const state = { socket, dropped: false, tail: '' }
  live.add(state)
  totals.opened++
  socket.on('data', (chunk) => {
    totals.bytes += chunk.length
    // Frames end in a blank line; count those carrying data. The tail keeps a frame split
    // across reads from being missed or counted twice.
    const text = state.tail + chunk.toString('latin1')
    let from = 0
    for (let end = text.indexOf('\n\n', from); end >= 0; end = text.indexOf('\n\n', from)) {
      if (text.lastIndexOf('data: ', end) >= from) totals.events++
      from = end + 2
    }
    state.tail = text.slice(from)
  })
  socket.on('error', () => {})
  socket.on('close', (hadError) => {
    live.delete(state)
    if (stopping || state.dropped) return
    if (hadError) totals.failed++
    else totals.closedByServer++
  })
  socket.write(`GET /?channel=c${index % channels} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
}

function drop (state, reset) {
  state.dropped = true
  totals.dropped++
  if (reset) state.socket.resetAndDestroy()
  else state.socket.end()
}

let opening = 0
function openSome () {
  // At most 200 connects per turn while filling up, so the listen backlog never overflows.
  for (let i = 0; i < 200 && opening < count; i++, opening++) open()
  if (opening < count) setTimeout(openSome, 20)
}
openSome()

// Once filled up, CHURN leave and CHURN arrive per second of the clock (a late timer catches up).
let churnStarted = null
let churned = 0
const churnTimer = setInterval(() => {
  if (churnStarted === null) {
    if (live.size < count) return // still filling up
    churnStarted = Date.now()
  }
  const due = Math.floor((Date.now() - churnStarted) / 1000) * churn
  const all = [...live].filter((s) => !s.dropped)
  for (; churned < due && all.length > 0; churned++) {
    const [state] = all.splice(Math.floor(Math.random() * all.length), 1)
    drop(state, churned % 2 === 0)
    open()
  }
}, 100)

process.on('message', (message) => {
  if (message === 'report') process.send({ ...totals, live: live.size })
  if (message === 'exit') {
    stopping = true
    clearInterval(churnTimer)
    for (const state of live) state.socket.destroy()
    process.exit(0)
  }
})

// Gone with the parent: a parent that died without saying 'exit' leaves no clients behind.
process.on('disconnect', () => process.exit(0))
