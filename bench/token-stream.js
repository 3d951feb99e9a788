'use strict'

// One client fed 1,000,000 events of 20 B (the LLM-token case): native-sse's client.stream()
// on both transports against a plain node:http loop that writes a frame per event and awaits
// 'drain' when write() returns false, in the same run. A separate process reads and checks the
// sequence (loss, repeats, order).
//
// Each server runs ROUNDS times, interleaved, and the median counts: a single run of one
// second swings by 2x with TCP's timing on a loaded machine.
//
//   node bench/token-stream.js [events, default 1000000] [rounds, default 3]

const http = require('node:http')
const path = require('node:path')
const { once } = require('node:events')
const { fork } = require('node:child_process')
const { createHub } = require('..')
const { PIN, pin } = require('./pin')

const EVENTS = Number(process.argv[2] || 1_000_000)
const ROUNDS = Number(process.argv[3] || 3)
const token = (seq) => `${seq} `.padEnd(20, '.')
function * tokens () {
  for (let seq = 0; seq < EVENTS; seq++) yield token(seq)
}

async function run (name, handler) {
  let started = 0
  const server = http.createServer((req, res) => { started = Date.now(); handler(req, res) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const reader = fork(path.join(__dirname, 'load-clients.js'), [String(server.address().port), '1'])
  pin(reader.pid, 1)
  const report = () => new Promise((resolve) => { reader.once('message', resolve); reader.send('report') })
  const deadline = Date.now() + 120_000
  let result
  for (;;) {
    result = await report()
    if (result.delivered >= EVENTS || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const seconds = (Date.now() - started) / 1000
  reader.send('exit')
  server.closeAllConnections()
  server.close()
  const eventsPerSecond = Math.round(result.delivered / seconds)
  console.log(name.padEnd(30), JSON.stringify({ eventsPerSecond, seconds, lost: result.lost, disorder: result.disorder, delivered: result.delivered }))
  if (result.lost > 0 || result.disorder > 0 || result.delivered < EVENTS) process.exitCode = 1
  return eventsPerSecond
}

const SERVERS = {
  native: (hub) => (req, res) => hub.attach(req, res, { transport: 'native' }).stream(tokens()),
  node: (hub) => (req, res) => hub.attach(req, res, { transport: 'node' }).stream(tokens()),
  loop: () => async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const data of tokens()) {
      if (!res.write(`data: ${data}\n\n`)) await once(res, 'drain')
    }
  }
}
const NAMES = { native: 'client.stream(), native', node: 'client.stream(), node', loop: 'res.write loop awaiting drain' }

async function main () {
  pin(process.pid, 0)
  console.log(`token stream: ${EVENTS.toLocaleString('en')} events of 20 B to one client, ${ROUNDS} rounds, Node ${process.version}${PIN ? ', server on core 0, reader on core 1' : ''}`)
  const rates = { native: [], node: [], loop: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of Object.keys(SERVERS)) {
      const hub = kind === 'loop' ? null : createHub({ heartbeatMs: 60_000 })
      rates[kind].push(await run(NAMES[kind], SERVERS[kind](hub)))
      if (hub) await hub.close()
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const [native, node, loop] = ['native', 'node', 'loop'].map((kind) => median(rates[kind]))
  console.log('median events/s', { native, node, loop })
  console.log(`native ${(native / loop).toFixed(2)}x and node transport ${(node / loop).toFixed(2)}x the res.write loop (medians)`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
