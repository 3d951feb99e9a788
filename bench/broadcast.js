'use strict'

// Broadcast throughput to N clients over loopback: native-sse on its native transport and on
// its Node transport, against a plain res.write loop, in the same run; plus resident memory per
// idle client.
//
//   npm run bench                      (1,000 clients, 5 s per scenario)
//   node bench/broadcast.js 1000 5     (clients, seconds)
//
// Every server is driven the same way: bursts of 64 events while the bytes not yet handed to
// the kernel stay under one credit limit (4 KiB per client, counted the same way for all), so
// neither side just buffers without bound. A separate client process parses every stream and
// checks each client's sequence numbers; a run with lost, repeated or reordered deliveries, or
// with a client closed during it, fails the benchmark.

const http = require('node:http')
const path = require('node:path')
const v8 = require('node:v8')
const { fork } = require('node:child_process')
const { PIN, pin } = require('./pin')
const { createHub } = require('..')

// On a machine with two or more cores, the server (this process, all its threads, including
// hub runtimes created later) runs on core 0 and the load client on core 1, so they never
// compete for a core and the figures compare servers, not scheduling luck.
const CLIENTS = Number(process.argv[2] === '--idle' ? 0 : process.argv[2] || 1000)
const SECONDS = Number(process.argv[3] || 5)
const IDLE_CLIENTS = Number(process.argv[2] === '--idle' ? process.argv[4] : process.argv[4] || 2000)
// Events per publishing turn: 64 by default, BENCH_BURST=1 for one event per event-loop turn.
const BURST = Number(process.env.BENCH_BURST || 64)
const CREDIT_BYTES_PER_CLIENT = 4096

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const tick = () => new Promise((resolve) => setImmediate(resolve))

function startClients (port, count) {
  const child = fork(path.join(__dirname, 'load-clients.js'), [String(port), String(count)])
  pin(child.pid, 1)
  const report = () => new Promise((resolve) => {
    child.once('message', resolve)
    child.send('report')
  })
  const stop = () => new Promise((resolve) => { child.once('exit', resolve); child.send('exit') })
  return { report, stop }
}

async function listen (handler) {
  const server = http.createServer(handler)
  server.maxConnections = 100_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

async function waitConnected (clients, count, serverSize, serverCount = count) {
  const deadline = Date.now() + 30_000
  for (;;) {
    const r = await clients.report()
    if (r.connected >= count && serverSize() >= serverCount) return
    if (Date.now() > deadline) throw new Error(`only ${r.connected}/${count} clients connected`)
    await sleep(50)
  }
}

/** Drives `publish` for SECONDS while `backlogBytes()` stays under the credit limit. */
async function drive (clients, publish, backlogBytes, count) {
  const limit = count * CREDIT_BYTES_PER_CLIENT
  const backlog = backlogBytes
  let seq = 0
  // Warm-up second, then the measured window.
  const warmEnd = Date.now() + 1000
  while (Date.now() < warmEnd) {
    if (backlog() < limit) for (let i = 0; i < BURST; i++) publish(seq++)
    await tick()
  }
  const before = await clients.report()
  const started = process.hrtime.bigint()
  const end = Date.now() + SECONDS * 1000
  let published = 0
  while (Date.now() < end) {
    if (backlog() < limit) {
      for (let i = 0; i < BURST; i++) publish(seq++)
      published += BURST
    }
    await tick()
  }
  const after = await clients.report()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return {
    deliveredPerSecond: Math.round((after.delivered - before.delivered) / seconds),
    publishedPerSecond: Math.round(published / seconds),
    closedDuringRun: after.closed - before.closed,
    lost: after.lost,
    disorder: after.disorder
  }
}

/** `transport`: 'native' (socket handed to Rust) or 'node' (batches written through Node). */
async function hubScenario (transport) {
  const hub = createHub({ heartbeatMs: 60_000, maxQueueEvents: 4096, maxQueueBytes: 4 << 20 })
  const server = await listen((req, res) => hub.attach(req, res, { transport }))
  const clients = startClients(server.address().port, CLIENTS)
  await waitConnected(clients, CLIENTS, () => hub.size)
  const result = await drive(clients, (seq) => hub.broadcast({ data: String(seq) }),
    () => hub.stats().queuedBytes, CLIENTS)
  await clients.stop()
  await hub.close()
  server.close()
  return result
}

async function resWriteScenario () {
  const streams = new Set()
  const server = await listen((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    res.flushHeaders()
    streams.add(res)
    res.on('close', () => streams.delete(res))
  })
  const clients = startClients(server.address().port, CLIENTS)
  await waitConnected(clients, CLIENTS, () => streams.size)
  // A per-event write loop, as most Node SSE libraries do it: serialize once, write to each.
  const result = await drive(clients, (seq) => {
    const frame = `data: ${seq}\n\n`
    for (const res of streams) res.write(frame)
  }, () => {
    let bytes = 0
    for (const res of streams) bytes += res.writableLength
    return bytes
  }, CLIENTS)
  await clients.stop()
  for (const res of streams) res.destroy()
  server.close()
  return result
}

/**
 * Memory per idle client, measured in a fresh process (so earlier scenarios' garbage does not
 * blur it), after one warm-up client so the runtime and lazily built state are in the baseline.
 * `kind` is 'native' (handed off) or 'node' (a res held open by Node, as plain loops do).
 *
 * Taken twice: right after the clients connected, and after 15 s idle, by when V8's memory
 * reducer has given back the young generation that the burst of connections grew (to 32 MB on
 * Node 20, about 7 s after the burst: a one-off of the burst, not a cost of each client). The
 * idle figure is what a server holding idle clients pays for each.
 */
async function idleMemory (kind) {
  const hub = kind === 'native' ? createHub({ heartbeatMs: 60_000 }) : null
  const held = new Set()
  const server = await listen((req, res) => {
    if (hub) return hub.attach(req, res)
    res.writeHead(200, { 'Content-Type': 'text/event-stream' })
    res.flushHeaders()
    held.add(res)
    res.on('close', () => held.delete(res))
  })
  const size = () => (hub ? hub.size : held.size)
  const warm = startClients(server.address().port, 1)
  await waitConnected(warm, 1, size)
  await sleep(200)
  global.gc()
  const before = process.memoryUsage()
  const clients = startClients(server.address().port, IDLE_CLIENTS)
  await waitConnected(clients, IDLE_CLIENTS, size, IDLE_CLIENTS + 1)
  await sleep(500)
  global.gc()
  await sleep(100)
  const afterBurst = { ...process.memoryUsage(), youngGeneration: youngGenerationSize() }
  for (let waited = 0; waited < IDLE_SETTLE_MS; waited += 1000) {
    await sleep(1000)
    global.gc()
  }
  const idle = process.memoryUsage()
  const perClient = (a, b) => Math.round((a - b) / IDLE_CLIENTS)
  return {
    kind,
    clients: IDLE_CLIENTS,
    rssPerClientBytes: perClient(idle.rss, before.rss),
    rssPerClientRightAfterConnectingBytes: perClient(afterBurst.rss, before.rss),
    youngGenerationBytes: { afterBurst: afterBurst.youngGeneration, idle: youngGenerationSize() },
    // RSS outside the V8 heap: sockets' user-space state, Node's C++ objects, the Rust side.
    outsideJsHeapPerClientBytes: perClient(idle.rss - idle.heapTotal, before.rss - before.heapTotal),
    jsHeapPerClientBytes: perClient(idle.heapUsed, before.heapUsed)
  }
}

/** How long clients stay idle before the second measurement. */
const IDLE_SETTLE_MS = 15_000

function youngGenerationSize () {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size
}

function idleMemoryInChild (kind) {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--idle', kind, String(IDLE_CLIENTS)], { execArgv: ['--expose-gc'] })
    child.once('message', (result) => { resolve(result); child.kill() })
    child.once('exit', (code) => { if (code) reject(new Error(`idle memory child exited with ${code}`)) })
  })
}

async function main () {
  pin(process.pid, 0)
  console.log(`native-sse broadcast benchmark: ${CLIENTS} clients, ${SECONDS} s, Node ${process.version}, loopback${PIN ? ', server on core 0, clients on core 1' : ''}`)
  const native = await hubScenario('native')
  console.log('native-sse, native transport', native)
  const node = await hubScenario('node')
  console.log('native-sse, node transport  ', node)
  const plain = await resWriteScenario()
  console.log('res.write loop              ', plain)
  const ratio = (a, b) => (a.deliveredPerSecond / b.deliveredPerSecond).toFixed(2)
  console.log(`delivered/s: native ${ratio(native, plain)}x and node transport ${ratio(node, plain)}x the res.write loop; native ${ratio(native, node)}x node transport`)
  console.log('idle memory       ', await idleMemoryInChild('native'))
  console.log('idle memory       ', await idleMemoryInChild('node'))
  const failed = [['native transport', native], ['node transport', node], ['res.write loop', plain]]
    .filter(([, r]) => r.lost > 0 || r.disorder > 0 || r.closedDuringRun > 0)
  if (failed.length > 0) {
    for (const [name, r] of failed) console.error(`FAILED ${name}: lost ${r.lost}, disorder ${r.disorder}, closed ${r.closedDuringRun}`)
    process.exitCode = 1
  }
}

if (process.argv[2] === '--idle') {
  idleMemory(process.argv[3]).then((result) => process.send(result))
} else main().catch((error) => {
  console.error(error)
  process.exit(1)
})
