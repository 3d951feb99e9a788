'use strict'

// How a scenario measures: each server in a fresh process (bench/server.js) pinned to core 0,
// the Rust load client (crates/loadgen, `sse-load`) pinned to core 1, both stopped at a time
// limit whatever happens; the windows, latencies and damage read from them; and `each`, which
// runs one measurement on every server that takes part and says how it went.

const path = require('node:path')
const readline = require('node:readline')
const { fork, spawn, execFileSync } = require('node:child_process')
const { PIN, pin } = require('./pin')
const { SERVERS, RUNTIMES } = require('./servers')
const { KINDS, CORE_KINDS } = require('./settings')
const { flag, addFlag } = require('./results')

const ROOT = path.join(__dirname, '..')
const LOADGEN = path.join(ROOT, 'target', 'release', 'sse-load')
/** A paced feed holds back while the most-behind client has this much waiting in the server. */
const CREDIT_BYTES_PER_CLIENT = 64 * 1024
/** No run may take longer than this, whatever happens. */
const RUN_LIMIT_MS = 120_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function ensureLoadgen () {
  execFileSync('cargo', ['build', '--release', '-q', '-p', 'sse-load'], { cwd: ROOT, stdio: 'inherit' })
}

/** A server process: `call(op, fields)` sends one message and resolves its reply. */
/**
 * Whether `child` has exited. One killed by a signal has no exit code, only a signal code:
 * waiting for an 'exit' that already came would leave nothing running, and the bench would
 * end silently.
 */
function hasExited (child) {
  return child.exitCode !== null || child.signalCode !== null
}

async function startServer (kind, config) {
  // Libraries' own warnings (MaxListeners on a response awaiting 'drain') are not results.
  // Bun and Deno servers run bench/server.js in that runtime, over the same IPC.
  const runtime = RUNTIMES[SERVERS[kind]?.runtime]
  const [executable, runtimeArgs] = runtime
    ? [runtime.bin, runtime.args]
    : [process.execPath, ['--expose-gc', '--no-warnings', ...(SERVERS[kind]?.nodeFlags ?? []), ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : [])]]
  // Started on its core (not moved there later), so what sizes itself by the cores it may use
  // (native-sse's runtime threads, libuv's pool) sees one core, as in a one-core container.
  const child = fork(path.join(__dirname, 'server.js'), [kind, JSON.stringify(config)], {
    ...(PIN ? { execPath: 'taskset', execArgv: ['-c', '0', executable, ...runtimeArgs] } : { execPath: executable, execArgv: runtimeArgs }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const first = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })
  let queue = Promise.resolve()
  const call = (op, fields = {}) => {
    const reply = queue.then(() => new Promise((resolve, reject) => {
      if (hasExited(child)) return reject(new Error(`${kind} server exited`))
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
    if (hasExited(child)) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  return { port: first.port, pid: child.pid, call, stop }
}

/** The Rust load client: `report()` resolves its totals. */
function startLoad (port, clients, { stalled = 0, connectingAtOnce = 256, acceptEncoding } = {}) {
  const args = ['--port', String(port), '--clients', String(clients), '--stalled', String(stalled), '--connecting-at-once', String(connectingAtOnce),
    ...(acceptEncoding ? ['--accept-encoding', acceptEncoding] : [])]
  const child = spawn(LOADGEN, args, {
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
    if (hasExited(child)) return reject(new Error('the load client exited'))
    waiting.push({ resolve, reject })
    child.stdin.write('report\n')
  })
  const reset = () => child.stdin.write('reset\n')
  const stop = async () => {
    if (hasExited(child)) return
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
    }).catch(async (error) => {
      // Clients the server closed say why in its metrics (a native-sse hub's; others have none).
      const closes = (await server.call('metrics').catch(() => ({}))).metrics?.closes
      if (closes !== undefined) error.message += `; the server closed them as ${JSON.stringify(closes)}`
      throw error
    })
    const cpu1 = await server.call('cpu')
    reaches.push({ ms: r.latency.maxUs / 1000, cpuMs: cpu1.cpuMs - cpu0.cpuMs })
  }
  reaches.sort((a, b) => a.ms - b.ms)
  return reaches[reaches.length >> 1]
}

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
      addFlag({ scenario, kind, text: `run failed: ${error.message}`, harmful: true })
      console.log(`${scenario.padEnd(34)} ${SERVERS[kind].name.padEnd(28)} FAILED: ${error.message}`)
    }
  }
  return results
}

function brief (r) {
  return Object.entries(r).filter(([, v]) => typeof v === 'number' && v !== 0)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(', ')
}

module.exports = { CREDIT_BYTES_PER_CLIENT, RUN_LIMIT_MS, sleep, ensureLoadgen, startServer, startLoad, until, connected, damage, measureWindow, latencyMs, withServer, reachTime, each, brief }
