'use strict'

// JS-thread time of one hub.broadcast() at 100, 1,000 and 10,000 connected native clients:
// with channel logs it must stay flat, since publishing appends once and the writers are
// woken on the runtime's threads. Also the time of one hub.metricsText() (a scrape), which
// must stay flat too (it reads the channels, never the clients), against hub.stats(), which
// visits every client.
//
//   node bench/js-cost.js [package directory, default: this checkout]
//
// Each round times BROADCASTS calls back to back (100 B of data each), then waits until the
// clients have received them, so the next round starts from idle writers.

const http = require('node:http')
const path = require('node:path')
const { fork } = require('node:child_process')

const pkg = path.resolve(process.argv[2] || path.join(__dirname, '..'))
const { createHub } = require(pkg)
const SIZES = [100, 1000, 10_000]
const BROADCASTS = 200
const ROUNDS = 10
/** 100 bytes of data that start with the event's number, as the load client checks. */
const payload = (seq) => `${seq} `.padEnd(100, 'x')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function measure (clients) {
  const hub = createHub({ heartbeatMs: 60_000 })
  const server = http.createServer((req, res) => hub.attach(req, res))
  server.maxConnections = 100_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const load = fork(path.join(__dirname, 'load-clients.js'), [String(server.address().port), String(clients)])
  const report = () => new Promise((resolve) => { load.once('message', resolve); load.send('report') })
  const deadline = Date.now() + 60_000
  while (hub.size < clients || (await report()).connected < clients) {
    if (Date.now() > deadline) throw new Error(`only ${hub.size} of ${clients} clients connected`)
    await sleep(50)
  }
  const samples = []
  let sent = 0
  // Round 0 warms up (JIT, allocator) and is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < BROADCASTS; i++) hub.broadcast({ data: payload(sent + i) })
    if (round > 0) samples.push(Number(process.hrtime.bigint() - started) / BROADCASTS)
    sent += BROADCASTS
    while ((await report()).delivered < sent * clients) {
      if (Date.now() > deadline + 60_000) throw new Error('deliveries stalled')
      await sleep(20)
    }
  }
  const timeCalls = (fn) => {
    const times = []
    for (let i = 0; i < 1001; i++) {
      const started = process.hrtime.bigint()
      fn()
      times.push(Number(process.hrtime.bigint() - started))
    }
    times.sort((a, b) => a - b)
    return Math.round(times[times.length >> 1])
  }
  const nsPerScrapeMedian = timeCalls(() => hub.metricsText())
  const nsPerStatsMedian = timeCalls(() => hub.stats())
  const totals = await report()
  load.send('exit')
  await hub.close()
  server.close()
  samples.sort((a, b) => a - b)
  return {
    clients,
    nsPerBroadcastMedian: Math.round(samples[samples.length >> 1]),
    nsPerScrapeMedian,
    nsPerStatsMedian,
    lost: totals.lost,
    disorder: totals.disorder
  }
}

async function main () {
  console.log(`JS-thread time per broadcast, ${pkg}, Node ${process.version}`)
  const results = []
  for (const clients of SIZES) {
    const result = await measure(clients)
    console.log(result)
    results.push(result)
  }
  const ratio = results.at(-1).nsPerBroadcastMedian / results[0].nsPerBroadcastMedian
  console.log(`10,000 clients vs 100: ${ratio.toFixed(2)}x per broadcast, ` +
    `${(results.at(-1).nsPerScrapeMedian / results[0].nsPerScrapeMedian).toFixed(2)}x per metricsText(), ` +
    `${(results.at(-1).nsPerStatsMedian / results[0].nsPerStatsMedian).toFixed(2)}x per stats()`)
  if (results.some((r) => r.lost > 0 || r.disorder > 0)) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
