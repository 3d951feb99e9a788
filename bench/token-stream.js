'use strict'

// One client fed 1,000,000 events of 20 B (the LLM-token case): native-sse's client.stream()
// on both transports against a plain node:http loop that writes a frame per event and awaits
// 'drain' when write() returns false, in the same run. A separate process reads and checks the
// sequence (loss, repeats, order).
//
//   node bench/token-stream.js [events, default 1000000]

const http = require('node:http')
const path = require('node:path')
const { once } = require('node:events')
const { fork } = require('node:child_process')
const { createHub } = require('..')

const EVENTS = Number(process.argv[2] || 1_000_000)
const token = (seq) => `${seq} `.padEnd(20, '.')
function * tokens () {
  for (let seq = 0; seq < EVENTS; seq++) yield token(seq)
}

async function run (name, handler) {
  let started = 0
  const server = http.createServer((req, res) => { started = Date.now(); handler(req, res) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const reader = fork(path.join(__dirname, 'load-clients.js'), [String(server.address().port), '1'])
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
  console.log(name.padEnd(28), { eventsPerSecond, seconds, lost: result.lost, disorder: result.disorder, delivered: result.delivered })
  return eventsPerSecond
}

async function main () {
  console.log(`token stream: ${EVENTS.toLocaleString('en')} events of 20 B to one client, Node ${process.version}`)
  const rates = {}
  for (const transport of ['native', 'node']) {
    const hub = createHub({ heartbeatMs: 60_000 })
    rates[transport] = await run(`client.stream(), ${transport}`, (req, res) => hub.attach(req, res, { transport }).stream(tokens()))
    await hub.close()
  }
  rates.loop = await run('res.write loop awaiting drain', async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const data of tokens()) {
      if (!res.write(`data: ${data}\n\n`)) await once(res, 'drain')
    }
  })
  console.log(`native ${(rates.native / rates.loop).toFixed(2)}x and node transport ${(rates.node / rates.loop).toFixed(2)}x the res.write loop`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
