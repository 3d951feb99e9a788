'use strict'

// Soak: `npm run soak -- --minutes N [--transport native|node]`.
//
// 2,000 clients (another process) on 10 channels, 10 of them leaving (FIN or RST) and 10 new
// ones arriving every second, while 1,000 events a second are published (one per channel
// every 10 ms). Every 10 s it samples this process's RSS and open fds. After a warm-up (the
// first 20 s, or a fifth of the run if longer) it fits a line through the samples and fails
// if either keeps growing: RSS by more than RSS_SLOPE_LIMIT a minute (runs of 5 minutes and
// more; SHORT_RUN_RSS_SLOPE_LIMIT below that), or fds (less the
// connected clients, which churn moves up and down) by more than FD_SLOPE_LIMIT a minute. It
// also fails if any client was cut ('slow', 'timeout') or a connection failed: every client
// here reads as fast as it can.

const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { fork } = require('node:child_process')
const { createHub } = require('..')
const { pin } = require('./pin')

const CLIENTS = 2000
const CHURN_PER_SECOND = 10
const CHANNELS = 10
const PUBLISH_EVERY_MS = 10 // one event per channel: 1,000 events/s
const SAMPLE_EVERY_MS = 10_000
// A leak of 16 bytes per published event would add about 1 MB a minute; one of 1 KB per
// connection that leaves, 0.6 MB a minute. Below this, RSS moves with the allocator's moods.
const RSS_SLOPE_LIMIT = 2 * 1024 * 1024
// After a full GC, RSS still wanders by about a megabyte from one sample to the next: a
// line through the few samples of a run shorter than LONG_RUN_MINUTES cannot tell 2 MB/min
// from noise (60 s runs read -3.1 to +1.7 MB/min with nothing leaking), so short runs (CI's)
// only catch leaks above SHORT_RUN_RSS_SLOPE_LIMIT, e.g. one of 160 bytes per published
// event (9.2 MB/min).
const LONG_RUN_MINUTES = 5
const SHORT_RUN_RSS_SLOPE_LIMIT = 8 * 1024 * 1024
// One descriptor kept per departure would add 600 a minute.
const FD_SLOPE_LIMIT = 30

function parseArgs (argv) {
  const args = { minutes: 10, transport: 'auto' }
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=')
    const value = inline ?? argv[++i]
    if (name === '--minutes') args.minutes = Number(value)
    else if (name === '--transport') args.transport = value
    else throw new Error(`unknown argument ${name}; use --minutes N [--transport native|node|auto]`)
  }
  if (!(args.minutes > 0 && args.minutes <= 24 * 60)) throw new Error('--minutes must be a number above 0 (and at most a day)')
  if (!['native', 'node', 'auto'].includes(args.transport)) throw new Error('--transport is native, node or auto')
  return args
}

/** Least-squares slope of y over x. */
function slope (points) {
  const n = points.length
  const mx = points.reduce((s, p) => s + p.x, 0) / n
  const my = points.reduce((s, p) => s + p.y, 0) / n
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0)
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0)
  return sxx === 0 ? 0 : sxy / sxx
}

const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const openFds = () => fs.readdirSync('/proc/self/fd').length

async function main () {
  const { minutes, transport } = parseArgs(process.argv.slice(2))
  const durationMs = minutes * 60_000
  const warmupMs = Math.max(20_000, durationMs / 5)
  const hub = createHub({ heartbeatMs: 15_000 })
  const server = http.createServer((req, res) => {
    const channel = new URL(req.url, 'http://x').searchParams.get('channel')
    hub.attach(req, res, { transport, channels: channel === null ? [] : [channel] })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 1024, resolve))
  pin(process.pid, 0)
  const clients = fork(path.join(__dirname, 'soak-clients.js'),
    [server.address().port, CLIENTS, CHURN_PER_SECOND, CHANNELS].map(String))
  pin(clients.pid, 1)
  const report = () => new Promise((resolve) => { clients.once('message', resolve); clients.send('report') })

  let published = 0
  const payload = 'x'.repeat(40)
  const started = Date.now()
  // Timers run late under load: each tick publishes what is due since the start, so the rate
  // holds at 1,000 events/s.
  const publisher = setInterval(() => {
    const due = Math.floor((Date.now() - started) / PUBLISH_EVERY_MS) * CHANNELS
    while (published < due) hub.publish(`c${published % CHANNELS}`, { event: 'tick', data: `${published++} ${payload}` })
  }, PUBLISH_EVERY_MS)

  const samples = []
  console.log(`soak: ${minutes} min, ${CLIENTS} clients on ${CHANNELS} channels, ${CHURN_PER_SECOND} leave and ${CHURN_PER_SECOND} arrive a second, ` +
    `${1000 / PUBLISH_EVERY_MS * CHANNELS} events/s, transport ${transport}; warm-up ${warmupMs / 1000} s`)
  await new Promise((resolve) => {
    const sampler = setInterval(async () => {
      const atMs = Date.now() - started
      // A full collection first (npm run soak passes --expose-gc), so the JS heap's own
      // rhythm does not read as growth.
      if (typeof global.gc === 'function') global.gc()
      const { rss, heapUsed, external } = process.memoryUsage()
      const fds = openFds()
      const totals = await report()
      const sample = { atMs, rss, heapUsed, fds, clients: hub.size, published, delivered: totals.events, opened: totals.opened }
      samples.push(sample)
      console.log(`  ${String(Math.round(atMs / 1000)).padStart(5)} s  RSS ${mb(rss).padStart(9)}  JS heap ${mb(heapUsed).padStart(8)}  ` +
        `external ${mb(external).padStart(8)}  fds ${String(fds).padStart(5)}  ` +
        `clients ${String(hub.size).padStart(5)}  published ${published}  delivered ${totals.events}  connections opened ${totals.opened}`)
      if (atMs >= durationMs - SAMPLE_EVERY_MS / 2) {
        clearInterval(sampler)
        resolve()
      }
    }, SAMPLE_EVERY_MS)
  })
  clearInterval(publisher)
  const totals = await report()
  const metrics = hub.metrics()
  clients.send('exit')
  await hub.close()
  server.close()

  const settled = samples.filter((s) => s.atMs >= warmupMs - SAMPLE_EVERY_MS / 2)
  const perMinute = (field) => slope(settled.map((s) => ({ x: s.atMs / 60_000, y: field(s) })))
  const rssSlope = perMinute((s) => s.rss)
  const fdSlope = perMinute((s) => s.fds - s.clients)
  const failures = []
  if (settled.length < 3) failures.push(`only ${settled.length} samples after the warm-up: run longer`)
  const rssLimit = minutes >= LONG_RUN_MINUTES ? RSS_SLOPE_LIMIT : SHORT_RUN_RSS_SLOPE_LIMIT
  if (rssSlope > rssLimit) failures.push(`RSS grows ${mb(rssSlope)}/min (limit ${mb(rssLimit)}/min for a ${minutes}-minute run)`)
  if (fdSlope > FD_SLOPE_LIMIT) failures.push(`fds grow ${fdSlope.toFixed(1)}/min (limit ${FD_SLOPE_LIMIT}/min)`)
  if (metrics.closes.slow + metrics.closes.timeout > 0) failures.push(`clients cut: ${metrics.closes.slow} slow, ${metrics.closes.timeout} timeout`)
  if (totals.failed + totals.closedByServer > 0) failures.push(`connections lost: ${totals.failed} failed, ${totals.closedByServer} closed by the server`)
  if (totals.events === 0) failures.push('no event delivered')
  const summary = {
    minutes,
    transport,
    samplesAfterWarmup: settled.length,
    rssSlopeMbPerMinute: Number((rssSlope / 1024 / 1024).toFixed(3)),
    fdSlopePerMinute: Number(fdSlope.toFixed(2)),
    rssFirst: mb(settled[0]?.rss ?? 0),
    rssLast: mb(settled.at(-1)?.rss ?? 0),
    published,
    delivered: totals.events,
    connectionsOpened: totals.opened,
    connectionsDropped: totals.dropped,
    closes: metrics.closes
  }
  console.log(JSON.stringify(summary))
  if (failures.length > 0) {
    console.error(`soak failed:\n- ${failures.join('\n- ')}`)
    process.exit(1)
  }
  console.log(`soak passed: RSS ${summary.rssSlopeMbPerMinute} MB/min (limit ${mb(rssLimit)}/min), fds ${summary.fdSlopePerMinute}/min (limit ${FD_SLOPE_LIMIT}/min) after warm-up`)
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
