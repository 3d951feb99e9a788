'use strict'

// One benchmark server in its own process (so its CPU time and memory are its own), driven by
// bench/harness.js over IPC. `node bench/server.js <kind> <config JSON>`; sends `{ port }` once
// listening, then answers each `{ op, ... }` message with one reply.

const fs = require('node:fs')
const v8 = require('node:v8')
const { SERVERS, CROSS_PROCESS_SERVERS, payload } = require('./servers')
const { EVENTS } = require('./events')

const [kind, configJson] = process.argv.slice(2)
const config = JSON.parse(configJson)

const tick = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function peakRssBytes () {
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = Number(status.match(/VmHWM:\s+(\d+)/)?.[1])
  return Number.isFinite(kb) ? kb * 1024 : process.memoryUsage().rss
}

let server

/**
 * Publishes `burst` events per event-loop turn while the most-behind client has less than
 * `creditBytes` waiting in the server. Every server is paced by the same rule, so none just
 * buffers without bound. Returns `stop()`, which resolves the count and the JS time spent.
 */
function pacedFeed ({ burst, bytes, creditBytes, events }) {
  // Realistic events (bench/events.js) with their names and ids, or `bytes` of padding.
  const next = events ? EVENTS[events]() : null
  const publish = (seq) => {
    if (next === null) return server.broadcast(payload(seq, bytes))
    const { data, ...named } = next(seq)
    server.broadcast(data, named)
  }
  let stopping = false
  let published = 0
  let jsNs = 0n
  const done = (async () => {
    while (!stopping) {
      const started = process.hrtime.bigint()
      if (server.backlog() < creditBytes) {
        for (let i = 0; i < burst; i++) publish(published++)
      }
      jsNs += process.hrtime.bigint() - started
      await tick()
    }
  })()
  return async () => {
    stopping = true
    await done
    return { published, jsMs: Number(jsNs) / 1e6 }
  }
}

/** One event every `intervalMs` (a steady feed: latency is then the server's, not a queue's). */
function steadyFeed ({ intervalMs, bytes }) {
  let published = 0
  const timer = setInterval(() => server.broadcast(payload(published++, bytes)), intervalMs)
  return async () => {
    clearInterval(timer)
    return { published, jsMs: 0 }
  }
}

/** `stop()` of the feed running now, if any. */
let stopFeed = null

const handlers = {
  async size () {
    return { size: server.size() }
  },
  /** hub.route()'s counts: connections taken before Node parsed them, and left to Node. */
  async routeCounts () {
    return { counts: server.routeCounts?.(), ns: { route: Number(globalThis.__routeNs), peek: Number(globalThis.__peekNs), accept: Number(globalThis.__acceptNs), adopt: Number(globalThis.__adoptNs) } }
  },
  async start (message) {
    stopFeed = pacedFeed(message)
    return {}
  },
  async steady (message) {
    stopFeed = steadyFeed(message)
    return {}
  },
  async stop () {
    const result = await stopFeed()
    stopFeed = null
    return result
  },
  /** All `events` as fast as the server takes them, `burst` per turn, no pacing. */
  async flood ({ events, burst, bytes }) {
    const started = process.hrtime.bigint()
    for (let seq = 0; seq < events;) {
      for (let i = 0; i < burst && seq < events; i++) server.broadcast(payload(seq++, bytes))
      await tick()
    }
    return { publishMs: Number(process.hrtime.bigint() - started) / 1e6 }
  },
  /** JS-thread time of `count` broadcasts back to back, in ns per broadcast. */
  async broadcastCost ({ count, bytes, firstSeq }) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < count; i++) server.broadcast(payload(firstSeq + i, bytes))
    return { nsPerBroadcast: Number(process.hrtime.bigint() - started) / count }
  },
  async cpu () {
    const { user, system } = process.cpuUsage()
    return { cpuMs: (user + system) / 1000, systemMs: system / 1000 }
  },
  /**
   * RSS after a full collection (V8's heap then holds only what is live); with `gc: false`,
   * as it is (what an operator's dashboard shows right after a connect burst).
   */
  async memory ({ settleMs = 0, gc = true }) {
    for (let waited = 0; waited <= settleMs; waited += 1000) {
      if (gc) global.gc?.()
      if (waited < settleMs) await sleep(1000)
    }
    const { rss, heapUsed } = process.memoryUsage()
    // V8's young generation grows (up to a fixed maximum) with what survives its scavenges
    // during a connect burst, Node's own per-connection objects included, and V8 shrinks it
    // only at a later GC: its size says how much of a burst figure is that.
    let youngGeneration = NaN
    try {
      youngGeneration = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? NaN
    } catch {
      // Bun and Deno do not say.
    }
    return { rss, heapUsed, youngGeneration }
  },
  /** A compressing hub's plain and wire byte counts (undefined for other servers). */
  async compression () {
    return { compression: server.compression?.() }
  },
  /** A native-sse hub's metrics (undefined for other servers). */
  async metrics () {
    return { metrics: server.metrics?.() }
  },
  async peakRss () {
    return { peakRss: peakRssBytes(), rss: process.memoryUsage().rss, logPeakBytes: server.logPeakBytes?.() }
  },
  async close () {
    await server.close()
    return {}
  }
}

process.on('message', async (message) => {
  try {
    process.send({ ok: true, ...(await handlers[message.op](message)) })
  } catch (error) {
    process.send({ ok: false, error: String(error?.stack || error) })
  }
})
process.on('disconnect', () => process.exit(0))

;(SERVERS[kind] ?? CROSS_PROCESS_SERVERS[kind]).start(config).then((started) => {
  server = started
  process.send({ port: server.port })
}, (error) => {
  console.error(error)
  process.exit(1)
})
