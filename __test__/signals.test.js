'use strict'
// needs: redis-server

// Signals: the control conduit between the processes of one Redis namespace, through a real
// redis-server (Debian's, started here). hub._sendSignal(payload) publishes on the namespace's
// `{prefix}:signals` channel, and every hub subscribed then, the sender's included, hands the
// payload to hub._onSignal(payload): in order, within milliseconds, waiting out an outage in
// a bounded buffer that drops its oldest. The other processes are real ones
// (fixtures/signal-hub.js); a gate in front of Redis decides which hub reaches it when.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { fork } = require('node:child_process')
const { waitFor, HOST } = require('./helpers')
const { createHub } = require('..')
const { startRedis } = require('../test-support/redis')

const FIXTURE = path.join(__dirname, 'fixtures', 'signal-hub.js')
/** The largest payload, in UTF-8 bytes, and what waits for Redis at most. */
const MAX_SIGNAL_BYTES = 64 * 1024
const MAX_BUFFERED_SIGNALS = 1024

let redis
before(async () => { redis = await startRedis() })
after(async () => { await redis?.close() })

let prefixes = 0
/** A namespace of its own for each test, so tests never see each other's signals. */
const freshPrefix = () => `s${process.pid}-${++prefixes}`
const now = () => performance.timeOrigin + performance.now()
const redisOptions = (url, prefix) => ({ url, prefix, reconnectMinMs: 20, reconnectMaxMs: 200 })

/** A hub of this process on `url` (Redis, or a gate in front of it), with what it heard. */
async function linkedHub (url, prefix) {
  const hub = createHub({ heartbeatMs: 60_000, redis: redisOptions(url, prefix) })
  const signals = []
  const backend = []
  const details = []
  hub._onSignal = (payload) => signals.push({ payload, at: now(), backendEvents: backend.length })
  hub.on('backend', (event) => { backend.push(event.state); details.push(event.detail) })
  let timer
  const late = new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'late') })
  const ready = await Promise.race([hub.ready(), late])
  clearTimeout(timer)
  if (ready === 'late') {
    await hub.close()
    throw new Error(`the hub was not ready within 10 s; 'backend' said: ${details.join(' | ')}`)
  }
  return { hub, signals, backend, payloads: () => signals.map((s) => s.payload) }
}

/** A hub in a process of its own (fixtures/signal-hub.js), driven over IPC. */
async function startProcess (prefix) {
  const child = fork(FIXTURE, [JSON.stringify({ heartbeatMs: 60_000, redis: redisOptions(redis.url, prefix) })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting = new Map()
  const forwarded = []
  child.on('message', (message) => {
    if (message.op === 'signal') return forwarded.push(message)
    waiting.get(message.id)?.(message)
    waiting.delete(message.id)
  })
  const reply = (id, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub process: no reply to ${what} within 30 s`)), 30_000)
    waiting.set(id, (message) => { clearTimeout(timer); resolve(message) })
  })
  let ids = 0
  const ask = (command) => {
    const id = ++ids
    const replied = reply(id, command.op)
    child.send({ id, ...command })
    return replied
  }
  await reply(0, 'start')
  return {
    forwarded,
    send: async (payloads) => (await ask({ op: 'send', payloads })).results,
    forward: (on) => ask({ op: 'forward', on }),
    received: async () => (await ask({ op: 'received' })).received,
    metrics: async () => (await ask({ op: 'metrics' })).redis,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send({ id: ++ids, op: 'close' })
      await exited
    }
  }
}

/**
 * A TCP gate in front of Redis: while shut, it cuts what passes and refuses new connections
 * (a Redis away for the hubs behind it alone), so a test decides which hub is back first.
 */
async function gate () {
  const pairs = new Set()
  let open = true
  const server = net.createServer((downstream) => {
    if (!open) return downstream.destroy()
    const upstream = net.connect(redis.port, HOST)
    const pair = { downstream, upstream }
    pairs.add(pair)
    downstream.pipe(upstream)
    upstream.pipe(downstream)
    const forget = () => {
      pairs.delete(pair)
      downstream.destroy()
      upstream.destroy()
    }
    for (const socket of [downstream, upstream]) {
      socket.on('error', forget)
      socket.on('close', forget)
    }
  })
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  return {
    url: `redis://${HOST}:${server.address().port}`,
    shut () {
      open = false
      for (const { downstream, upstream } of pairs) {
        downstream.destroy()
        upstream.destroy()
      }
    },
    open () { open = true },
    close () {
      this.shut()
      return new Promise((resolve) => server.close(resolve))
    }
  }
}

const numbered = (tag, from, to) => Array.from({ length: to - from }, (_, i) => `${tag}:${from + i}`)

/** Latency figures, in ms; the first signal also opens the sender's connection for signals. */
function figures (latencies) {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  const max = sorted[sorted.length - 1]
  return { median: at(0.5), p90: at(0.9), p99: at(0.99), max, maxAt: latencies.indexOf(max), first: latencies[0] }
}

const describe = ({ median, p90, p99, max, maxAt, first }) =>
  `median ${median.toFixed(2)} ms, p90 ${p90.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms (signal ${maxAt}), first ${first.toFixed(2)} ms`

test('without Redis sendSignal returns false; a payload over 64 KiB of UTF-8 throws ERR_SSE_EVENT_TOO_LARGE and sends nothing, one of 64 KiB goes', async () => {
  const alone = createHub({})
  try {
    assert.equal(alone._sendSignal('nobody hears this'), false)
    assert.throws(() => alone._sendSignal('x'.repeat(MAX_SIGNAL_BYTES + 1)),
      { name: 'RangeError', code: 'ERR_SSE_EVENT_TOO_LARGE' }, 'refused the same without Redis')
    assert.equal(alone.metrics().redis, null)
  } finally {
    await alone.close()
  }

  const prefix = freshPrefix()
  const a = await linkedHub(redis.url, prefix)
  const b = await linkedHub(redis.url, prefix)
  try {
    // 32,769 UTF-16 units but 65,538 bytes: the bound is on what goes to Redis.
    const tooLarge = 'é'.repeat(MAX_SIGNAL_BYTES / 2) + 'x'
    assert.throws(() => a.hub._sendSignal(tooLarge), (error) => {
      assert.equal(error.name, 'RangeError')
      assert.equal(error.code, 'ERR_SSE_EVENT_TOO_LARGE')
      assert.match(error.message, /65537 bytes of UTF-8, more than 65536/)
      return true
    })
    const largest = 'é'.repeat(MAX_SIGNAL_BYTES / 2)
    assert.equal(a.hub._sendSignal(largest), true)
    assert.equal(a.hub._sendSignal('after'), true)
    for (const hub of [a, b]) {
      await waitFor(() => hub.signals.length >= 2, { what: 'both signals' })
      assert.deepEqual(hub.payloads(), [largest, 'after'], 'the refused payload was never sent')
    }
    assert.deepEqual(a.hub.metrics().redis.signals, { buffered: { events: 0, bytes: 0 }, sent: 2, received: 2, dropped: 0, ignored: 0 })
  } finally {
    await a.hub.close()
    await b.hub.close()
  }
})

test('two processes: 1,000 signals sent in one go reach the other process and the sender itself, all in order', { timeout: 60_000 }, async () => {
  const prefix = freshPrefix()
  const here = await linkedHub(redis.url, prefix)
  const there = await startProcess(prefix)
  try {
    const payloads = numbered('there', 0, 1000)
    assert.deepEqual(await there.send(payloads), payloads.map(() => true))
    await waitFor(() => here.signals.length >= 1000, { what: () => `1,000 signals here, got ${here.signals.length}` })
    assert.deepEqual(here.payloads(), payloads)
    const own = await waitFor(async () => { const got = await there.received(); return got.length >= 1000 && got },
      { what: 'the sender to get its own 1,000' })
    assert.deepEqual(own.map((s) => s.payload), payloads)

    // And back: this process's own arrive here too, after the others'.
    const back = numbered('here', 0, 1000)
    for (const payload of back) assert.equal(here.hub._sendSignal(payload), true)
    await waitFor(() => here.signals.length >= 2000, { what: 'this process to get its own 1,000' })
    assert.deepEqual(here.payloads(), [...payloads, ...back])
    const all = await waitFor(async () => { const got = await there.received(); return got.length >= 2000 && got }, { what: 'the other process' })
    assert.deepEqual(all.map((s) => s.payload), [...payloads, ...back])
    const { signals } = await there.metrics()
    assert.equal(signals.sent, 1000)
    assert.equal(signals.received, 2000)
  } finally {
    await there.stop()
    await here.hub.close()
  }
})

test('latency: one signal at a time, 200 times, from a hub to another of the same process and of another process: well under 100 ms', { timeout: 60_000 }, async (t) => {
  const prefix = freshPrefix()
  const a = await linkedHub(redis.url, prefix)
  const b = await linkedHub(redis.url, prefix)
  const there = await startProcess(prefix)
  try {
    await there.forward(true)
    const sameProcess = []
    for (let i = 0; i < 200; i++) {
      const sent = now()
      a.hub._sendSignal(`same:${i}`)
      const got = await waitFor(() => b.signals.find((s) => s.payload === `same:${i}`), { intervalMs: 0, what: `same:${i}` })
      sameProcess.push(got.at - sent)
    }
    // Both clocks are this machine's: `at` is stamped by the other process as it received.
    const otherProcess = []
    for (let i = 0; i < 200; i++) {
      const sent = now()
      a.hub._sendSignal(`other:${i}`)
      const got = await waitFor(() => there.forwarded.find((s) => s.payload === `other:${i}`), { intervalMs: 0, what: `other:${i}` })
      otherProcess.push(got.at - sent)
    }
    const same = figures(sameProcess)
    const other = figures(otherProcess)
    t.diagnostic(`same process: ${describe(same)}`)
    t.diagnostic(`other process: ${describe(other)}`)
    // Sub-millisecond on a quiet machine (see the diagnostics); the bounds leave room for a
    // loaded one, whose scheduler alone can hold a process some 50 ms, and still catch a
    // signal that waits for a timer, a batch or Nagle's algorithm.
    for (const [what, { median, p90, max }] of [['same process', same], ['other process', other]]) {
      assert.ok(median < 10, `${what}: median ${median.toFixed(2)} ms`)
      assert.ok(p90 < 50, `${what}: 90th percentile ${p90.toFixed(2)} ms`)
      assert.ok(max < 1000, `${what}: max ${max.toFixed(2)} ms`)
    }
  } finally {
    await there.stop()
    await a.hub.close()
    await b.hub.close()
  }
})

test('Redis restarted: signals sent while it is away wait in order and go out once the sender is back; the receiver hears all of them', { timeout: 60_000 }, async () => {
  const prefix = freshPrefix()
  const door = await gate()
  // The sender reaches Redis through the gate, so the test lets it back only once the
  // receiver is subscribed again (pub/sub reaches only who is subscribed).
  const sender = await linkedHub(door.url, prefix)
  const receiver = await linkedHub(redis.url, prefix)
  try {
    sender.hub._sendSignal('before')
    await waitFor(() => receiver.signals.length === 1, { what: "'before'" })

    await redis.stop()
    door.shut()
    for (const hub of [sender, receiver]) await waitFor(() => hub.backend.at(-1) === 'down', { what: 'Redis gone' })
    const during = numbered('during', 0, 100)
    for (const payload of during) assert.equal(sender.hub._sendSignal(payload), true)
    const waiting = sender.hub.metrics().redis.signals
    assert.equal(waiting.buffered.events, 100)
    assert.equal(waiting.buffered.bytes, during.join('').length)

    await redis.start()
    await waitFor(() => receiver.backend.at(-1) === 'up', { what: 'the receiver to be back', timeoutMs: 20_000 })
    assert.deepEqual(receiver.payloads(), ['before'], 'nothing went out while Redis was away')
    door.open()
    await waitFor(() => receiver.signals.length === 101, { what: () => `the 100 after the restart, got ${receiver.signals.length - 1}`, timeoutMs: 20_000 })
    assert.deepEqual(receiver.payloads(), ['before', ...during])
    await waitFor(() => sender.hub.metrics().redis.signals.buffered.events === 0, { what: 'the buffer emptied' })
    assert.equal(sender.hub.metrics().redis.signals.dropped, 0)
  } finally {
    if (redis.process === null) await redis.start()
    await sender.hub.close()
    await receiver.hub.close()
    await door.close()
  }
})

test("a hub whose subscription was lost misses the signals sent meanwhile, and its 'backend' events bracket them: down before, up after", { timeout: 60_000 }, async () => {
  const prefix = freshPrefix()
  const door = await gate()
  const sender = await linkedHub(redis.url, prefix)
  const away = await linkedHub(door.url, prefix)
  try {
    sender.hub._sendSignal('before')
    await waitFor(() => away.signals.length === 1, { what: "'before'" })
    assert.deepEqual(away.backend, ['up'])

    door.shut()
    await waitFor(() => away.backend.at(-1) === 'down', { what: "'backend' down" })
    sender.hub._sendSignal('missed')
    await waitFor(() => sender.signals.length === 2, { what: "the sender's own 'missed'" })
    door.open()
    await waitFor(() => away.backend.at(-1) === 'up', { what: "'backend' up again", timeoutMs: 20_000 })
    // Resubscribed to the signals too, not only to the announcements.
    sender.hub._sendSignal('after')
    await waitFor(() => away.signals.length === 2, { what: "'after'" })
    assert.deepEqual(away.payloads(), ['before', 'after'])
    assert.deepEqual(away.backend, ['up', 'down', 'up'])
    assert.deepEqual(away.signals.map((s) => s.backendEvents), [1, 3], "'before' heard while up, 'after' once up again")
  } finally {
    await sender.hub.close()
    await away.hub.close()
    await door.close()
  }
})

test('the bound: past 1,024 signals or 1 MiB waiting for Redis, the oldest are dropped and counted, the rest go out in order', { timeout: 60_000 }, async () => {
  const prefix = freshPrefix()
  const door = await gate()
  const sender = await linkedHub(door.url, prefix)
  const receiver = await linkedHub(redis.url, prefix)
  try {
    door.shut()
    await waitFor(() => sender.backend.at(-1) === 'down', { what: 'the sender cut off' })
    const sent = numbered('n', 0, MAX_BUFFERED_SIGNALS + 10)
    for (const payload of sent) assert.equal(sender.hub._sendSignal(payload), true)
    let { signals } = sender.hub.metrics().redis
    assert.equal(signals.buffered.events, MAX_BUFFERED_SIGNALS)
    assert.equal(signals.dropped, 10)
    door.open()
    await waitFor(() => receiver.signals.length >= MAX_BUFFERED_SIGNALS, { what: () => `1,024 signals, got ${receiver.signals.length}`, timeoutMs: 20_000 })
    assert.deepEqual(receiver.payloads(), sent.slice(10), 'the 10 oldest dropped, the rest in order')

    // By bytes: 17 of the largest payload are 1 MiB and 64 KiB.
    await waitFor(() => sender.hub.metrics().redis.signals.buffered.events === 0, { what: 'the buffer emptied' })
    door.shut()
    await waitFor(() => sender.backend.at(-1) === 'down', { what: 'the sender cut off again' })
    const large = Array.from({ length: 17 }, (_, i) => `${i}`.padEnd(MAX_SIGNAL_BYTES, '.'))
    for (const payload of large) sender.hub._sendSignal(payload)
    signals = sender.hub.metrics().redis.signals
    assert.deepEqual(signals.buffered, { events: 16, bytes: 16 * MAX_SIGNAL_BYTES })
    assert.equal(signals.dropped, 11)
    door.open()
    await waitFor(() => receiver.signals.length >= MAX_BUFFERED_SIGNALS + 16, { what: 'the 16 large ones', timeoutMs: 20_000 })
    assert.deepEqual(receiver.payloads().slice(MAX_BUFFERED_SIGNALS), large.slice(1))
  } finally {
    await sender.hub.close()
    await receiver.hub.close()
    await door.close()
  }
})

test('what arrives on the channel is untrusted text: passed on as published, or ignored and counted when not UTF-8 or over 64 KiB', async () => {
  const prefix = freshPrefix()
  const hub = await linkedHub(redis.url, prefix)
  const channel = `{${prefix}}:signals`
  try {
    // Published by anything with the right to (redis-cli here), a signal like any other.
    assert.equal(await redis.cli('PUBLISH', channel, 'from redis-cli'), '1')
    assert.equal(await redis.cli('EVAL', `redis.call('PUBLISH', KEYS[1], string.char(255, 254)); return 1`, '1', channel), '1')
    assert.equal(await redis.cli('EVAL', `redis.call('PUBLISH', KEYS[1], string.rep('x', ${MAX_SIGNAL_BYTES + 1})); return 1`, '1', channel), '1')
    assert.equal(await redis.cli('EVAL', `redis.call('PUBLISH', KEYS[1], string.rep('x', ${MAX_SIGNAL_BYTES})); return 1`, '1', channel), '1')
    await waitFor(() => hub.signals.length === 2, { what: 'the two signals' })
    assert.deepEqual(hub.payloads(), ['from redis-cli', 'x'.repeat(MAX_SIGNAL_BYTES)])
    const { signals } = hub.hub.metrics().redis
    assert.equal(signals.received, 2)
    assert.equal(signals.ignored, 2)
  } finally {
    await hub.hub.close()
  }
})

test("the scaling guide's ACL lets the hubs signal each other and no other user into the channel; a rule without the signals channel keeps a hub down, saying why", { timeout: 60_000 }, async () => {
  const guide = fs.readFileSync(path.join(__dirname, '..', 'docs', 'SCALING.md'), 'utf8')
  const rule = /```\n(ACL SETUSER native-sse [^\n]+)\n```/.exec(guide)
  assert.ok(rule, 'docs/SCALING.md shows the ACL rule')
  assert.equal(await redis.cli(...rule[1].split(' ')), 'OK')
  const url = redis.url.replace('redis://', 'redis://native-sse:change-me@')
  const a = await linkedHub(url, 'app')
  const b = await linkedHub(url, 'app')
  try {
    a.hub._sendSignal('through the guide\'s rule')
    for (const hub of [a, b]) await waitFor(() => hub.signals.length === 1, { what: 'the signal' })
    assert.deepEqual(b.payloads(), ['through the guide\'s rule'])
    assert.deepEqual([...a.backend, ...b.backend], ['up', 'up'], 'no NOPERM along the way')
    // redis-cli prints an error reply and exits 0.
    assert.equal(await redis.cli('ACL', 'SETUSER', 'other-app', 'on', '>other', 'resetchannels', '&other:*', '+@all'), 'OK')
    assert.match(await redis.cli('--user', 'other-app', '--pass', 'other', '--no-auth-warning', 'PUBLISH', '{app}:signals', 'forged'), /NOPERM/)
  } finally {
    await a.hub.close()
    await b.hub.close()
  }

  // The rule as it was before signals: the hub never comes up, and says which channel.
  assert.equal(await redis.cli('ACL', 'SETUSER', 'earlier', 'on', '>earlier', ...rule[1].split(' ').slice(5).filter((arg) => arg !== '&{app}:signals')), 'OK')
  const earlier = createHub({ heartbeatMs: 60_000, redis: redisOptions(redis.url.replace('redis://', 'redis://earlier:earlier@'), 'app') })
  const backend = []
  earlier.on('backend', (event) => backend.push(event))
  try {
    await waitFor(() => backend.length > 0, { what: "a 'backend' event" })
    assert.equal(backend[0].state, 'down')
    assert.match(backend[0].detail, /NOPERM.*\{app\}:signals/)
    assert.equal(earlier.metrics().redis.connected, false)
  } finally {
    await earlier.close()
  }
})
