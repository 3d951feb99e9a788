'use strict'

// What node:diagnostics_channel costs the publish path: hub.publish() calls per second with
// nobody observing, and with a subscriber on 'native-sse:publish', alternating in one run
// (medians of 5 rounds of 200,000 publishes to a channel of 100 idle clients over loopback).
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
  const rate = () => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < PUBLISHES; i++) hub.publish('prices', { data: 'p' })
    return PUBLISHES / (Number(process.hrtime.bigint() - started) / 1e9)
  }
  const results = { off: [], on: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      if (mode === 'on') diagnostics.subscribe('native-sse:publish', listener)
      results[mode].push(rate())
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
  for (const c of clients) c.end()
  await hub.close()
  server.close()
}

main().catch((error) => { console.error(error); process.exit(1) })
