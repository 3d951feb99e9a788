'use strict'
// needs: nothing

// History and Last-Event-ID: a client that reconnects gets every event it missed exactly
// once and in order, even while publishing goes on; an id that cannot be placed gets the
// reset event, then live events; the history keeps what its bounds say and no more.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, startHttp, waitFor, cuttingProxy } = require('./helpers')

const EVENTS = 10_000
const CUTS = ['rst', 'fin', 'rst', 'fin', 'rst']

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test(`eventsource gets ${EVENTS.toLocaleString('en')} events exactly once, in order, across ${CUTS.length} cuts while publishing goes on`, async () => {
      const hub = createHub({ heartbeatMs: 60_000, retryMs: 20, history: { maxEvents: EVENTS } })
      const resumes = []
      const http = await startHttp((req, res) => {
        const client = hub.attach(req, res, { transport })
        resumes.push(client.resume)
      })
      const proxy = await cuttingProxy(http.port)
      const source = new EventSource(proxy.url)
      const received = []
      source.addEventListener('message', (e) => received.push(Number(e.data)))
      try {
        await waitFor(() => hub.size === 1, { what: 'the first connection' })
        let cuts = 0
        for (let seq = 0; seq < EVENTS; seq++) {
          hub.broadcast({ data: String(seq) })
          // Cut every 1,500 events, once the client has some of them: mid-stream.
          if (seq % 1500 === 1499 && cuts < CUTS.length) {
            // A fresh connection since the last cut, that has delivered something.
            const before = received.length
            await waitFor(() => proxy.opened() > cuts && received.length > before, { what: 'a reconnected stream to cut', timeoutMs: 10_000 })
            proxy.cut(CUTS[cuts++])
          }
          if (seq % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
        }
        assert.equal(cuts, CUTS.length)
        await waitFor(() => received.length >= EVENTS, { what: `${EVENTS} events`, timeoutMs: 30_000 })
        assert.equal(received.length, EVENTS, 'no event twice')
        assert.ok(received.every((value, i) => value === i), 'every event once, in order')
        assert.ok(resumes.length >= CUTS.length + 1, `${resumes.length} connections`)
        assert.equal(resumes[0], 'none')
        assert.ok(resumes.slice(1).every((r) => r === 'replayed'), `resumes: ${resumes}`)
      } finally {
        source.close()
        await proxy.close()
        await hub.close()
        await http.close()
      }
    })
  })
}

/** Connects with `lastEventId` (openStream) and returns the client and its stream. */
async function reconnect (hub, http, clients, lastEventId, path = '/') {
  const raw = await openStream(http.server, { path, lastEventId })
  assert.equal(raw.status, 200)
  assert.equal(clients.length, 1, 'the connection')
  return { raw, client: clients.shift() }
}

test('an id that cannot be placed gets the reset event, then live events', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 10 } })
  const other = createHub({ history: { maxEvents: 10 } })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res)))
  try {
    // Ids this hub made: 100 events, of which the history keeps the last 10.
    const first = await reconnect(hub, http, clients)
    for (let i = 0; i < 100; i++) hub.broadcast({ data: `e${i}` })
    await first.raw.waitFor((e) => e.data === 'e99')
    assert.equal(first.raw.events.length, 100)
    const ids = first.raw.events.map((e) => e.id)
    assert.ok(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]+$/.test(id)), 'hub-made ids on every event')
    // An id of another hub: publish there and take one from its frame.
    const foreign = await openStream((req, res) => {
      other.attach(req, res)
      other.broadcast({ data: 'x' })
    })
    const foreignId = (await foreign.next()).id
    await foreign.close()
    for (const [lastEventId, reason] of [['no-such-event', 'unknown'], [foreignId, 'foreign'], [ids[5], 'expired']]) {
      const { raw, client } = await reconnect(hub, http, clients, lastEventId)
      assert.equal(client.resume, 'reset')
      assert.equal(client.resumed, false)
      assert.equal(client.resetReason, reason)
      hub.broadcast({ data: 'live' })
      await raw.waitFor((e) => e.data === 'live')
      assert.deepEqual(raw.events.map((e) => [e.event, e.data]), [['sse-reset', JSON.stringify({ reason })], ['message', 'live']])
      await raw.close()
    }
    // Within the history: a replay, no reset.
    const { raw, client } = await reconnect(hub, http, clients, ids[97])
    assert.equal(client.resume, 'replayed')
    // Everything after e97 that the history holds: e98, e99 and the three live events.
    hub.broadcast({ event: 'end', data: '' })
    await raw.waitFor('end')
    assert.deepEqual(raw.events.map((e) => e.data), ['e98', 'e99', 'live', 'live', 'live', ''])
    await raw.close()
    await first.raw.close()
  } finally {
    await hub.close()
    await other.close()
    await http.close()
  }
})

test('app-given ids resume too, on channels, and lastEventIdQuery serves a first connect', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 }, lastEventIdQuery: 'lastEventId', resetEvent: 'gap' })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res, { channels: ['prices'] })))
  try {
    // Published with nobody subscribed: the channel's history still keeps them.
    for (let i = 0; i < 10; i++) hub.publish('prices', { id: `p-${i}`, data: String(i) })
    const byHeader = await reconnect(hub, http, clients, 'p-6')
    assert.equal(byHeader.client.resume, 'replayed')
    await byHeader.raw.waitFor((e) => e.id === 'p-9')
    assert.deepEqual(byHeader.raw.events.map((e) => e.id), ['p-7', 'p-8', 'p-9'])
    const byQuery = await reconnect(hub, http, clients, undefined, '/?lastEventId=p-8')
    assert.equal(byQuery.client.lastEventId, 'p-8')
    await byQuery.raw.waitFor((e) => e.id === 'p-9')
    assert.deepEqual(byQuery.raw.events.map((e) => e.id), ['p-9'])
    const unknown = await reconnect(hub, http, clients, 'p-999')
    assert.equal((await unknown.raw.next()).event, 'gap', 'the reset event is named by resetEvent')
    for (const { raw } of [byHeader, byQuery, unknown]) await raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a Last-Event-ID header sent as UTF-8, as browsers send it, resumes a non-ASCII id', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 } })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res)))
  try {
    for (const id of ['日本-1', '日本-2', 'café-3', '日本-4']) hub.broadcast({ id, data: id })
    // openStream writes the header's text as UTF-8 bytes; Node reads them one byte per character.
    const japanese = await reconnect(hub, http, clients, '日本-2')
    assert.equal(japanese.client.lastEventId, '日本-2')
    assert.equal(japanese.client.resume, 'replayed')
    await japanese.raw.waitFor((e) => e.id === '日本-4')
    assert.deepEqual(japanese.raw.events.map((e) => e.id), ['café-3', '日本-4'])
    const latin = await reconnect(hub, http, clients, 'café-3')
    assert.equal(latin.client.resume, 'replayed')
    await latin.raw.waitFor((e) => e.id === '日本-4')
    assert.deepEqual(latin.raw.events.map((e) => e.id), ['日本-4'])
    await japanese.raw.close()
    await latin.raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('with history on, a retry-only message is sent as it is, with no id stamped on it', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 10 } })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res, { channels: ['c'] })))
  try {
    const { raw } = await reconnect(hub, http, clients)
    assert.equal(hub.publish('c', { retry: 500 }), 1)
    assert.equal(hub.broadcast({ retry: 700 }), 1)
    hub.publish('c', { data: 'after' })
    await raw.waitFor((e) => e.data === 'after')
    assert.deepEqual(raw.retries.slice(-2), [500, 700])
    assert.equal((raw.body.match(/\nid: /g) ?? []).length, 1, 'one id line: the event\'s')
    assert.match(raw.events[0].id, /^[0-9a-f]{8}-[0-9a-f]+$/)
    await raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('an app id given to more than one event the history holds resumes as a reset (ambiguous), never as a replay that skips events', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 } })
  const clients = []
  const http = await startHttp((req, res) => clients.push(hub.attach(req, res, { channels: ['a', 'b'] })))
  try {
    hub.publish('a', { id: '7', data: 'a7' })
    hub.publish('b', { id: 'b1', data: 'b1' })
    hub.publish('b', { id: '7', data: 'b7' })
    hub.publish('a', { id: 'x', data: 'x1' })
    hub.publish('a', { id: 'x', data: 'x2' })
    hub.publish('b', { id: 'unique', data: 'u' })
    for (const id of ['7', 'x']) {
      const { raw, client } = await reconnect(hub, http, clients, id)
      assert.equal(client.resume, 'reset', id)
      assert.equal(client.resetReason, 'ambiguous', id)
      // Anything replayed would come before the marker (sent to this client alone: no history).
      client.send({ event: 'marker', data: '' })
      await raw.waitFor('marker')
      assert.deepEqual(raw.events.map((e) => [e.event, e.data]), [['sse-reset', '{"reason":"ambiguous"}'], ['marker', '']], 'nothing replayed')
      await raw.close()
    }
    // An id held once still resumes just past it.
    const { raw, client } = await reconnect(hub, http, clients, 'b1')
    assert.equal(client.resume, 'replayed')
    client.send({ event: 'marker', data: '' })
    await raw.waitFor('marker')
    assert.deepEqual(raw.events.map((e) => e.data), ['b7', 'x1', 'x2', 'u', ''])
    await raw.close()
    assert.equal(hub.metrics().resumes.reset.ambiguous, 2)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('history keeps what maxEvents, maxBytes and maxAgeMs allow, and 1,000,000 publishes keep it flat', async () => {
  const frame = (data) => Buffer.byteLength(`id: 00000000-0\ndata: ${data}\n\n`)
  const byEvents = createHub({ history: { maxEvents: 50 } })
  const byBytes = createHub({ history: { maxEvents: 1_000_000, maxBytes: 10_000 } })
  const byAge = createHub({ history: { maxAgeMs: 50 } })
  try {
    for (let i = 0; i < 200; i++) {
      byEvents.broadcast({ data: 'x'.repeat(100) })
      byBytes.broadcast({ data: 'x'.repeat(100) })
      byAge.broadcast({ data: 'x'.repeat(100) })
    }
    assert.equal(byEvents.metrics().held.events, 50)
    const bytesHeld = byBytes.metrics().held.bytes
    assert.ok(bytesHeld <= 10_000 && bytesHeld > 10_000 - 2 * frame('x'.repeat(100)), `held ${bytesHeld}`)
    assert.equal(byAge.metrics().held.events, 200)
    await new Promise((resolve) => setTimeout(resolve, 120))
    byAge.broadcast({ data: 'y' })
    assert.equal(byAge.metrics().held.events, 1, 'older than maxAgeMs: gone')

    const rssBefore = process.memoryUsage.rss()
    let maxHeld = 0
    for (let i = 0; i < 1_000_000; i++) {
      byEvents.broadcast({ data: String(i) })
      if (i % 10_000 === 0) maxHeld = Math.max(maxHeld, byEvents.metrics().held.events)
    }
    assert.equal(maxHeld, 50)
    assert.equal(byEvents.metrics().held.events, 50)
    const grown = process.memoryUsage.rss() - rssBefore
    assert.ok(grown < 64 << 20, `RSS grew by ${grown} bytes over 1,000,000 publishes`)
  } finally {
    await byEvents.close()
    await byBytes.close()
    await byAge.close()
  }
})

test('a channel keeps its own history: on in a hub without one, off in a hub with one', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const withHistory = createHub({ heartbeatMs: 60_000, history: true })
  const clients = []
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    const target = url.pathname === '/with' ? withHistory : hub
    clients.push(target.attach(req, res, { channels: [url.searchParams.get('channel')] }))
  })
  try {
    assert.throws(() => hub.channel('x', { histroy: true }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
    assert.throws(() => hub.channel('x', { history: { maxEvents: 0.5 } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.throws(() => hub.channel('x', { history: 'yes' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })

    // Nobody subscribed: the channel with its own history keeps the last 3, the other none.
    const orders = hub.channel('orders', { history: { maxEvents: 3 } })
    for (let i = 0; i < 5; i++) {
      orders.publish({ id: `o-${i}`, data: String(i) })
      hub.publish('chat', { id: `c-${i}`, data: String(i) })
    }
    assert.equal(hub.metrics().held.events, 3)
    const replay = await reconnect(hub, http, clients, 'o-2', '/?channel=orders')
    assert.equal(replay.client.resume, 'replayed')
    await replay.raw.waitFor((e) => e.id === 'o-4')
    assert.deepEqual(replay.raw.events.map((e) => e.id), ['o-3', 'o-4'])
    // An app-given id no longer held cannot be told from one never seen.
    const expired = await reconnect(hub, http, clients, 'o-0', '/?channel=orders')
    assert.equal(expired.client.resetReason, 'unknown', 'o-0 is older than the channel keeps')
    const none = await reconnect(hub, http, clients, 'c-2', '/?channel=chat')
    assert.equal(none.client.resume, 'none', 'chat follows the hub: no history')
    for (const { raw } of [replay, expired, none]) await raw.close()

    // The other way round: off for one channel of a hub that keeps history.
    withHistory.channel('typing', { history: false })
    for (let i = 0; i < 5; i++) {
      withHistory.publish('typing', { id: `t-${i}`, data: String(i) })
      withHistory.publish('news', { id: `n-${i}`, data: String(i) })
    }
    assert.equal(withHistory.metrics().held.events, 5, 'only news is kept')
    const typing = await reconnect(withHistory, http, clients, 't-2', '/with?channel=typing')
    assert.equal(typing.client.resetReason, 'unknown', 't-2 was never kept')
    const news = await reconnect(withHistory, http, clients, 'n-2', '/with?channel=news')
    await news.raw.waitFor((e) => e.id === 'n-4')
    assert.deepEqual(news.raw.events.map((e) => e.id), ['n-3', 'n-4'])
    await typing.raw.close()
    await news.raw.close()
  } finally {
    await hub.close()
    await withHistory.close()
    await http.close()
  }
})
