'use strict'
// needs: nothing

// A fuzz of the public API: random values of every type into every method and option. Each
// call either works or throws a documented error (a TypeError or RangeError, or an Error for
// a state, with an ERR_SSE_* code other than ERR_SSE_INTERNAL); the process never crashes and
// nothing hangs. Clients watching on both transports receive exactly what the accepted calls
// sent them: every data and comment carries a token, and no token of a rejected call ever
// reaches a wire, and the counts of events, comment lines and retries match the accepted calls.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { startHttp, rawClient, waitFor, HOST } = require('./helpers')
const { request } = require('undici')

const ITERATIONS = 4000
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9)
const STATE_CODES = new Set(['ERR_SSE_HUB_CLOSED', 'ERR_SSE_CLIENT_CLOSED', 'ERR_SSE_TRANSPORT_UNAVAILABLE'])
/** What a value from the pool throws when touched: the caller's own error, passed through. */
class CallerError extends Error {}

/** mulberry32: a small seeded generator, so a failure can be replayed with FUZZ_SEED. */
function generator (seed) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n) => Math.floor(next() * n)
  const pick = (items) => items[int(items.length)]
  return { next, int, pick }
}

const OPTION_NAMES = [
  'heartbeatMs', 'writeTimeoutMs', 'maxLagEvents', 'maxLagBytes', 'maxEventBytes', 'overflow', 'highWaterMark',
  'history', 'resetEvent', 'lastEventIdQuery', 'retryMs', 'workerThreads', 'maxClients', 'retryAfterSeconds',
  'transport', 'channels', 'maxEvents', 'maxBytes', 'maxAgeMs', 'drainMs', 'spreadMs', 'retryJitterMs', 'finalEvent',
  'prefix', 'labels', 'perChannel', 'end', 'data', 'event', 'id', 'retry', 'heartbeat', '__proto__', 'constructor'
]

function valuePool (random) {
  const cyclic = {}
  cyclic.self = cyclic
  const throwing = new Proxy({}, {
    get () { throw new CallerError('proxy get') },
    has () { throw new CallerError('proxy has') },
    ownKeys () { throw new CallerError('proxy ownKeys') },
    getPrototypeOf () { throw new CallerError('proxy getPrototypeOf') }
  })
  const SCALARS = [
    undefined, null, true, false, 0, -0, 1, -1, 1.5, 7, 1000, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53 + 2, 1e300,
    Number.MIN_VALUE, 10n, -1n, Symbol('s'), '', ' ', 'a', 'b', 'x\ny', 'x\r\ny', '\r', '\n', '\0', 'x\0y', ':', 'message',
    'native', 'node', 'auto', 'disconnect', 'drop-oldest', 'sse_', '🙂', '\uD800', 'é'.repeat(300),
    () => {}, class Thing {}, new Date(0), new Map([[1, 2]]), new Set([1]), /re/, Buffer.from('buf\nfer'),
    new Uint8Array([104, 105]), new ArrayBuffer(4), Object.create(null), cyclic, throwing,
    { toJSON () { throw new CallerError('toJSON') } }, { toString () { throw new CallerError('toString') } },
    [], [1, 'two'], ['a'], ['a', 'a'], [''], 'x'.repeat(200_000), 'y'.repeat(9 * 1024 * 1024)
  ]
  const scalars = () => random.pick(SCALARS)
  const value = (depth = 0) => {
    const kind = random.int(depth > 1 ? 1 : 4)
    if (kind === 0) return scalars()
    if (kind === 1) return Array.from({ length: random.int(4) }, () => value(depth + 1))
    // An options-like object: known names mostly, with random values.
    const object = {}
    for (let i = random.int(4); i > 0; i--) object[random.pick(OPTION_NAMES)] = value(depth + 1)
    return object
  }
  return value
}

/** The error is one the documentation promises (or the caller's own, passed through). */
function assertDocumented (error, what) {
  if (error instanceof CallerError) return
  const code = error && error.code
  assert.ok(typeof code === 'string' && /^ERR_SSE_[A-Z_]+$/.test(code), `${what}: undocumented error ${error && error.stack}`)
  assert.notEqual(code, 'ERR_SSE_INTERNAL', `${what}: internal error ${error.stack}`)
  if (STATE_CODES.has(code)) return
  assert.ok(error instanceof TypeError || error instanceof RangeError, `${what}: ${code} is a ${error.constructor.name}`)
  assert.ok(error.message.length > 10, `${what}: ${code} says what to do`)
}

const lineCount = (text) => text.split(/\r\n|\r|\n/).length

/** A value as text for the harness's own use (some values have no string form). */
function textOf (value) {
  try {
    return String(value)
  } catch {
    return 'unprintable'
  }
}

/** A copy of an options-like value's own keys, or {} where it has none to copy. */
function spreadOf (value) {
  try {
    return value !== null && typeof value === 'object' ? { ...value } : {}
  } catch {
    return {}
  }
}

test(`API fuzz: ${ITERATIONS} random calls give documented errors only, and nothing rejected reaches a wire (seed ${SEED})`, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`)
  const random = generator(SEED)
  const value = valuePool(random)
  const hub = createHub({ heartbeatMs: 600_000 })
  const attached = []
  const attachOptions = new Map()
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    const fuzzed = url.searchParams.get('fuzz')
    if (fuzzed !== null) {
      // attach() with random options on a real request: it works, or throws before writing.
      try {
        hub.attach(req, res, attachOptions.get(fuzzed))
      } catch (error) {
        assertDocumented(error, 'attach')
        assert.equal(res.headersSent, false, 'a rejected attach wrote nothing')
        res.writeHead(418).end('rejected')
      }
      return
    }
    attached.push(hub.attach(req, res, { transport: url.searchParams.get('transport'), channels: ['a'] }))
  })
  const watchers = [
    rawClient(http.port, { path: '/?transport=native' }),
    rawClient(http.port, { path: '/?transport=node' }),
    rawClient(http.port, { path: '/?transport=native' })
  ]
  const scratchHubs = []
  try {
    await waitFor(() => attached.length === 3 && watchers.every((w) => w.comments.length === 1), { what: 'three watchers' })
    const [first, second, scratch] = attached
    const expected = new Map(attached.map((client) => [client, { events: 0, commentLines: 0, retries: 0 }]))
    const accepted = new Set()
    const rejected = new Set()
    let nextToken = 0
    /** `data` with a token in it, where its type can carry one. */
    const tokened = (data, token) => {
      if (typeof data === 'string') return `tok${token}:${data}`
      if (ArrayBuffer.isView(data)) {
        return Buffer.concat([Buffer.from(`tok${token}:`), Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
      }
      if (data !== null && typeof data === 'object' && !(data instanceof ArrayBuffer)) {
        return { tok: `tok${token}`, value: data }
      }
      return data
    }
    /** A message-like value: usually an object with data, sometimes anything. */
    const message = (token) => {
      if (random.int(8) === 0) return value()
      const fields = value()
      const result = Array.isArray(fields) ? {} : spreadOf(fields)
      if (random.int(6) !== 0) result.data = tokened(random.int(3) === 0 ? value() : textOf(value(2)), token)
      for (const name of ['event', 'id', 'retry']) {
        if (random.int(3) === 0) result[name] = value(2)
      }
      return result
    }
    /** Who an accepted message reaches among the watchers, and what it adds for each. */
    const reached = (targets, sent) => {
      for (const client of targets) {
        const counts = expected.get(client)
        if (counts === undefined) continue
        if (sent.data !== undefined) counts.events++
        if (sent.retry !== undefined) counts.retries++
      }
    }
    const watched = [first, second, scratch]
    const calls = [
      ['hub.broadcast', (token) => { const m = message(token); hub.broadcast(m); reached(watched, m) }],
      ['hub.publish', (token) => {
        const channel = random.int(2) === 0 ? 'a' : value()
        const m = message(token)
        hub.publish(channel, m)
        if (channel === 'a') reached(watched, m)
      }],
      ['channel.publish', (token) => {
        const m = message(token)
        hub.channel('a').publish(m)
        reached(watched, m)
      }],
      ['client.send', (token) => {
        const client = random.pick([first, second])
        const m = message(token)
        client.send(m)
        reached([client], m)
      }],
      ['hub.comment', (token) => {
        const text = random.int(5) === 0 ? value() : `tok${token}:${textOf(value(2))}`
        hub.comment(text)
        for (const client of watched) {
          const counts = expected.get(client)
          if (counts !== undefined) counts.commentLines += lineCount(text)
        }
      }],
      ['client.comment', (token) => {
        const client = random.pick([first, second])
        const text = random.int(5) === 0 ? value() : `tok${token}:${textOf(value(2))}`
        client.comment(text)
        expected.get(client).commentLines += lineCount(text)
      }],
      // The scratch client's subscriptions change; nothing is published to other channels'
      // names it could join but through hub.publish with random names, which it may then get:
      // it is watched for tokens only.
      ['client.subscribe', () => { expected.delete(scratch); scratch.subscribe(value()) }],
      ['client.unsubscribe', () => { expected.delete(scratch); scratch.unsubscribe(value()) }],
      ['client.writable', () => { scratch.writable(value()).destroy() }],
      ['hub.channel', () => { hub.channel(value(), value()) }],
      ['hub.channel().size', () => { void hub.channel(value()).size }],
      ['hub.metrics', () => { hub.metrics(value()) }],
      ['hub.metricsText', () => { hub.metricsText(value()) }],
      ['createHub', () => { scratchHubs.push(createHub(value())) }],
      ['hub.close', () => {
        const other = createHub()
        scratchHubs.push(other)
        other.close(value()).catch(() => {})
      }]
    ]
    const counts = Object.fromEntries(calls.map(([name]) => [name, { accepted: 0, rejected: 0 }]))
    for (let i = 0; i < ITERATIONS; i++) {
      const [name, call] = random.pick(calls)
      const token = nextToken++
      // Work on a copy of the expectations, kept only when the call is accepted.
      const before = [...expected].map(([client, c]) => [client, { ...c }])
      try {
        call(token)
        accepted.add(token)
        counts[name].accepted++
      } catch (error) {
        assertDocumented(error, name)
        rejected.add(token)
        counts[name].rejected++
        for (const [client, c] of before) if (expected.has(client)) expected.set(client, c)
      }
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve))
    }
    t.diagnostic(Object.entries(counts).map(([name, c]) => `${name} ${c.accepted}/${c.rejected}`).join(', ') + ' (accepted/rejected)')
    assert.ok(accepted.size > ITERATIONS / 10 && rejected.size > ITERATIONS / 10, 'the fuzz exercises both outcomes')

    // attach() with random options, on real requests.
    let attachRejected = 0
    for (let i = 0; i < 200; i++) {
      attachOptions.set(String(i), random.int(4) === 0 ? value() : { ...spreadOf(value()), transport: random.pick(['native', 'node', 'auto', value()]) })
      const response = await request(`http://${HOST}:${http.port}/?fuzz=${i}`, { headersTimeout: 5000 })
      if (response.statusCode === 418) {
        attachRejected++
        assert.equal(await response.body.text(), 'rejected')
      } else {
        assert.equal(response.statusCode, 200)
        assert.match(response.headers['content-type'], /^text\/event-stream/)
        response.body.destroy()
      }
    }
    t.diagnostic(`attach: ${200 - attachRejected} accepted, ${attachRejected} rejected`)
    assert.ok(attachRejected > 20 && attachRejected < 200)

    // The end marker, then every watcher's stream is compared with what was accepted.
    hub.broadcast({ data: 'the end' })
    await waitFor(() => watchers.every((w) => w.events.some((e) => e.data === 'the end')),
      { what: 'every watcher to get the end marker', timeoutMs: 30_000 })
    for (const [i, watcher] of watchers.entries()) {
      const client = attached[i]
      const seen = new Set()
      for (const text of [...watcher.events.map((e) => e.data), ...watcher.comments]) {
        // `tok12:` leads strings and bytes; `"tok12"` is the tok field of JSON data.
        for (const match of text.matchAll(/tok(\d+)(?::|")/g)) seen.add(Number(match[1]))
      }
      const leaked = [...seen].filter((token) => rejected.has(token))
      assert.deepEqual(leaked, [], `watcher ${i} received data of rejected calls`)
      if (!expected.has(client)) continue
      const want = expected.get(client)
      assert.equal(watcher.events.length - 1, want.events, `watcher ${i}: events`)
      assert.equal(watcher.comments.length - 1, want.commentLines, `watcher ${i}: comment lines`)
      assert.equal(watcher.retries.length, want.retries, `watcher ${i}: retries`)
    }
    assert.equal(hub.size >= 3, true)
    assert.ok(attached.slice(0, 3).every((client) => client.closeReason === null), 'no watcher was cut')
  } finally {
    for (const watcher of watchers) watcher.reset()
    await Promise.all(scratchHubs.map((h) => h.close().catch(() => {})))
    await hub.close()
    await http.close()
  }
})
