'use strict'

// What authorization rules cost, in one run: the connect path (N clients attach and open their
// stream with no rule, one sync rule, one async rule answering on the next tick) and the
// publish path (events delivered to 1,000 subscribers of a guarded channel, of an unguarded
// one in a hub with rules, of one in a hub without). Each server is a fresh process pinned to
// core 0, the Rust load client (crates/loadgen) to core 1; rounds alternate the order of the
// modes and the median is kept. Compare the ratios: absolute figures drift between runs.
//
//   node bench/authorization.js                      2,000 connects, 10,000 events x 1,000, 3 rounds
//   node bench/authorization.js --smoke              small sizes, one round (seconds)
//   node bench/authorization.js --clients 5000 --rounds 5
//   node bench/authorization.js --only fanout        (or connects)
//
// A standalone script, not a scenario of bench/run.js: the scenarios there compare libraries
// through bench/servers.js's one shape (broadcast to every client), while this compares one
// hub with and without rules, subscribed to a channel, and reads the JS thread's own CPU
// time. It still uses the harness's load client and pinning. Loopback only; every wait is
// bounded, and the whole run is stopped after RUN_LIMIT_MS whatever happens.

const fs = require('node:fs')
const http = require('node:http')
const { fork } = require('node:child_process')

const RUN_LIMIT_MS = 10 * 60_000
const CHANNEL = 'room:1'
const OPEN_CHANNEL = 'lobby'

/** CPU time of this process's main thread (the JS thread), in ms: its schedstat, in ns. */
function jsThreadMs () {
  const ns = Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
  return ns / 1e6
}

/** The whole process's CPU time in ms (the JS thread, the Rust runtime's, libuv's). */
function processMs () {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

// ---------------------------------------------------------------------------------------------
// The server: `node bench/authorization.js --server <config JSON>`, driven over IPC.

async function serve ({ mode, channel, expect }) {
  const { createHub } = require('..')
  const { payload } = require('./servers')
  const hub = createHub({ heartbeatMs: 60_000 })
  if (mode === 'sync') {
    hub.authorize('room:{id}', ({ params, request }) => request.method === 'GET' && params.id === '1')
  } else if (mode === 'async') {
    hub.authorize('room:{id}', ({ params, request }) => new Promise((resolve) => process.nextTick(resolve, request.method === 'GET' && params.id === '1')))
  }
  // From the first request to the `expect`-th stream opened: the wall and the CPU times.
  let first = null
  let opened = 0
  let done = null
  hub.on('connect', () => {
    if (++opened === expect) done = { at: performance.now(), jsMs: jsThreadMs(), processMs: processMs() }
  })
  const server = http.createServer((req, res) => {
    if (first === null) first = { at: performance.now(), jsMs: jsThreadMs(), processMs: processMs() }
    hub.attach(req, res, { channels: [channel] })
  })
  server.maxConnections = 100_000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

  const tick = () => new Promise((resolve) => setImmediate(resolve))
  const handlers = {
    size: () => ({ size: hub.size }),
    connects: () => done === null
      ? { done: false, opened }
      : { done: true, opened, wallMs: done.at - first.at, jsMs: done.jsMs - first.jsMs, processMs: done.processMs - first.processMs },
    /** `events` of `bytes` to the channel, `burst` per turn of the event loop. */
    async publish ({ events, burst, bytes }) {
      const js0 = jsThreadMs()
      const started = performance.now()
      let delivered = 0
      for (let seq = 0; seq < events;) {
        for (let i = 0; i < burst && seq < events; i++) delivered += hub.publish(channel, { data: payload(seq++, bytes) })
        await tick()
      }
      return { publishMs: performance.now() - started, jsMs: jsThreadMs() - js0, recipients: delivered }
    },
    cpu: () => ({ jsMs: jsThreadMs(), processMs: processMs() })
  }
  process.on('message', async (message) => {
    try {
      process.send({ ok: true, ...(await handlers[message.op](message)) })
    } catch (error) {
      process.send({ ok: false, error: String(error?.stack || error) })
    }
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ port: server.address().port })
}

// ---------------------------------------------------------------------------------------------
// The run.

/** A server process on core 0 (started there, so the hub sizes its runtime for one core). */
async function startServer (config) {
  const { PIN } = require('./pin')
  const child = fork(__filename, ['--server', JSON.stringify(config)], {
    ...(PIN ? { execPath: 'taskset', execArgv: ['-c', '0', process.execPath, '--no-warnings'] } : { execArgv: ['--no-warnings'] }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const first = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
  let queue = Promise.resolve()
  const call = (op, fields = {}) => {
    const reply = queue.then(() => new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`server exited during '${op}'`))
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
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  return { port: first.port, call, stop }
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]

/** One round of connects: `clients` streams to a fresh server of `mode`. */
async function connects (mode, clients) {
  const { startLoad, until } = require('./harness')
  const server = await startServer({ mode, channel: CHANNEL, expect: clients })
  const load = startLoad(server.port, clients)
  try {
    const r = await until(`${clients} streams (${mode})`, async () => {
      const c = await server.call('connects')
      return c.done ? c : null
    }, 120_000)
    const report = await load.report()
    if (report.refused + report.failed > 0) throw new Error(`${mode}: ${report.refused} refused, ${report.failed} failed`)
    return {
      connectsPerS: clients / (r.wallMs / 1000),
      jsMsPerConnect: r.jsMs / clients,
      processMsPerConnect: r.processMs / clients
    }
  } finally {
    await load.stop()
    await server.stop()
  }
}

/** One round of fan-out: `events` published to `subscribers` clients of `channel` on a server of `mode`. */
async function fanout (mode, channel, subscribers, events) {
  const { startLoad, until, connected } = require('./harness')
  const server = await startServer({ mode, channel, expect: subscribers })
  const load = startLoad(server.port, subscribers)
  try {
    await connected(server, load, subscribers)
    const cpu0 = await server.call('cpu')
    const started = performance.now()
    const published = await server.call('publish', { events, burst: 100, bytes: 100 })
    let r
    await until(`${events} events at each of ${subscribers} clients (${mode}, ${channel})`, async () => {
      r = await load.report()
      return r.readingMinEvents >= events
    }, 120_000)
    const seconds = (performance.now() - started) / 1000
    const cpu1 = await server.call('cpu')
    if (r.lost + r.duplicated + r.reordered + r.closed + r.withoutSequence > 0) {
      throw new Error(`${mode}: lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}, closed ${r.closed}`)
    }
    if (published.recipients !== events * subscribers) throw new Error(`${mode}: ${published.recipients} recipients, not ${events * subscribers}`)
    return {
      deliveredPerS: (events * subscribers) / seconds,
      publishJsUsPerEvent: (published.jsMs * 1000) / events,
      serverCpuSPerMillion: ((cpu1.processMs - cpu0.processMs) / 1000) / (events * subscribers / 1e6)
    }
  } finally {
    await load.stop()
    await server.stop()
  }
}

function table (title, rows, columns) {
  console.log(`\n${title}`)
  const base = rows[0]
  for (const row of rows) {
    const cells = columns.map(({ key, label, digits }) => {
      const ratio = row === base ? '' : ` (${(row[key] / base[key]).toFixed(2)}x)`
      return `${label} ${row[key].toFixed(digits)}${ratio}`
    })
    console.log(`  ${row.name.padEnd(34)} ${cells.join('   ')}`)
  }
}

async function main () {
  const args = process.argv.slice(2)
  const option = (name, fallback) => args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback
  const smoke = args.includes('--smoke')
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null
  const clients = option('--clients', smoke ? 300 : 2000)
  const rounds = option('--rounds', smoke ? 1 : 3)
  const subscribers = option('--subscribers', smoke ? 200 : 1000)
  const events = option('--events', smoke ? 1000 : 10_000)
  const { ensureLoadgen } = require('./harness')
  const { PIN } = require('./pin')
  const os = require('node:os')
  ensureLoadgen()
  const limit = setTimeout(() => { console.error(`stopped after ${RUN_LIMIT_MS / 60_000} min`); process.exit(1) }, RUN_LIMIT_MS)
  limit.unref()
  console.log(`authorization bench: Node ${process.version}, ${os.availableParallelism()} cores${PIN ? ', servers on core 0, load client on core 1' : ' (not pinned)'}; ` +
    `${clients.toLocaleString('en')} connects, ${events.toLocaleString('en')} events to ${subscribers.toLocaleString('en')} subscribers, median of ${rounds} round(s)`)

  const connectModes = ['none', 'sync', 'async']
  const connectResults = Object.fromEntries(connectModes.map((m) => [m, []]))
  const fanoutCases = [
    { name: 'no rules, channel room:1', mode: 'none', channel: CHANNEL },
    { name: 'guarded room:1 (sync rule)', mode: 'sync', channel: CHANNEL },
    { name: 'guarded room:1 (async rule)', mode: 'async', channel: CHANNEL },
    { name: 'unguarded lobby, hub with a rule', mode: 'sync', channel: OPEN_CHANNEL }
  ]
  const fanoutResults = fanoutCases.map(() => [])
  for (let round = 0; round < rounds; round++) {
    // Rotate the order, so that no mode always runs first (or last) in a round.
    for (let k = 0; k < (only === 'fanout' ? 0 : connectModes.length); k++) {
      const mode = connectModes[(round + k) % connectModes.length]
      const r = await connects(mode, clients)
      connectResults[mode].push(r)
      console.log(`  round ${round + 1} connects ${mode.padEnd(6)} ${Math.round(r.connectsPerS)} /s, JS ${(r.jsMsPerConnect * 1000).toFixed(1)} µs, process ${(r.processMsPerConnect * 1000).toFixed(1)} µs per connect`)
    }
    for (let k = 0; k < (only === 'connects' ? 0 : fanoutCases.length); k++) {
      const at = (round + k) % fanoutCases.length
      const { name, mode, channel } = fanoutCases[at]
      const r = await fanout(mode, channel, subscribers, events)
      fanoutResults[at].push(r)
      console.log(`  round ${round + 1} fan-out ${name.padEnd(34)} ${(r.deliveredPerS / 1e6).toFixed(2)} M/s, publish JS ${r.publishJsUsPerEvent.toFixed(2)} µs per event`)
    }
  }
  const summary = (results) => ({
    ...Object.fromEntries(Object.keys(results[0]).map((key) => [key, median(results.map((r) => r[key]))])),
    // Throughput is that of the last subscriber to finish: one straggler (the kernel, a GC)
    // slows a whole round, so the best round says what the path itself allows.
    ...('deliveredPerS' in results[0] ? { bestDeliveredPerS: Math.max(...results.map((r) => r.deliveredPerS)) } : {})
  })
  if (only !== 'fanout') {
    table(`connect and open ${clients.toLocaleString('en')} clients to ${CHANNEL} (median of ${rounds}; ratio to no rules)`,
      connectModes.map((mode) => ({ name: { none: 'no rules', sync: 'one sync rule', async: 'one async rule (next tick)' }[mode], ...summary(connectResults[mode]) })),
      [{ key: 'connectsPerS', label: 'connects/s', digits: 0 },
        { key: 'jsMsPerConnect', label: 'JS thread ms/connect', digits: 4 },
        { key: 'processMsPerConnect', label: 'process CPU ms/connect', digits: 4 }])
  }
  if (only !== 'connects') {
    table(`publish ${events.toLocaleString('en')} events of 100 B to ${subscribers.toLocaleString('en')} subscribers (median of ${rounds}; ratio to no rules)`,
      fanoutCases.map(({ name }, i) => ({ name, ...summary(fanoutResults[i]) })),
      [{ key: 'deliveredPerS', label: 'delivered/s', digits: 0 },
        { key: 'bestDeliveredPerS', label: 'best round', digits: 0 },
        { key: 'publishJsUsPerEvent', label: 'publish JS µs/event', digits: 2 },
        { key: 'serverCpuSPerMillion', label: 'server CPU s per M deliveries', digits: 3 }])
  }
}

if (process.argv[2] === '--server') {
  serve(JSON.parse(process.argv[3])).catch((error) => { console.error(error); process.exit(1) })
} else {
  main().then(() => process.exit(0), (error) => { console.error(error); process.exit(1) })
}
