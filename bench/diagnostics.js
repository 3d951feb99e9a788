'use strict'

// What node:diagnostics_channel costs the publish path: hub.publish() calls per second with
// nobody observing, with a subscriber on 'native-sse:publish', and with one on the
// 'native-sse:publish' TracingChannel (start to the delivery's asyncEnd), alternating in one
// run (medians of 5 rounds of 200,000 publishes to a channel of 100 idle clients over
// loopback; a round waits for the traced deliveries it started).
// Run: node bench/diagnostics.js

const diagnostics = require('node:diagnostics_channel')
const http = require('node:http')
const { createHub } = require('..')
const { rawClient, waitFor } = require('../__test__/helpers')

const PUBLISHES = 200_000
const ROUNDS = 5

async function main () {
  const hub = createHub({ heartbeatMs: 60_000, maxLagEvents: 1 << 20, overflow: 'drop-oldest' })
  const server = http.createServer((req, res) => hub.attach(req, res, { channels: ['prices'] }))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const clients = Array.from({ length: 100 }, () => rawClient(server.address().port))
  await waitFor(() => hub.size === 100, { what: '100 clients' })
  for (const c of clients) c.socket.removeAllListeners('data')
  for (const c of clients) c.socket.on('data', () => {})
  let observedCount = 0
  const listener = () => { observedCount++ }
  let delivered = 0
  const noop = () => {}
  const tracer = { start: noop, end: noop, asyncStart: noop, error: noop, asyncEnd: () => { delivered++ } }
  const trace = diagnostics.tracingChannel('native-sse:publish')
  const rate = () => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < PUBLISHES; i++) hub.publish('prices', { data: 'p' })
    return PUBLISHES / (Number(process.hrtime.bigint() - started) / 1e9)
  }
  const results = { off: [], on: [], traced: [] }
  const orders = [['off', 'on', 'traced'], ['traced', 'on', 'off'], ['on', 'traced', 'off']]
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of orders[round % orders.length]) {
      if (mode === 'on') diagnostics.subscribe('native-sse:publish', listener)
      if (mode === 'traced') trace.subscribe(tracer)
      const before = delivered
      results[mode].push(rate())
      if (mode === 'traced') {
        await waitFor(() => delivered - before === PUBLISHES, { what: 'every traced delivery', timeoutMs: 60_000 })
        trace.unsubscribe(tracer)
      }
      if (mode === 'on') diagnostics.unsubscribe('native-sse:publish', listener)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const off = median(results.off)
  const on = median(results.on)
  console.log(`hub.publish() to 100 clients, median of ${ROUNDS} x ${PUBLISHES}:`)
  console.log(`  nobody observing            ${Math.round(off).toLocaleString('en')} /s`)
  console.log(`  a 'native-sse:publish' subscriber  ${Math.round(on).toLocaleString('en')} /s (${(on / off).toFixed(2)}x; it saw ${observedCount.toLocaleString('en')})`)
  const traced = median(results.traced)
  console.log(`  the publish trace subscribed  ${Math.round(traced).toLocaleString('en')} /s (${(traced / off).toFixed(2)}x; ${delivered.toLocaleString('en')} deliveries reported)`)
  for (const c of clients) c.end()
  await hub.close()
  server.close()
}

main().catch((error) => { console.error(error); process.exit(1) })
