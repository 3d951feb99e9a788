'use strict'
// needs: nothing

// Subscriptions change at any time: a client subscribed mid-stream gets what is published
// from then on, and nothing after it unsubscribes; channels come and go with subscribers.

const { test, describe } = require('node:test')
const { performance } = require('node:perf_hooks')
const assert = require('node:assert/strict')
const { createHub, Channel, defaults } = require('..')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, startHttp, rawClient, waitFor, ended } = require('./helpers')

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test('subscribe and unsubscribe mid-stream take effect from the call on', async () => {
      const hub = createHub({ heartbeatMs: 60_000 })
      let client
      const raw = await openStream((req, res) => { client = hub.attach(req, res, { transport }) })
      try {
        const news = hub.channel('news')
        assert.ok(news instanceof Channel)
        assert.equal(news.publish({ data: 'before' }), 0, 'nobody is subscribed yet')
        assert.equal(client.subscribe('news'), true)
        assert.equal(client.subscribe('news'), false, 'subscribed already')
        assert.equal(news.size, 1)
        assert.equal(news.publish({ data: 'during 1' }), 1)
        client.send({ data: 'direct' })
        hub.broadcast({ data: 'to all' })
        news.publish({ data: 'during 2' })
        assert.equal(client.unsubscribe('news'), true)
        assert.equal(client.unsubscribe('news'), false)
        assert.equal(news.size, 0)
        assert.equal(news.publish({ data: 'after' }), 0)
        hub.broadcast({ data: 'end' })
        await raw.waitFor((e) => e.data === 'end')
        assert.deepEqual(raw.events.map((e) => e.data), ['during 1', 'direct', 'to all', 'during 2', 'end'])
        assert.throws(() => client.subscribe(''), (error) => error.code === 'ERR_SSE_INVALID_CHANNEL')
        assert.throws(() => hub.channel(42), (error) => error.code === 'ERR_SSE_INVALID_CHANNEL')
        await raw.close()
        await waitFor(() => client.closed, { what: 'the client to leave' })
        assert.equal(client.subscribe('news'), false, 'a closed client subscribes to nothing')
      } finally {
        await raw.close()
        await hub.close()
      }
    })
  })
}

test('a channel whose last subscriber leaves releases its log', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res, { channels: ['c'] })))
  try {
    const stalled = rawClient(http.port, { paced: true })
    await waitFor(() => clients.length === 1, { what: 'the client' })
    for (let i = 0; i < 5000; i++) hub.publish('c', { data: 'x'.repeat(1000) })
    await waitFor(() => hub.metrics().held.bytes > 0, { what: 'the log to hold the backlog' })
    stalled.socket.destroy()
    await waitFor(() => hub.size === 0, { what: 'the client to leave' })
    assert.equal(hub.channel('c').size, 0)
    assert.equal(hub.metrics().held.bytes, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('names and ids that are not well-formed Unicode are refused, never rewritten into one another', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const attachErrors = []
  const listener = (req, res) => {
    const channels = req.url === '/lone' ? ['\uD800'] : ['\uFFFD']
    try {
      hub.attach(req, res, { channels })
    } catch (error) {
      attachErrors.push(error)
      res.end('refused')
    }
  }
  // U+FFFD itself is a fine name: it is what a lone surrogate used to become.
  const replacement = await openStream(listener, { path: '/replacement' })
  try {
    const lone = await openStream(listener, { path: '/lone' })
    assert.equal(await ended(lone), 'end')
    assert.equal(lone.body, 'refused', 'the application answered')
    assert.equal(replacement.status, 200)
    assert.deepEqual(attachErrors.map((e) => [e.constructor.name, e.code]), [['TypeError', 'ERR_SSE_INVALID_CHANNEL']])
    assert.match(attachErrors[0].message, /"\\ud800" is not well-formed Unicode/)
    const refused = (fn, code) => assert.throws(fn, (e) => e instanceof TypeError && e.code === code && /not well-formed Unicode/.test(e.message))
    refused(() => hub.publish('\uDFFF', { data: 'to a lone surrogate' }), 'ERR_SSE_INVALID_CHANNEL')
    refused(() => hub.channel('\uD800x'), 'ERR_SSE_INVALID_CHANNEL')
    refused(() => hub.broadcast({ event: 'e\uDC00', data: 'x' }), 'ERR_SSE_INVALID_MESSAGE')
    refused(() => hub.broadcast({ id: '\uD83D', data: 'x' }), 'ERR_SSE_INVALID_MESSAGE')
    // What a refused call had sent would come before it.
    hub.publish('\uFFFD', { data: 'for the U+FFFD channel' })
    await replacement.waitFor((e) => e.data === 'for the U+FFFD channel')
    assert.deepEqual(replacement.events.map((e) => e.data), ['for the U+FFFD channel'], 'nothing refused reached it')
  } finally {
    await replacement.close()
    await hub.close()
  }
})

test('attaching with many channels and leaving cost time linear in the channels, not quadratic', { timeout: 120_000 }, async (t) => {
  const hub = createHub({ heartbeatMs: 60_000, maxChannelsPerClient: 40_000 })
  const timings = []
  let onClose = () => {}
  const http = await startHttp((req, res) => {
    const count = Number(new URL(req.url, 'http://x').searchParams.get('n'))
    const channels = Array.from({ length: count }, (_, i) => `c${count}-${i}`)
    const started = performance.now()
    hub.attach(req, res, { channels }).on('close', () => onClose())
    timings.push(performance.now() - started)
  })
  try {
    /** The least of 3 attaches, and of 3 departures (FIN to 'close'), of a client with
     *  `count` channels: the least is the one load disturbed least. */
    const costs = async (count) => {
      const attach = []
      const leave = []
      for (let i = 0; i < 3; i++) {
        const raw = rawClient(http.port, { path: `/?n=${count}` })
        await waitFor(() => raw.comments.length === 1, { what: `the client with ${count} channels` })
        attach.push(timings.pop())
        const closed = new Promise((resolve) => { onClose = resolve })
        const started = performance.now()
        raw.end()
        await closed
        leave.push(performance.now() - started)
      }
      return { attach: Math.min(...attach), leave: Math.min(...leave) }
    }
    const small = await costs(5_000)
    const large = await costs(40_000)
    const report = `attach ${small.attach.toFixed(1)} / ${large.attach.toFixed(1)} ms, leave ${small.leave.toFixed(1)} / ${large.leave.toFixed(1)} ms for 5,000 / 40,000 channels`
    t.diagnostic(report)
    // 8x the channels: about 8x the time when linear, about 64x when each subscription scans
    // the client's cursors (20,000 channels: attach 176 ms, leave 129 ms that way; 47 and 21
    // linear).
    assert.ok(large.attach / small.attach < 20, report)
    assert.ok(large.leave / small.leave < 20, report)
    assert.equal(hub.size, 0)
    assert.equal(hub.metrics().channels, 0, 'every channel went with its last subscriber')
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a client has at most maxChannelsPerClient channels: more throws ERR_SSE_TOO_MANY_CHANNELS, at attach with nothing written, and at subscribe', async () => {
  assert.equal(defaults.maxChannelsPerClient, 1000)
  const hub = createHub({ heartbeatMs: 60_000 })
  const errors = []
  const clients = []
  const listener = (req, res) => {
    const count = Number(new URL(req.url, 'http://x').searchParams.get('n'))
    try {
      clients.push(hub.attach(req, res, { channels: Array.from({ length: count }, (_, i) => `c${i}`) }))
    } catch (error) {
      errors.push(error)
      res.writeHead(400).end('too many')
    }
  }
  let full = null
  try {
    const refused = await openStream(listener, { path: '/?n=1001' })
    assert.equal(await ended(refused), 'end', 'the refused request was answered')
    assert.equal(errors.length, 1)
    assert.ok(errors[0] instanceof RangeError)
    assert.equal(errors[0].code, 'ERR_SSE_TOO_MANY_CHANNELS')
    assert.match(errors[0].message, /at most 1000 channels \(maxChannelsPerClient\), this would make 1001/)
    assert.equal(refused.status, 400, 'the application answered: attach wrote nothing')
    assert.equal(refused.body, 'too many')
    assert.equal(hub.size, 0)
    assert.equal(hub.metrics().channels, 0, 'no channel was made for the refused client')

    full = await openStream(listener, { path: '/?n=1000' })
    assert.equal(full.status, 200, 'a client with 1000 channels')
    const client = clients[0]
    assert.throws(() => client.subscribe('one-more'), (error) => error instanceof RangeError && error.code === 'ERR_SSE_TOO_MANY_CHANNELS')
    assert.equal(hub.channel('one-more').size, 0)
    assert.equal(client.unsubscribe('c0'), true)
    assert.equal(client.subscribe('one-more'), true, 'leaving one makes room for another')
    hub.publish('one-more', { data: 'arrived' })
    await full.waitFor((e) => e.data === 'arrived')
  } finally {
    await full?.close()
    await hub.close()
  }
})

test('age bounds hold without traffic, channels nothing keeps go, and a channel that went resumes as a reset, never with a hole', async () => {
  const MAX_AGE_MS = 200
  // Logs are swept every maxAge / 4, clamped to 25 ms..1 s (crates/core/src/expiry.rs): an
  // event is gone one period after it expired, two at worst, plus how late a loaded machine
  // runs the sweep and this poll, which the margin covers. A sweep every 4 s whatever the
  // bound (or none: trimmed only when touched) takes seconds, and fails the bound.
  const SWEEP_MS = Math.min(Math.max(MAX_AGE_MS / 4, 25), 1000)
  const GONE_WITHIN_MS = MAX_AGE_MS + 2 * SWEEP_MS + 1000
  /** Waits (at most 10 s) for the hub to hold no channel; returns the ms since `since`, which
   *  must be within GONE_WITHIN_MS. */
  const goneWithinBound = async (what, since) => {
    await waitFor(() => hub.metrics().channels === 0, { what, timeoutMs: 10_000, intervalMs: 2 })
    const took = performance.now() - since
    assert.ok(took < GONE_WITHIN_MS, `${what}: took ${Math.round(took)} ms, more than ${GONE_WITHIN_MS} ms ` +
      `(maxAgeMs ${MAX_AGE_MS} + two sweeps of ${SWEEP_MS} ms + 1000 ms margin): logs are not swept every maxAge / 4`)
    return took
  }
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100, maxAgeMs: MAX_AGE_MS } })
  const clients = []
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    clients.push(hub.attach(req, res, { channels: url.searchParams.getAll('c') }))
  })
  const held = () => hub.metrics({ perChannel: true }).perChannel.find((c) => c.name === 'quiet')?.held.events ?? 0
  try {
    // A quiet channel: one event, then nothing. Its age bound holds all the same, and the
    // channel, read by nobody and holding nothing, goes.
    const publishedAt = performance.now()
    hub.publish('quiet', { data: 'old' })
    assert.equal(held(), 1)
    const gone = await goneWithinBound('the quiet channel to go', publishedAt)
    assert.ok(gone >= MAX_AGE_MS, `went after ${Math.round(gone)} ms, before its age bound`)
    assert.equal(hub.metrics().held.events, 0)

    // The channel comes back with a publish. An event of it that aged out is not replayed as
    // if nothing had been lost: a resume from before it is a reset.
    const first = clients.length
    const witness = await openStream(http.server, { path: '/?c=quiet' })
    assert.equal(clients.length, first + 1, 'the witness')
    hub.publish('quiet', { data: 'A' })
    const idA = (await witness.waitFor((e) => e.data === 'A')).id
    await witness.close()
    await waitFor(() => hub.size === 0, { what: 'the witness to leave' })
    const publishedB = performance.now()
    hub.publish('quiet', { data: 'B' })
    await goneWithinBound('B to age out and the channel to go', publishedB)
    hub.publish('quiet', { data: 'C' })
    const resumed = await openStream(http.server, { path: '/?c=quiet', lastEventId: idA })
    assert.equal(clients.length, first + 2, 'the resumed client')
    assert.equal(clients[first + 1].resume, 'reset', 'B is gone: replaying C alone would hide it')
    assert.equal((await resumed.next()).event, 'sse-reset')
    await resumed.close()

    // Clients that each used a channel of their own and left leave no channel behind.
    for (let i = 0; i < 50; i++) {
      const own = await openStream(http.server, { path: `/?c=own-${i}` })
      assert.equal(own.status, 200, `client ${i}`)
      await own.close()
    }
    await waitFor(() => hub.size === 0, { what: 'the 50 to leave' })
    await waitFor(() => hub.metrics().channels <= 1, { what: 'their channels to go', timeoutMs: 5000 })
  } finally {
    await hub.close()
    await http.close()
  }
})
