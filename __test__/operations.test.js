'use strict'
// needs: promtool

// What an operator relies on: a staged shutdown that spreads reconnects, caps that refuse
// with 503 and disconnect nobody, metrics that count exactly what happened (checked by
// promtool and through prom-client), and lifecycle events with the figures each client got.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { performance } = require('node:perf_hooks')
const { createHub } = require('..')
const { collectHubMetrics } = require('../lib/prometheus')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, startHttp, rawClient, waitFor, once, promtool } = require('./helpers')

/** Where the body starts in a raw client's bytes. */
function bodyOffset (raw) {
  return raw.head.length + 4
}

/** The body bytes the hub counts for a client: raw on the wire for native, de-chunked for node. */
function countedBytes (raw, transport) {
  return transport === 'native' ? raw.raw.length - bodyOffset(raw) : raw.bodyBytes
}

/** Prometheus text as a Map of `name{labels}` (labels sorted) to value. */
function samplesOf (text) {
  const samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(match, `not a sample line: ${line}`)
    const labels = (match[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []
    samples.set(`${match[1]}{${labels.sort().join(',')}}`, Number(match[3]))
  }
  return samples
}

test('a staged close of 500 clients spreads the closes and the retries, flushes, says goodbye, and refuses meanwhile', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const departures = []
  hub.on('disconnect', (info) => departures.push(info))
  const http = await startHttp((req, res) => {
    hub.attach(req, res, { transport: req.url === '/node' ? 'node' : 'auto' })
  })
  const clients = []
  try {
    for (let i = 0; i < 500; i++) clients.push(rawClient(http.port, { path: i % 5 === 0 ? '/node' : '/' }))
    await waitFor(() => hub.size === 500 && clients.every((c) => c.head !== null), { timeoutMs: 20_000, what: '500 clients' })
    // Queued right before the close: every client must still get all of them.
    for (let i = 0; i < 5; i++) hub.broadcast({ id: String(i), data: `queued ${i}` })
    const startedAt = performance.now()
    const closing = hub.close({ spreadMs: 2000, retryMs: 1000, retryJitterMs: 4000, finalEvent: { event: 'bye', data: 'see you' } })
    let resolved = false
    closing.then(() => { resolved = true })

    // Attaches during the close are answered 503 with Retry-After, by the hub itself.
    const late = rawClient(http.port)
    await waitFor(() => late.head !== null, { what: 'the refused response' })
    assert.match(late.head, /^HTTP\/1\.1 503 /)
    assert.match(late.head, /\r\nretry-after: 5\r\n/i)
    assert.equal(resolved, false, 'the close waits for its clients')

    await closing
    const spanMs = performance.now() - startedAt
    await waitFor(() => clients.every((c) => c.finishedAt !== null), { timeoutMs: 10_000, what: 'every stream to end' })

    for (const client of clients) {
      assert.deepEqual(client.events.map((e) => e.data), ['queued 0', 'queued 1', 'queued 2', 'queued 3', 'queued 4', 'see you'])
      assert.equal(client.events[5].event, 'bye')
      assert.equal(client.retries.length, 1)
      assert.ok(client.retries[0] >= 1000 && client.retries[0] <= 5000, `retry ${client.retries[0]}`)
    }
    const retries = clients.map((c) => c.retries[0])
    const distinctRetries = new Set(retries).size
    assert.ok(distinctRetries > 300, `only ${distinctRetries} distinct retry values`)

    // Spread over the window: 25 closes per 100 ms slice when even. The ends are seen by this
    // process's event loop, which a GC pause or a busy core can hold up for a few hundred ms
    // (a CI run once saw 102 in one slice); unspread, all 500 would land in one or two.
    const ends = clients.map((c) => c.finishedAt - startedAt).sort((a, b) => a - b)
    const slices = new Map()
    for (const end of ends) slices.set(Math.floor(end / 100), (slices.get(Math.floor(end / 100)) ?? 0) + 1)
    const busiest = Math.max(...slices.values())
    assert.ok(busiest <= 200, `${busiest} closes in one 100 ms slice`)
    assert.ok(slices.size >= 12, `closes in only ${slices.size} slices of 100 ms`)
    assert.ok(ends[ends.length - 1] - ends[0] >= 1500, `closes spanned only ${ends[ends.length - 1] - ends[0]} ms`)

    assert.equal(departures.length, 500)
    assert.ok(departures.every((d) => d.reason === 'server' && d.events === 6))
    const metrics = hub.metrics()
    assert.equal(metrics.closes.server, 500)
    assert.equal(metrics.refused.closing, 1)
    console.log(`# staged close: 500 clients, promise after ${Math.round(spanMs)} ms; closes from ${Math.round(ends[0])} to ${Math.round(ends[ends.length - 1])} ms, busiest 100 ms slice ${busiest}; retry ${Math.min(...retries)}..${Math.max(...retries)} ms, ${distinctRetries} distinct`)
  } finally {
    for (const client of clients) client.socket.destroy()
    await hub.close()
    await http.close()
  }
})

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test('maxClients: the next attach gets 503 with Retry-After and a refused client; the others keep receiving', async () => {
      const hub = createHub({ maxClients: 3, retryAfterSeconds: 7, heartbeatMs: 60_000 })
      const returned = []
      const refusals = []
      const closeReasons = []
      hub.on('refuse', (info) => refusals.push(info))
      const listener = (req, res) => {
        const client = hub.attach(req, res, { transport })
        returned.push(client)
        // As a handler would, at once: a refused client's 'close' comes on the next tick.
        client.on('close', (reason) => closeReasons.push(reason))
      }
      const kept = []
      try {
        for (let i = 0; i < 3; i++) kept.push(await openStream(listener))
        assert.deepEqual(kept.map((c) => c.status), [200, 200, 200])
        await waitFor(() => hub.size === 3, { what: 'three clients' })
        const refused = await openStream(listener)
        assert.equal(refused.status, 503)
        assert.equal(refused.headers['retry-after'], '7')
        const client = returned[3]
        assert.equal(client.refusal, 'hub-full')
        assert.equal(client.closeReason, 'refused')
        assert.equal(client.closed, true)
        assert.equal(client.send({ data: 'nobody' }), false)
        assert.deepEqual(closeReasons, ['refused'])
        assert.equal(refusals.length, 1)
        assert.equal(refusals[0].reason, 'hub-full')

        assert.equal(hub.broadcast({ data: 'still live' }), 3)
        await Promise.all(kept.map((c) => c.waitFor((e) => e.data === 'still live')))
        assert.equal(hub.size, 3)
        const metrics = hub.metrics()
        assert.equal(metrics.refused.hubFull, 1)
        assert.equal(metrics.connectionsOpened, 3)
        assert.equal(metrics.closes.client + metrics.closes.error + metrics.closes.server, 0, 'nobody was disconnected')

        // A freed place is taken again.
        await kept[0].close()
        await waitFor(() => hub.size === 2, { what: 'the FIN' })
        const again = await openStream(listener)
        kept.push(again)
        assert.equal(again.status, 200)
      } finally {
        await Promise.all(kept.map((c) => c.close()))
        await hub.close()
      }
    })

    test('a channel cap refuses attaches that ask for it and subscribes past it', async () => {
      const hub = createHub({ heartbeatMs: 60_000 })
      hub.channel('room', { maxClients: 1 })
      const returned = []
      const listener = (req, res) => {
        const channels = req.url === '/room' ? ['room'] : []
        returned.push(hub.attach(req, res, { transport, channels }))
      }
      const streams = []
      try {
        const inRoom = await openStream(listener, { path: '/room' })
        streams.push(inRoom)
        await waitFor(() => hub.channel('room').size === 1, { what: 'the first subscriber' })
        const full = await openStream(listener, { path: '/room' })
        assert.equal(full.status, 503)
        assert.equal(returned[1].refusal, 'channel-full')
        const lobby = await openStream(listener)
        streams.push(lobby)
        await waitFor(() => hub.size === 2, { what: 'a client without channels' })
        assert.equal(returned[2].subscribe('room'), false)
        hub.channel('room', { maxClients: null })
        assert.equal(returned[2].subscribe('room'), true)
        assert.equal(hub.publish('room', { data: 'both' }), 2)
        for (const c of [inRoom, lobby]) assert.equal((await c.next()).data, 'both')
        const metrics = hub.metrics()
        assert.deepEqual([metrics.refused.channelFull, metrics.subscriptionsRefused], [1, 1])
      } finally {
        await Promise.all(streams.map((c) => c.close()))
        await hub.close()
      }
    })
  })
}

test('metricsText() passes promtool, counts exactly what happened, and prom-client reports the same', async () => {
  const hub = createHub({
    heartbeatMs: 60_000,
    history: { maxEvents: 20 },
    overflow: 'drop-oldest',
    maxLagEvents: 20,
    maxLagBytes: 4 << 20,
    maxEventBytes: 200_000
  })
  const departures = new Map()
  const connects = []
  hub.on('connect', (info) => connects.push(info))
  hub.on('disconnect', (info) => departures.set(info.id, info))
  const attached = new Map()
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    const client = hub.attach(req, res, {
      transport: url.searchParams.get('transport') ?? 'auto',
      channels: url.searchParams.getAll('channel')
    })
    attached.set(url.searchParams.get('name'), client)
  })
  const open = (name, query = '', options = {}) => rawClient(http.port, { path: `/?name=${name}${query}`, ...options })
  try {
    const reader = open('reader', '&channel=news')
    const viaNode = open('node', '&transport=node')
    const stalled = open('stalled', '&channel=bulk', { paced: true })
    await waitFor(() => hub.size === 3 && attached.size === 3, { what: 'three clients' })
    assert.deepEqual(hub.metrics().connections, { native: 2, node: 1, fetch: 0, pending: 0 })

    hub.broadcast({ data: 'to all 1' })
    hub.broadcast({ data: 'to all 2' })
    hub.publish('news', { data: 'news' })
    attached.get('node').send({ data: 'just you' })
    await waitFor(() => reader.events.length === 3 && viaNode.events.length === 3, { what: 'the first events' })

    // The stalled client reads nothing while 200 events of 100 KB (20 MB) go to its channel.
    // Its socket holds at most a few MB (tcp_wmem's 4 MB ceiling plus a receive buffer that
    // does not grow while nothing is read), so its cursor falls out of the 20-event window
    // whatever the scheduling, and skipped events count as drops. (With 60 events, 6 MB, the
    // buffers sometimes held it all on a loaded machine.) Then it reads everything left;
    // drops must be exactly what it never got.
    const big = 'x'.repeat(100_000)
    const bulkCount = 200
    for (let i = 0; i < bulkCount; i++) hub.publish('bulk', { data: big, id: `bulk-${i}` })
    hub.publish('bulk', { data: 'last' })
    stalled.readAll()
    await waitFor(() => stalled.events.some((e) => e.data === 'last'), { timeoutMs: 20_000, what: 'the stalled client to catch up' })
    const bulkReceived = stalled.events.filter((e) => e.data === big || e.data === 'last').length
    assert.ok(bulkReceived < bulkCount + 1, 'the stalled client lagged out (else this test proves nothing about drops)')

    // Resumes: one from an id the history holds, one from an unknown id.
    const lastSeen = reader.events[reader.events.length - 1].id
    const resumed = open('resumed', '', { headers: { 'last-event-id': lastSeen } })
    const reset = open('reset', '', { headers: { 'last-event-id': 'no-such-id' } })
    await waitFor(() => attached.has('resumed') && attached.has('reset') && reset.events.length === 1, { what: 'the resuming clients' })
    assert.equal(attached.get('resumed').resume, 'replayed')
    assert.equal(reset.events[0].event, 'sse-reset')

    // Closes: a FIN, a RST, and three by the server.
    const closes = ['reader', 'stalled', 'node', 'resumed', 'reset'].map((name) => once(attached.get(name), 'close', 10_000))
    reader.end()
    stalled.reset()
    for (const name of ['node', 'resumed', 'reset']) attached.get(name).close()
    assert.deepEqual((await Promise.all(closes)).sort(), ['client', 'client', 'server', 'server', 'server'])
    await waitFor(() => departures.size === 5, { what: 'five disconnect events' })
    await waitFor(() => [reader, viaNode, resumed, reset].every((raw) => raw.finishedAt !== null), { what: 'the streams to end' })

    const raws = { reader, node: viaNode, stalled, resumed, reset }
    const transports = { reader: 'native', node: 'node', stalled: 'native', resumed: 'native', reset: 'native' }
    let bytes = 0
    let deliveries = 0
    for (const [name, raw] of Object.entries(raws)) {
      const info = departures.get(attached.get(name).id)
      assert.equal(info.events, raw.events.length, `${name}: events`)
      assert.equal(info.bytes, countedBytes(raw, transports[name]), `${name}: bytes`)
      assert.equal(info.transport, transports[name])
      bytes += info.bytes
      deliveries += info.events
    }
    assert.deepEqual(departures.get(attached.get('reader').id).channels, ['news'])
    assert.equal(connects.length, 5)

    const m = hub.metrics()
    assert.equal(m.connectionsOpened, 5)
    assert.deepEqual(m.connections, { native: 0, node: 0, fetch: 0, pending: 0 })
    assert.deepEqual(m.closes, { client: 2, error: 0, timeout: 0, slow: 0, server: 3 })
    assert.deepEqual(m.published, { broadcast: 2, channel: bulkCount + 2, client: 1 })
    assert.equal(m.dropped, bulkCount + 1 - bulkReceived)
    assert.equal(m.deliveries, deliveries)
    assert.equal(m.bytesWritten, bytes)
    assert.equal(m.heartbeats, 0)
    assert.deepEqual(m.resumes, { replayed: 1, reset: { unknown: 1, foreign: 0, expired: 0, gap: 0, ambiguous: 0 } })
    assert.ok(m.lag.maxEvents >= 20, `lag.maxEvents ${m.lag.maxEvents}`)
    assert.ok(m.held.events > 0 && m.held.events <= 3 * 20)

    const text = hub.metricsText({ labels: { instance_name: 'a' }, perChannel: true })
    const check = await promtool(text)
    assert.equal(check.code, 0, check.output)
    assert.equal(check.output.trim(), '', `promtool lint: ${check.output}`)
    const samples = samplesOf(text)
    assert.equal(samples.get('sse_connections_closed_total{instance_name="a",reason="client"}'), 2)
    assert.equal(samples.get('sse_connections_closed_total{instance_name="a",reason="error"}'), 0)
    assert.equal(samples.get('sse_events_dropped_total{instance_name="a"}'), m.dropped)
    assert.equal(samples.get('sse_written_bytes_total{instance_name="a"}'), bytes)
    assert.equal(samples.get('sse_resumes_total{instance_name="a",outcome="replayed"}'), 1)
    assert.equal(samples.get('sse_channel_subscribers{channel="bulk",instance_name="a"}'), 0)

    const client = require('prom-client')
    const registry = new client.Registry()
    const collector = collectHubMetrics(hub, { registry, labels: { instance_name: 'a' }, perChannel: true })
    const collected = await registry.metrics()
    assert.deepEqual(samplesOf(collected), samples)
    assert.equal((await promtool(collected)).code, 0)
    collector.unregister()
    assert.equal((await registry.metrics()).trim(), '')
  } finally {
    await hub.close()
    await http.close()
  }
})

test('perChannel lists the most subscribed channels (1,000 for true, or the number given), so 30,000 channels at the bounds still make an exposition', async () => {
  const hub = createHub({ history: { maxEvents: 1 }, heartbeatMs: 60_000 })
  const listener = (req, res) => hub.attach(req, res, { channels: new URL(req.url, 'http://x').searchParams.getAll('c') })
  const streams = []
  try {
    // busy: 2 subscribers, calm and still: 1 each; a0 .. a29999 hold history and have none.
    for (const path of ['/?c=busy&c=calm', '/?c=busy&c=still']) streams.push(await openStream(listener, { path }))
    await waitFor(() => hub.size === 2, { what: 'two clients' })
    const longName = (i) => `a${i}`.padEnd(250, 'x')
    for (let i = 0; i < 30_000; i++) hub.publish(longName(i), { data: 'x' })
    assert.equal(hub.metrics().channels, 30_003)

    const names = (perChannel) => hub.metrics({ perChannel }).perChannel.map((c) => c.name)
    // Most subscribed first; calm and still tie, and the name picks calm. Listed by name.
    assert.deepEqual(names(2), ['busy', 'calm'])
    assert.deepEqual(names(3), ['busy', 'calm', 'still'])
    // The subscribed three, then of the 30,000 with none (a tie) the first 997 by name.
    const unsubscribed = Array.from({ length: 30_000 }, (_, i) => longName(i)).sort()
    assert.deepEqual(names(true), [...unsubscribed.slice(0, 997), 'busy', 'calm', 'still'].sort())
    assert.equal(names(10_000).length, 10_000)

    // Every line repeats the labels: at their bound, 30,000 channels listed made a string
    // past V8's largest ('Invalid string length').
    const labels = { instance_name: 'x'.repeat(4000) }
    const text = hub.metricsText({ labels, perChannel: true })
    const subscriberLines = text.split('\n').filter((line) => line.startsWith('sse_channel_subscribers{'))
    assert.equal(subscriberLines.length, 1000)
    assert.ok(subscriberLines.some((line) => line.includes('channel="busy"') && line.endsWith(' 2')))
    assert.equal(samplesOf(hub.metricsText({ perChannel: 1 })).get('sse_channel_subscribers{channel="busy"}'), 2)

    assert.equal(hub.metrics({ perChannel: null }).perChannel, undefined, 'null: none, as absent')
    // Labels count as written: 64 at most, an escaped character twice.
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, '']))
    assert.throws(() => hub.metricsText({ labels: many }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION', message: /at most 64/ })
    assert.throws(() => hub.metricsText({ labels: { l: '\\'.repeat(2048) } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION', message: /counts twice/ })
    assert.equal(typeof hub.metricsText({ labels: { l: '\\'.repeat(2047) } }), 'string')
    for (const [perChannel, Kind] of [[0, RangeError], [10_001, RangeError], [-1, RangeError], [1.5, TypeError], ['5', TypeError]]) {
      for (const call of [() => hub.metrics({ perChannel }), () => hub.metricsText({ perChannel })]) {
        assert.throws(call, (error) => error instanceof Kind && error.code === 'ERR_SSE_INVALID_OPTION' && /perChannel/.test(error.message), `perChannel ${perChannel}`)
      }
    }
  } finally {
    for (const stream of streams) stream.close()
    await hub.close()
  }
})

test('hub.metrics() has exactly the documented shape, perChannel only when asked for', async () => {
  const hub = createHub({ history: true })
  try {
    hub.publish('news', { data: 'kept' })
    /** Each value's type, objects and arrays followed. */
    const shape = (value) => Array.isArray(value)
      ? value.map(shape)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)]))
        : value === null ? null : typeof value
    const counts = (...keys) => Object.fromEntries(keys.map((key) => [key, 'number']))
    const documented = {
      connections: counts('native', 'node', 'fetch', 'pending'),
      connectionsOpened: 'number',
      closes: counts('client', 'error', 'timeout', 'slow', 'server'),
      refused: counts('hubFull', 'channelFull', 'closing', 'forbidden', 'authorizationFailed'),
      subscriptionsRefused: 'number',
      published: counts('broadcast', 'channel', 'client'),
      deliveries: 'number',
      bytesWritten: 'number',
      compression: counts('plainBytes', 'wireBytes'),
      heartbeats: 'number',
      dropped: 'number',
      lag: counts('events', 'bytes', 'maxEvents', 'maxBytes'),
      resumes: { replayed: 'number', reset: counts('unknown', 'foreign', 'expired', 'gap', 'ambiguous') },
      held: counts('events', 'bytes'),
      channels: 'number',
      runtimeThreads: 'number',
      redis: null
    }
    assert.deepEqual(shape(hub.metrics()), documented)
    assert.equal('perChannel' in hub.metrics(), false)
    const perChannel = hub.metrics({ perChannel: true })
    assert.deepEqual(shape(perChannel), {
      ...documented,
      perChannel: [{ name: 'string', subscribers: 'number', lag: counts('events', 'bytes'), held: counts('events', 'bytes') }]
    })
    assert.deepEqual(perChannel.perChannel, [{ name: 'news', subscribers: 0, lag: { events: 0, bytes: 0 }, held: perChannel.held }])
    assert.equal(perChannel.held.events, 1)
    assert.equal(Object.getPrototypeOf(perChannel.connections), Object.prototype, 'plain objects')
  } finally {
    await hub.close()
  }
})

test('connections are counted by transport: native, node, fetch (hub.response()) and pending', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const listener = (req, res) => {
    hub.attach(req, res, { transport: req.url === '/node' ? 'node' : 'native' })
  }
  const raws = []
  try {
    raws.push(await openStream(listener), await openStream(listener, { path: '/node' }))
    const fetched = []
    const responses = [0, 1, 2].map(() => hub.response(new Request('http://x/'), (client) => fetched.push(client)))
    await waitFor(() => hub.size === 5, { what: 'five clients' })
    assert.deepEqual(fetched.map((client) => client.transport), ['fetch', 'fetch', 'fetch'])
    await waitFor(() => hub.metrics().connections.pending === 0, { what: 'every transport to start' })
    assert.deepEqual(hub.metrics().connections, { native: 1, node: 1, fetch: 3, pending: 0 })
    const samples = samplesOf(hub.metricsText())
    assert.deepEqual(['native', 'node', 'fetch', 'pending'].map((transport) => samples.get(`sse_connections{transport="${transport}"}`)), [1, 1, 3, 0])

    // Gone, each from its own count.
    await responses[0].body.cancel()
    fetched[1].close()
    await waitFor(() => hub.size === 3, { what: 'two Fetch clients to leave' })
    assert.deepEqual(hub.metrics().connections, { native: 1, node: 1, fetch: 1, pending: 0 })
    for (const raw of raws) await raw.close()
    await waitFor(() => hub.size === 1, { what: 'the two HTTP clients to leave' })
    assert.deepEqual(hub.metrics().connections, { native: 0, node: 0, fetch: 1, pending: 0 })
  } finally {
    for (const raw of raws) await raw.close()
    await hub.close()
  }
  assert.deepEqual(hub.metrics().connections, { native: 0, node: 0, fetch: 0, pending: 0 })
})

test('lifecycle events fire once per client, on every way out, with what each client got', async () => {
  for (const transport of TRANSPORTS) {
    const hub = createHub({ heartbeatMs: 60_000, retryMs: 2000 })
    const connects = []
    const departures = []
    hub.on('connect', (info) => connects.push(info))
    hub.on('disconnect', (info) => departures.push(info))
    const clients = []
    const http = await startHttp((req, res) => {
      const client = hub.attach(req, res, { transport, channels: ['c'] })
      clients.push(client)
      for (let i = 0; i < clients.length; i++) client.send({ data: `event ${i}` })
      client.comment('not an event')
    })
    try {
      const raws = []
      const ports = []
      for (let i = 0; i < 3; i++) {
        raws.push(rawClient(http.port))
        await waitFor(() => raws[i].events.length === i + 1, { what: `client ${i}'s events` })
        ports.push(raws[i].socket.localPort)
      }
      raws[0].end()
      raws[1].reset()
      clients[2].close()
      await waitFor(() => departures.length === 3, { what: 'three departures' })
      await waitFor(() => raws[2].finishedAt !== null, { what: 'the server-closed stream to end' })
      await hub.close()
      assert.equal(departures.length, 3, 'no second disconnect for anyone')
      assert.equal(connects.length, 3)
      for (let i = 0; i < 3; i++) {
        const info = departures.find((d) => d.id === clients[i].id)
        assert.equal(info.reason, ['client', 'client', 'server'][i])
        assert.equal(info.events, i + 1, 'the opening retry: and the comment are not events')
        assert.equal(info.events, raws[i].events.length)
        if (i !== 1) assert.equal(info.bytes, countedBytes(raws[i], transport))
        assert.equal(info.transport, transport)
        assert.equal(info.remoteAddress, '127.0.0.1')
        assert.equal(info.remotePort, ports[i])
        assert.equal(typeof info.durationMs, 'number')
        assert.ok(info.durationMs >= 0)
        assert.deepEqual(info.channels, ['c'])
        assert.deepEqual(JSON.parse(JSON.stringify(info)), info, 'a plain object a logger can serialize')
      }
    } finally {
      await hub.close()
      await http.close()
    }
  }
})
