'use strict'

// `npm run bench`: native-sse against the libraries people use, each server in a fresh process
// pinned to core 0, the Rust load client (crates/loadgen, `sse-load`) pinned to core 1.
//
//   npm run bench                   full run (about 20 minutes); writes bench/RESULTS.md
//   npm run bench -- --smoke        small sizes, under a minute (CI)
//   npm run bench -- --only fanout,token   some scenarios (fanout, latency, idle, scale, slow, token, loop, cost, cross, resumable)
//   npm run bench -- --servers native,node-transport   some servers (see bench/servers.js)
//   NATIVE_SSE_BASELINE=/other/checkout npm run bench -- --servers native,baseline   two builds, one run
//
// Every run is bounded in time and checks each client's sequence (loss, repeats, order). The
// table gives each server's figures and, in brackets, how many times better native-sse is.
// Fan-out runs publish as fast as each server takes events, so their latency is the depth of
// the kernel's socket buffers; latency is measured on its own, under a steady feed.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { fork, spawn, spawnSync, execFileSync } = require('node:child_process')
const { PIN, pin } = require('./pin')
const { SERVERS, FETCH_KINDS } = require('./servers')
/** The servers whose per-client API is a call per event (the others have only their stream form). */
const LOOP_KINDS = ['native', 'node-transport', 'baseline', 'http', 'hono-native']
/** What the send() loop scenario's producers yield after (bench/servers.js). */
const LOOP_YIELD_EVERY = 1000
/** The servers of the 100,000-client scenario (the libraries fall over well before it). */
const SCALE_KINDS = ['native', 'native-small-young', 'node-transport', 'baseline', 'http']
/** Servers that differ from another only in Node's flags: run in the memory scenarios alone. */
const MEMORY_ONLY_KINDS = ['native-small-young']
const { startRedis } = require('../test-support/redis')

const args = process.argv.slice(2)
const SMOKE = args.includes('--smoke')
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null
const ROOT = path.join(__dirname, '..')
const LOADGEN = path.join(ROOT, 'target', 'release', 'sse-load')
const KINDS = args.includes('--servers') ? args[args.indexOf('--servers') + 1].split(',') : Object.keys(SERVERS)

const SIZES = SMOKE
  ? { cross: 100, fanout: [200], latencyClients: 200, windowS: 0.5, warmMs: 300, idle: 1000, idleWindowS: 1, idleSettleMs: 0, slowEvents: 1000, tokens: 20_000, tokenRounds: 1, cost: [100], costRounds: 2, scale: 2000, scaleWindowS: [2, 1], scaleReaches: 2, feedIntervalsMs: [10], reaches: 3 }
  : { cross: 1000, fanout: [1000, 10_000], latencyClients: 1000, windowS: 5, warmMs: 1000, idle: 10_000, idleWindowS: 10, idleSettleMs: 5000, slowEvents: 20_000, tokens: 1_000_000, tokenRounds: 3, cost: [100, 1000, 10_000], costRounds: 6, scale: 100_000, scaleWindowS: [30, 10], scaleReaches: 5, feedIntervalsMs: [20, 10], reaches: 21 }
const CREDIT_BYTES_PER_CLIENT = 64 * 1024
/** No run may take longer than this, whatever happens. */
const RUN_LIMIT_MS = 120_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function ensureLoadgen () {
  execFileSync('cargo', ['build', '--release', '-q', '-p', 'sse-load'], { cwd: ROOT, stdio: 'inherit' })
}

/** A server process: `call(op, fields)` sends one message and resolves its reply. */
async function startServer (kind, config) {
  // Libraries' own warnings (MaxListeners on a response awaiting 'drain') are not results.
  const nodeArgs = ['--expose-gc', '--no-warnings', ...(SERVERS[kind]?.nodeFlags ?? [])]
  // Started on its core (not moved there later), so what sizes itself by the cores it may use
  // (native-sse's runtime threads, libuv's pool) sees one core, as in a one-core container.
  const child = fork(path.join(__dirname, 'server.js'), [kind, JSON.stringify(config)], {
    ...(PIN ? { execPath: 'taskset', execArgv: ['-c', '0', process.execPath, ...nodeArgs] } : { execArgv: nodeArgs }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const first = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })
  let queue = Promise.resolve()
  const call = (op, fields = {}) => {
    const reply = queue.then(() => new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${kind} server exited`))
      const onExit = () => reject(new Error(`${kind} server exited during '${op}'`))
      child.once('exit', onExit)
      child.once('message', (message) => {
        child.removeListener('exit', onExit)
        if (message.ok) resolve(message)
        else reject(new Error(message.error))
      })
      child.send({ op, ...fields })
    }))
    queue = reply.catch(() => {})
    return reply
  }
  const stop = async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  return { port: first.port, call, stop }
}

/** The Rust load client: `report()` resolves its totals. */
function startLoad (port, clients, { stalled = 0 } = {}) {
  const child = spawn(LOADGEN, ['--port', String(port), '--clients', String(clients), '--stalled', String(stalled)], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  pin(child.pid, 1)
  const lines = readline.createInterface({ input: child.stdout })
  const waiting = []
  lines.on('line', (line) => waiting.shift()?.resolve(JSON.parse(line)))
  // A load client that exits (killed at the run's time limit) fails what waits for it: a
  // report that never comes would leave nothing running, and the bench would end silently.
  child.once('exit', (code, signal) => {
    for (const { reject } of waiting.splice(0)) reject(new Error(`the load client exited (${code ?? signal})`))
  })
  const report = () => new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('the load client exited'))
    waiting.push({ resolve, reject })
    child.stdin.write('report\n')
  })
  const reset = () => child.stdin.write('reset\n')
  const stop = async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.stdin.end('exit\n')
    await exited
  }
  return { report, reset, stop }
}

async function until (what, check, limitMs = RUN_LIMIT_MS) {
  const deadline = Date.now() + limitMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`)
    await sleep(20)
  }
}

/** Waits for `clients` streams of `load` and `serverSize` streams on the server. */
async function connected (server, load, clients, serverSize = clients, limitMs = 60_000) {
  await until(`${clients} clients`, async () => {
    const r = await load.report()
    if (r.refused + r.failed > 0) throw new Error(`${r.refused} refused, ${r.failed} failed connections (${r.connected} connected)`)
    return r.connected >= clients && (await server.call('size')).size >= serverSize
  }, limitMs)
}

/** What the flags look at: loss, repeats, reordering, events without a number, clients closed. */
function damage (r) {
  return { lost: r.lost, duplicated: r.duplicated, reordered: r.reordered, closed: r.closed, withoutSequence: r.withoutSequence }
}

/**
 * The load client's totals and the server's CPU time at both ends of a `seconds` window; the
 * latency histogram is cleared at its start, so the end's percentiles cover the window alone.
 */
async function measureWindow (server, client, seconds) {
  client.reset()
  const [r0, cpu0] = [await client.report(), await server.call('cpu')]
  await sleep(seconds * 1000)
  const [r1, cpu1] = [await client.report(), await server.call('cpu')]
  const cpuMs = cpu1.cpuMs - cpu0.cpuMs
  return {
    r0,
    r1,
    seconds: (r1.wallMs - r0.wallMs) / 1000,
    cpuMs,
    kernelShare: (cpu1.systemMs - cpu0.systemMs) / cpuMs
  }
}

/** The window's publish-to-receive percentiles, in ms. */
function latencyMs (r) {
  return { p50Ms: r.latency.p50Us / 1000, p99Ms: r.latency.p99Us / 1000, maxMs: r.latency.maxUs / 1000 }
}

async function withServer (kind, config, body, limitMs = RUN_LIMIT_MS) {
  const server = await startServer(kind, config)
  const loads = []
  const timer = setTimeout(() => { server.stop(); for (const load of loads) load.stop() }, limitMs)
  try {
    return await body(server, (...a) => { const load = startLoad(server.port, ...a); loads.push(load); return load })
  } finally {
    clearTimeout(timer)
    for (const load of loads) await load.stop()
    await server.stop()
  }
}

// --- scenarios -------------------------------------------------------------------------

async function fanout (kind, clients, burst) {
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    await server.call('start', { burst, bytes: 100, creditBytes: CREDIT_BYTES_PER_CLIENT })
    await sleep(SIZES.warmMs)
    const { r0, r1, seconds, cpuMs, kernelShare } = await measureWindow(server, client, SIZES.windowS)
    const { jsMs } = await server.call('stop')
    const deliveries = r1.events - r0.events
    return {
      deliveredPerS: deliveries / seconds,
      ...latencyMs(r1),
      cpuSPerMillion: deliveries ? (cpuMs / 1000) / (deliveries / 1e6) : Infinity,
      kernelShare,
      clientBusy: (r1.cpuMs - r0.cpuMs) / (r1.wallMs - r0.wallMs),
      jsMs,
      ...damage(r1)
    }
  })
}

/**
 * How long one broadcast takes to reach every client of `client` (the slowest receipt), the
 * median of `rounds`, each sent once the previous one arrived everywhere; with the server's
 * CPU time for it, which says whether the server or the load client bounds it.
 */
async function reachTime (server, client, rounds, firstSeq) {
  const reaches = []
  const sent = (await client.report()).readingMinEvents
  for (let i = 0; i < rounds; i++) {
    client.reset()
    const cpu0 = await server.call('cpu')
    await server.call('broadcastCost', { count: 1, bytes: 100, firstSeq: firstSeq + i })
    let last = null
    const r = await until(() => `one broadcast to reach every client (the slowest has ${last?.readingMinEvents} of ${sent + i + 1} events; ${last?.closed} closed)`, async () => {
      last = await client.report()
      return last.readingMinEvents >= sent + i + 1 ? last : null
    })
    const cpu1 = await server.call('cpu')
    reaches.push({ ms: r.latency.maxUs / 1000, cpuMs: cpu1.cpuMs - cpu0.cpuMs })
  }
  reaches.sort((a, b) => a.ms - b.ms)
  return reaches[reaches.length >> 1]
}

/**
 * Latency of a steady feed: 1,000 clients, one 100 B event every `intervalMs`; then, with the
 * feed stopped, the time one broadcast takes to reach all of them (what a p99 is judged by).
 */
async function latency (kind, intervalMs) {
  const clients = SIZES.latencyClients
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    await server.call('steady', { intervalMs, bytes: 100 })
    await sleep(SIZES.warmMs)
    const { r0, r1, seconds } = await measureWindow(server, client, SIZES.windowS)
    const { published } = await server.call('stop')
    await until('the feed to arrive', async () => (await client.report()).readingMinEvents >= published)
    const reach = await reachTime(server, client, SIZES.reaches, published)
    return {
      ...latencyMs(r1),
      fanoutMs: reach.ms,
      deliveredPerS: (r1.events - r0.events) / seconds,
      ...damage(await client.report())
    }
  })
}

/** Idle clients with 1 s heartbeats: server CPU over a window, then RSS per client. */
async function idle (kind) {
  const clients = SIZES.idle
  return withServer(kind, { heartbeatMs: 1000 }, async (server, load) => {
    const warm = load(1)
    await connected(server, warm, 1)
    const before = await server.call('memory', { settleMs: SIZES.idleSettleMs ? 1000 : 0 })
    const client = load(clients)
    await connected(server, client, clients, clients + 1)
    await sleep(SIZES.warmMs * 3)
    const burst = await server.call('memory', { gc: false })
    const { r0, r1, seconds, cpuMs, kernelShare } = await measureWindow(server, client, SIZES.idleWindowS)
    const after = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    return {
      burstRssPerClientKB: (burst.rss - before.rss) / clients / 1024,
      youngGenerationKBPerClient: (burst.youngGeneration - before.youngGeneration) / clients / 1024,
      rssPerClientKB: (after.rss - before.rss) / clients / 1024,
      heartbeatCpuPct: (cpuMs / 1000 / seconds) * 100,
      heartbeatKernelShare: kernelShare,
      heartbeatsPerClientPerS: (r1.comments - r0.comments) / clients / seconds,
      ...damage(r1)
    }
  })
}

/** The whole machine's TCP buffer memory (sockstat, in pages) and kernel slab (meminfo). */
function kernelMemory () {
  const sockstat = fs.readFileSync('/proc/net/sockstat', 'utf8')
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8')
  return {
    tcpBuffers: Number(sockstat.match(/TCP:.*\bmem (\d+)/)?.[1] ?? NaN) * 4096,
    slab: Number(meminfo.match(/^Slab:\s+(\d+)/m)?.[1] ?? NaN) * 1024
  }
}

/**
 * Descriptors for `wanted` connections in this process and what it starts (Node and the load
 * client raise their soft limit to the hard one). A run that may raises the hard limit; where
 * it may not (no CAP_SYS_RESOURCE, as in some containers), the scenario runs as far as the
 * hard limit allows and says so. Returns how many clients one process can hold.
 */
function fdRoomFor (wanted) {
  const limit = wanted + 4096
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}:${limit}`], { stdio: 'ignore' })
  } catch {}
  let hard
  try {
    hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim())
  } catch {}
  // Room for the process's own descriptors, and for handoffs in flight (the native transport
  // holds Node's descriptor and its duplicate for a moment).
  const room = Number.isFinite(hard) ? hard - 2048 : wanted
  return { clients: Math.min(wanted, room), hard }
}

/**
 * `SIZES.scale` idle clients from 127.0.0.1-127.0.0.8: connect time; memory per client 3 s
 * after the burst (no forced GC: what a dashboard shows in a reconnect wave) and settled
 * (after GCs); the kernel's share; heartbeat CPU at 15 s, then (a second server, connected
 * again) at 1 s; and how long one broadcast takes to reach every client.
 */
async function scale (kind, clients) {
  const [slowWindowS, fastWindowS] = SIZES.scaleWindowS
  const limitMs = 300_000
  const connectAll = async (server, load) => {
    const warm = load(1)
    await connected(server, warm, 1)
    const before = await server.call('memory', { settleMs: 1000 })
    const kernelBefore = kernelMemory()
    const started = Date.now()
    const client = load(clients)
    await connected(server, client, clients, clients + 1, limitMs / 2)
    return { client, before, kernelBefore, connectS: (Date.now() - started) / 1000 }
  }
  const heartbeat = async (server, client, seconds, periodS) => {
    const { r0, r1, cpuMs } = await measureWindow(server, client, seconds)
    const windowS = (r1.wallMs - r0.wallMs) / 1000
    return { cpuPct: (cpuMs / 1000 / windowS) * 100, perClientPerPeriod: (r1.comments - r0.comments) / clients / (windowS / periodS), r: r1 }
  }
  const slow = await withServer(kind, { heartbeatMs: 15_000 }, async (server, load) => {
    const { client, before, kernelBefore, connectS } = await connectAll(server, load)
    await sleep(3000)
    const burst = await server.call('memory', { gc: false })
    const kernel = kernelMemory()
    const beat = await heartbeat(server, client, slowWindowS, 15)
    const settled = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    const reach = await reachTime(server, client, SIZES.scaleReaches, 0)
    return {
      connectS,
      burstKBPerClient: (burst.rss - before.rss) / clients / 1024,
      youngGenerationKBPerClient: (burst.youngGeneration - before.youngGeneration) / clients / 1024,
      settledKBPerClient: (settled.rss - before.rss) / clients / 1024,
      // Both ends of every connection are on this machine: per socket is half per connection.
      // Idle sockets hold no buffer pages: what is left is other sockets' traffic, noise.
      kernelBuffersBPerSocket: Math.max(0, (kernel.tcpBuffers - kernelBefore.tcpBuffers) / clients / 2),
      kernelSlabKBPerSocket: (kernel.slab - kernelBefore.slab) / clients / 2 / 1024,
      heartbeat15CpuPct: beat.cpuPct,
      heartbeats15PerClient: beat.perClientPerPeriod,
      reachMs: reach.ms,
      reachServerCpuMs: reach.cpuMs,
      ...damage(await client.report())
    }
  }, limitMs)
  const fast = await withServer(kind, { heartbeatMs: 1000 }, async (server, load) => {
    const { client } = await connectAll(server, load)
    await sleep(2000)
    const beat = await heartbeat(server, client, fastWindowS, 1)
    return { heartbeat1CpuPct: beat.cpuPct, heartbeats1PerClient: beat.perClientPerPeriod, ...damage(beat.r) }
  }, limitMs)
  const damageOfBoth = Object.keys(damage(slow)).map((key) => [key, slow[key] + fast[key]])
  return { ...slow, ...fast, ...Object.fromEntries(damageOfBoth) }
}

/** 100 clients, 10 never read, while 20,000 events of 1 KB are published as fast as taken. */
async function slow (kind) {
  const events = SIZES.slowEvents
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(100, { stalled: 10 })
    await connected(server, client, 100)
    const started = Date.now()
    const { publishMs } = await server.call('flood', { events, burst: 64, bytes: 1024 })
    const r = await until('the fast clients to get every event', async () => {
      const r = await client.report()
      return r.readingMinEvents >= events ? r : null
    }, 60_000)
    const completionS = (Date.now() - started) / 1000
    const { peakRss, rss, logPeakBytes } = await server.call('peakRss')
    return {
      fastCompletionS: completionS,
      publishS: publishMs / 1000,
      peakRssMB: peakRss / 2 ** 20,
      rssMB: rss / 2 ** 20,
      logPeakMB: logPeakBytes === undefined ? undefined : logPeakBytes / 2 ** 20,
      ...damage(r)
    }
  })
}

/** One client fed `tokens` events of 20 B through the per-client API (`loop`: one call each). */
async function token (kind, { loop = false } = {}) {
  const events = SIZES.tokens
  const rates = []
  let last
  for (let round = 0; round < SIZES.tokenRounds; round++) {
    last = await withServer(kind, { heartbeatMs: 60_000, tokens: events, loop }, async (server, load) => {
      const client = load(1)
      const first = await until('the token stream to start', async () => {
        const r = await client.report()
        return r.connected > 0 ? r : null
      }, 30_000)
      const r = await until(`${events} tokens`, async () => {
        const r = await client.report()
        return r.events >= events || r.closed > 0 ? r : null
      })
      rates.push((r.events - first.events) / ((r.wallMs - first.wallMs) / 1000))
      // A server may end the response once its stream is done; only an early close counts.
      return { ...r, closed: r.events >= events ? 0 : r.closed }
    })
  }
  rates.sort((a, b) => a - b)
  return { tokensPerS: rates[rates.length >> 1], ...damage(last), gotAll: last.events >= events }
}

/** JS-thread time of one broadcast with `clients` connected (median over rounds). */
async function cost (kind, clients) {
  // Fewer per round at 10,000, where a per-client loop takes 100 ms a broadcast.
  const count = clients > 1000 ? 50 : 200
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    const samples = []
    let sent = 0
    for (let round = 0; round < SIZES.costRounds; round++) {
      const { nsPerBroadcast } = await server.call('broadcastCost', { count, bytes: 100, firstSeq: sent })
      sent += count
      if (round > 0) samples.push(nsPerBroadcast)
      await until('the broadcasts to arrive', async () => (await client.report()).readingMinEvents >= sent)
    }
    samples.sort((a, b) => a - b)
    const r = await client.report()
    return { usPerBroadcast: samples[samples.length >> 1] / 1000, ...damage(r) }
  })
}

/**
 * Three processes with `clients` each. `viaRedis`: one namespace in Redis, one process
 * publishes and all three deliver; otherwise the same three hubs on their own, each publishing
 * to its own clients. `feed`: 'paced' (as fast as taken, bursts of 64) or 'steady' (100/s).
 */
async function crossProcess (viaRedis, feed) {
  const clients = SIZES.cross
  const redis = viaRedis ? await startRedis({ durable: false, core: PIN ? 0 : null }) : null
  const servers = []
  const loads = []
  const stopAll = async () => {
    for (const load of loads) await load.stop()
    for (const server of servers) await server.stop()
    await redis?.close()
  }
  const timer = setTimeout(stopAll, RUN_LIMIT_MS)
  try {
    const config = { heartbeatMs: 60_000, redisUrl: redis?.url, prefix: `bench-${process.pid}` }
    for (let i = 0; i < 3; i++) servers.push(await startServer(viaRedis ? 'native-redis' : 'native', config))
    for (const server of servers) loads.push(startLoad(server.port, clients))
    for (let i = 0; i < 3; i++) await connected(servers[i], loads[i], clients)
    const feeders = viaRedis ? servers.slice(0, 1) : servers
    for (const feeder of feeders) {
      if (feed === 'paced') await feeder.call('start', { burst: 64, bytes: 100, creditBytes: CREDIT_BYTES_PER_CLIENT })
      else await feeder.call('steady', { intervalMs: 10, bytes: 100 })
    }
    await sleep(SIZES.warmMs)
    for (const load of loads) load.reset()
    const r0 = await Promise.all(loads.map((load) => load.report()))
    await sleep(SIZES.windowS * 1000)
    const r1 = await Promise.all(loads.map((load) => load.report()))
    for (const feeder of feeders) await feeder.call('stop')
    const sum = (f) => r1.reduce((total, r, i) => total + f(r, r0[i]), 0)
    const worst = (f) => Math.max(...r1.map(f))
    return {
      deliveredPerS: sum((r, before) => r.events - before.events) / ((r1[0].wallMs - r0[0].wallMs) / 1000),
      p50Ms: worst((r) => r.latency.p50Us) / 1000,
      p99Ms: worst((r) => r.latency.p99Us) / 1000,
      clientBusy: worst((r) => r.cpuMs / r.wallMs),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      reordered: sum((r) => r.reordered),
      closed: sum((r) => r.closed),
      withoutSequence: sum((r) => r.withoutSequence)
    }
  } finally {
    clearTimeout(timer)
    await stopAll()
  }
}

const ROWS = []
const FLAGS = []
const TARGETS = []
/** The cross-process table's lines, when that scenario ran. */
const CROSS_LINES = []
/** The table bench/resumable.js printed. */
const RESUMABLE_LINES = []

// --- the targets native-sse reports against (figures, not timed tests) ---------------------

const times = (a, b) => (a != null && b != null && b > 0 ? a / b : NaN)
const verdict = (met) => (met ? 'met' : 'MISSED')
/** A ratio against its target; a server left out (`--servers`) has no ratio to judge. */
const against = (ratio, met) => (Number.isNaN(ratio) ? 'not run' : verdict(met))

function fanoutTargets (scenario, r) {
  const vsBetter = times(r.native?.deliveredPerS, r['better-sse']?.deliveredPerS)
  const vsHttp = times(r.native?.deliveredPerS, r.http?.deliveredPerS)
  const clean = r.native && !FLAGS.some((f) => f.scenario === scenario && f.kind === 'native')
  return [`${scenario}: ${vsBetter.toFixed(1)}x better-sse (target 20x: ${against(vsBetter, vsBetter >= 20)}), ` +
    `${vsHttp.toFixed(1)}x node:http (target 10x: ${against(vsHttp, vsHttp >= 10)}), nothing lost: ${verdict(clean)}`]
}

/** The Fetch API servers against each other (no target: a comparison where they ran). */
function fetchComparison (scenario, r, key) {
  if (!r['hono-native']) return []
  const vs = (kind) => r[kind] ? `${times(r['hono-native'][key], r[kind][key]).toFixed(1)}x ${SERVERS[kind].name}` : `${SERVERS[kind].name} not run`
  return [`${scenario}, Fetch API under Hono: hub.response() ${vs('hono-sse')}, ${vs('better-sse-fetch')}`]
}

function idleTargets (scenario, r) {
  const rss = r.native?.rssPerClientKB
  const burst = r.native?.burstRssPerClientKB
  const young = r.native?.youngGenerationKBPerClient
  const small = r['native-small-young']?.burstRssPerClientKB
  const cpu = times(r.native?.heartbeatCpuPct, r['better-sse']?.heartbeatCpuPct)
  return [
    `${scenario}: ${rss?.toFixed(1)} KB RSS per idle client (target at most 3 KB: ${verdict(rss <= 3)})`,
    `${scenario}: ${burst?.toFixed(1)} KB RSS per client 3 s after the connect burst, no GC (target at most 4 KB: ${verdict(burst <= 4)}` +
      `${small ? `; ${small.toFixed(1)} KB under node --max-semi-space-size=1, of which ${young?.toFixed(1)} KB without it is V8's young generation` : ''})`,
    `${scenario}: heartbeat CPU ${cpu.toFixed(2)}x better-sse's (target at most 0.4x: ${against(cpu, cpu <= 0.4)})`
  ]
}

function latencyTargets (scenario, r) {
  const n = r.native
  const t = r['node-transport']
  const h = r.http
  const lines = []
  if (n) lines.push(`${scenario}: native p99 ${n.p99Ms.toFixed(2)} ms, ${(n.p99Ms / n.fanoutMs).toFixed(1)}x one fan-out (${n.fanoutMs.toFixed(2)} ms; target at most 2x: ${verdict(n.p99Ms <= 2 * n.fanoutMs)})`)
  if (t && h) lines.push(`${scenario}: Node transport p99 ${(t.p99Ms / h.p99Ms).toFixed(2)}x node:http's (target at most 2x: ${verdict(t.p99Ms <= 2 * h.p99Ms)})`)
  return lines
}

function scaleTargets (scenario, r, clients) {
  const n = r.native
  if (!n) return [`${scenario}: native-sse did not complete`]
  const where = clients === SIZES.scale ? '' : ` (measured at ${clients.toLocaleString('en')}: this machine's descriptor limit)`
  return [
    `${scenario}: ${n.settledKBPerClient.toFixed(2)} KB per idle native client settled (target at most 1.5 KB at ${SIZES.scale.toLocaleString('en')}${where}: ${verdict(n.settledKBPerClient <= 1.5)}); ` +
      `${n.burstKBPerClient.toFixed(2)} KB 3 s after the burst (${n.youngGenerationKBPerClient.toFixed(2)} of it V8's young generation); ` +
      `heartbeats per client per period ${n.heartbeats15PerClient.toFixed(2)} (15 s), ${n.heartbeats1PerClient.toFixed(2)} (1 s)`
  ]
}

function slowTargets (scenario, r) {
  const n = r.native
  // A run returns only once every fast client had every event (else it failed: `n` is null).
  const bound = n && n.closed === 0 && n.logPeakMB <= 32
  const others = ['http', 'better-sse', 'fastify-sse'].filter((k) => r[k]).map((k) => `${SERVERS[k].name} ${r[k].peakRssMB.toFixed(0)} MB`)
  return [`${scenario}: fast clients got every event and the log held ${n?.logPeakMB?.toFixed(1)} MB of the 32 MiB bound, ` +
    `peak RSS ${n?.peakRssMB?.toFixed(0)} MB against ${others.join(', ')} (target: ${verdict(bound)})`]
}

function tokenTargets (scenario, r, what = "the node:http loop awaiting 'drain'") {
  const vsHttp = times(r.native?.tokensPerS, r.http?.tokensPerS)
  return [`${scenario}: ${vsHttp.toFixed(1)}x ${what} (target 3x: ${against(vsHttp, vsHttp >= 3)})`]
}

// --- the table ---------------------------------------------------------------------------

function addRow (scenario, metric, results, { better = 'higher', format }) {
  ROWS.push({ scenario, metric, results, better, format })
}

function cell (row, kind) {
  const value = row.results[kind]
  if (value === undefined) return 'n/a'
  if (value === null) return 'failed'
  const text = row.format(value)
  if (kind === 'native' || row.better === 'none') return text
  const native = row.results.native
  if (native == null || !Number.isFinite(value) || !Number.isFinite(native) || value === 0 || native === 0) return text
  const ratio = row.better === 'higher' ? native / value : value / native
  return `${text} (${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}x)`
}

function table () {
  const header = ['scenario', 'figure', ...KINDS.map((kind) => SERVERS[kind].name)]
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`]
  for (const row of ROWS) lines.push(`| ${row.scenario} | ${row.metric} | ${KINDS.map((kind) => cell(row, kind)).join(' | ')} |`)
  return lines.join('\n')
}

const si = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)
const fixed = (digits, unit = '') => (n) => `${n.toFixed(digits)}${unit}`
const percent = (n) => `${Math.round(n * 100)} %`

function flag (scenario, kind, r) {
  const problems = []
  if (r.lost || r.duplicated || r.reordered || r.withoutSequence) problems.push(`lost ${r.lost}, repeated ${r.duplicated}, reordered ${r.reordered}`)
  if (r.closed) problems.push(`${r.closed} clients closed`)
  if (r.clientBusy > 0.9) problems.push(`load client saturated its core (${(r.clientBusy * 100).toFixed(0)} %)`)
  if (r.gotAll === false) problems.push('not every event arrived')
  // Only a saturated load client leaves the figures in doubt without anything having gone wrong.
  const harmful = problems.length > (r.clientBusy > 0.9 ? 1 : 0)
  if (problems.length) FLAGS.push({ scenario, kind, text: problems.join('; '), harmful })
}

/** Every scenario but fan-out and the token stream leaves the Fetch API servers out. */
const CORE_KINDS = KINDS.filter((k) => !FETCH_KINDS.includes(k) && !MEMORY_ONLY_KINDS.includes(k))

async function each (scenario, run, only = CORE_KINDS) {
  const results = {}
  for (const kind of KINDS.filter((k) => only.includes(k))) {
    const started = Date.now()
    try {
      results[kind] = await run(kind)
      flag(scenario, kind, results[kind])
      console.log(`${scenario.padEnd(34)} ${SERVERS[kind].name.padEnd(28)} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${brief(results[kind])}`)
    } catch (error) {
      results[kind] = null
      FLAGS.push({ scenario, kind, text: `run failed: ${error.message}`, harmful: true })
      console.log(`${scenario.padEnd(34)} ${SERVERS[kind].name.padEnd(28)} FAILED: ${error.message}`)
    }
  }
  return results
}

function brief (r) {
  return Object.entries(r).filter(([, v]) => typeof v === 'number' && v !== 0)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(', ')
}

const pick = (results, key) => Object.fromEntries(Object.entries(results).map(([kind, r]) => [kind, r ? r[key] : null]))

async function main () {
  ensureLoadgen()
  const wanted = (name) => !ONLY || ONLY.includes(name)
  const began = Date.now()
  console.log(`native-sse bench${SMOKE ? ' (smoke)' : ''}: Node ${process.version}, ${os.availableParallelism()} cores${PIN ? ', servers on core 0, load client on core 1' : ' (not pinned)'}`)
  if (wanted('fanout')) {
    for (const clients of SIZES.fanout) {
      for (const [mode, burst] of [['one event per turn', 1], ['bursts of 64', 64]]) {
        const scenario = `fan-out, ${clients.toLocaleString('en')} clients, ${mode}`
        // The Fetch API servers at 1,000 clients only: at 10,000 in bursts Hono's streamSSE
        // server falls so far behind that the run does not complete.
        const results = await each(scenario, (kind) => fanout(kind, clients, burst), clients <= 1000 ? KINDS : CORE_KINDS)
        TARGETS.push(...fanoutTargets(scenario, results), ...fetchComparison(scenario, results, 'deliveredPerS'))
        addRow(scenario, 'events delivered/s', pick(results, 'deliveredPerS'), { format: si })
        addRow(scenario, 'server CPU s per million deliveries', pick(results, 'cpuSPerMillion'), { better: 'lower', format: fixed(2) })
        addRow(scenario, 'share of that CPU in the kernel', pick(results, 'kernelShare'), { better: 'none', format: percent })
      }
    }
  }
  if (wanted('latency')) {
    for (const intervalMs of SIZES.feedIntervalsMs) {
      const scenario = `latency, ${SIZES.latencyClients.toLocaleString('en')} clients, ${1000 / intervalMs} events/s`
      const results = await each(scenario, (kind) => latency(kind, intervalMs))
      TARGETS.push(...latencyTargets(scenario, results))
      addRow(scenario, 'publish to receive p50 (ms)', pick(results, 'p50Ms'), { better: 'lower', format: fixed(2) })
      addRow(scenario, 'p99 (ms)', pick(results, 'p99Ms'), { better: 'lower', format: fixed(2) })
      addRow(scenario, 'max (ms)', pick(results, 'maxMs'), { better: 'lower', format: fixed(2) })
      addRow(scenario, 'one broadcast reaches all, no feed (ms)', pick(results, 'fanoutMs'), { better: 'lower', format: fixed(2) })
    }
  }
  if (wanted('idle')) {
    const scenario = `${SIZES.idle.toLocaleString('en')} idle clients, 1 s heartbeat`
    const results = await each(scenario, idle, [...CORE_KINDS, ...MEMORY_ONLY_KINDS])
    TARGETS.push(...idleTargets(scenario, results))
    addRow(scenario, 'RSS per client 3 s after connecting, no GC (KB)', pick(results, 'burstRssPerClientKB'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'of which V8\'s young generation grew (KB)', pick(results, 'youngGenerationKBPerClient'), { better: 'none', format: fixed(1) })
    addRow(scenario, 'RSS per client settled (KB)', pick(results, 'rssPerClientKB'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'heartbeat CPU (% of a core)', pick(results, 'heartbeatCpuPct'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'share of that CPU in the kernel', pick(results, 'heartbeatKernelShare'), { better: 'none', format: percent })
  }
  if (wanted('scale')) {
    const { clients, hard } = fdRoomFor(SIZES.scale)
    const scenario = clients < SIZES.scale
      ? `${clients.toLocaleString('en')} idle clients (fd hard limit ${hard.toLocaleString('en')}, not raisable here)`
      : `${clients.toLocaleString('en')} idle clients`
    const results = await each(scenario, (kind) => scale(kind, clients), SCALE_KINDS)
    TARGETS.push(...scaleTargets(scenario, results, clients))
    addRow(scenario, 'time to connect all (s)', pick(results, 'connectS'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'memory per client 3 s after the burst, no GC (KB)', pick(results, 'burstKBPerClient'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'of which V8\'s young generation grew (KB)', pick(results, 'youngGenerationKBPerClient'), { better: 'none', format: fixed(2) })
    addRow(scenario, 'memory per client settled (KB)', pick(results, 'settledKBPerClient'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'kernel socket buffers per socket (B)', pick(results, 'kernelBuffersBPerSocket'), { better: 'none', format: fixed(0) })
    addRow(scenario, 'kernel slab per socket (KB)', pick(results, 'kernelSlabKBPerSocket'), { better: 'none', format: fixed(2) })
    addRow(scenario, 'heartbeat CPU, 15 s heartbeat (% of a core)', pick(results, 'heartbeat15CpuPct'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'heartbeat CPU, 1 s heartbeat (% of a core)', pick(results, 'heartbeat1CpuPct'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'one broadcast reaches all (ms)', pick(results, 'reachMs'), { better: 'lower', format: fixed(0) })
    addRow(scenario, 'server CPU for that broadcast (ms)', pick(results, 'reachServerCpuMs'), { better: 'lower', format: fixed(0) })
  }
  if (wanted('slow')) {
    const scenario = `slow consumers: 10 of 100 never read, ${SIZES.slowEvents.toLocaleString('en')} x 1 KB`
    const results = await each(scenario, slow)
    TARGETS.push(...slowTargets(scenario, results))
    addRow(scenario, 'fast clients complete (s)', pick(results, 'fastCompletionS'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'server peak RSS (MB)', pick(results, 'peakRssMB'), { better: 'lower', format: fixed(0) })
    addRow(scenario, 'most a channel log held (MB; bound: maxLagBytes, 32 MiB)', pick(results, 'logPeakMB'), { better: 'none', format: fixed(1) })
  }
  if (wanted('token')) {
    const scenario = `token stream: 1 client, ${SIZES.tokens.toLocaleString('en')} x 20 B`
    const results = await each(scenario, token, KINDS)
    TARGETS.push(...tokenTargets(scenario, results), ...fetchComparison(scenario, results, 'tokensPerS'))
    addRow(scenario, `tokens/s${SIZES.tokenRounds > 1 ? ` (median of ${SIZES.tokenRounds})` : ''}`, pick(results, 'tokensPerS'), { format: si })
  }
  if (wanted('loop')) {
    const scenario = `send() loop: 1 client, ${SIZES.tokens.toLocaleString('en')} x 20 B`
    const results = await each(scenario, (kind) => token(kind, { loop: true }), LOOP_KINDS)
    TARGETS.push(...tokenTargets(scenario, results, `a res.write() loop, each yielding every ${LOOP_YIELD_EVERY.toLocaleString('en')}`))
    addRow(scenario, `tokens/s${SIZES.tokenRounds > 1 ? ` (median of ${SIZES.tokenRounds})` : ''}`, pick(results, 'tokensPerS'), { format: si })
  }
  if (wanted('cost')) {
    for (const clients of SIZES.cost) {
      const scenario = `JS thread per broadcast, ${clients.toLocaleString('en')} clients`
      const results = await each(scenario, (kind) => cost(kind, clients))
      addRow(scenario, 'µs per broadcast', pick(results, 'usPerBroadcast'), { better: 'lower', format: fixed(1) })
    }
  }
  if (wanted('resumable')) {
    // Its own script (two libraries on one redis-server, readers in that process).
    const started = Date.now()
    const run = spawnSync(process.execPath, [path.join(__dirname, 'resumable.js'), ...(SMOKE ? ['--smoke'] : [])],
      { encoding: 'utf8', timeout: RUN_LIMIT_MS * 3, stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = (run.stdout ?? '').split('\n')
    const at = lines.findIndex((line) => line.startsWith('Resumable streams'))
    if (run.status !== 0 || at < 0) {
      FLAGS.push({ scenario: 'resumable streams', kind: 'native', text: `run failed (exit ${run.status})`, harmful: true, name: 'bench/resumable.js' })
    } else {
      RESUMABLE_LINES.push(...lines.slice(at).filter((line) => line !== ''))
    }
    console.log(`${'resumable streams'.padEnd(34)} ${'bench/resumable.js'.padEnd(28)} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`)
  }
  if (wanted('cross')) {
    const label = { local: '3 hubs on their own', redis: '3 hubs through Redis' }
    const results = {}
    for (const [feed, viaRedis] of [['paced', false], ['paced', true], ['steady', false], ['steady', true]]) {
      const key = `${feed}-${viaRedis ? 'redis' : 'local'}`
      const started = Date.now()
      try {
        results[key] = await crossProcess(viaRedis, feed)
        const problems = Object.entries(damage(results[key])).filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}`)
        if (problems.length) FLAGS.push({ scenario: `cross-process, ${feed}`, kind: 'native', text: problems.join('; '), harmful: true, name: label[viaRedis ? 'redis' : 'local'] })
        console.log(`${`cross-process, ${feed}`.padEnd(34)} ${label[viaRedis ? 'redis' : 'local'].padEnd(28)} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${brief(results[key])}`)
      } catch (error) {
        FLAGS.push({ scenario: `cross-process, ${feed}`, kind: 'native', text: `run failed: ${error.message}`, harmful: true, name: label[viaRedis ? 'redis' : 'local'] })
        console.log(`cross-process, ${feed}: FAILED: ${error.message}`)
      }
    }
    const value = (key, field, format) => results[key] ? format(results[key][field]) : 'failed'
    CROSS_LINES.push(
      `Cross-process fan-out: 3 processes x ${SIZES.cross.toLocaleString('en')} clients, 100 B events (all on core 0 with redis-server; three load clients on core 1).`,
      'On their own, each hub publishes to its own clients; through Redis, one process publishes and all three deliver.',
      '',
      `| figure | ${label.local} | ${label.redis} |`,
      '| --- | --- | --- |',
      `| delivered/s, as fast as taken (bursts of 64) | ${value('paced-local', 'deliveredPerS', si)} | ${value('paced-redis', 'deliveredPerS', si)} |`,
      `| publish to receive p50 / p99 (ms), 100 events/s | ${value('steady-local', 'p50Ms', fixed(2))} / ${value('steady-local', 'p99Ms', fixed(2))} | ${value('steady-redis', 'p50Ms', fixed(2))} / ${value('steady-redis', 'p99Ms', fixed(2))} |`
    )
  }
  const minutes = ((Date.now() - began) / 60_000).toFixed(1)
  const output = [table(), '', '(Nx): how many times better native-sse is than that server in the same run.',
    'Fan-out runs publish as fast as each server takes events (paced by the same rule for all: the',
    'most-behind client may have at most 64 KiB waiting in the server), so their latency is the depth',
    'of the kernel\'s socket buffers, not reported; the latency rows come from a steady feed.']
  if (CROSS_LINES.length) output.push('', ...CROSS_LINES)
  if (RESUMABLE_LINES.length) output.push('', RESUMABLE_LINES[0], '', ...RESUMABLE_LINES.slice(1))
  if (TARGETS.length) output.push('', `Targets${SMOKE ? ' (at smoke sizes: the targets are for the full run)' : ''}:`, ...TARGETS.map((line) => `- ${line}`))
  if (FLAGS.length) output.push('', 'Flags:', ...FLAGS.map((f) => `- ${f.scenario}, ${f.name ?? SERVERS[f.kind].name}: ${f.text}`))
  else output.push('', 'Flags: none (nothing lost, repeated or reordered; no client closed; the load client never saturated its core).')
  console.log(`\n${output.join('\n')}\n\n${minutes} min`)
  if (!SMOKE && !ONLY) writeResults(output.join('\n'), minutes)
  // native-sse itself must never lose, repeat, reorder or cut; the peers' problems are reported.
  if (FLAGS.some((f) => (f.kind === 'native' || f.kind === 'node-transport') && f.harmful)) process.exitCode = 1
}

function writeResults (body, minutes) {
  const cpu = os.cpus()[0]?.model || 'unknown CPU'
  const text = `# Benchmark results

The latest full \`npm run bench\` (${new Date().toISOString().slice(0, 10)}, ${minutes} minutes).

- Machine: ${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}
- Node ${process.version}; servers pinned to core 0, the load client (\`crates/loadgen\`) to core 1
- Command: \`npm run bench\`

${body}
`
  fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), text)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
