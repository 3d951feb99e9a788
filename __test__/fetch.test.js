'use strict'
// needs: nothing

// The Fetch transport (hub.response(request)) as Hono serves it on @hono/node-server: real
// sockets, a spec parser on the client side, the same semantics as attach(): the head at once,
// channels, history and resume (header and query), a reader that stops is cut while one that
// reads is not, the peer leaving, caps (503 + Retry-After), staged close, lifecycle events.

const { test } = require('node:test')
const { execFile } = require('node:child_process')
const path = require('node:path')
const assert = require('node:assert/strict')
const { getEventListeners } = require('node:events')
const { Hono } = require('hono')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { HOST, rawClient, waitFor, once, listenHono, ended } = require('./helpers')

/** A Hono app on @hono/node-server whose GET /events is `route(c)`. */
async function honoServer (route) {
  const app = new Hono()
  app.get('/events', route)
  app.get('/plain', (c) => c.text('plain'))
  return listenHono(app)
}

test('Hono: the head, the opening retry, send() and publish() reach an EventSource; the client is a fetch client', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 1500 })
  const connects = []
  hub.on('connect', (info) => connects.push(info))
  const clients = []
  const web = await honoServer((c) => hub.response(c.req.raw, { channels: ['news'], headers: { 'access-control-allow-origin': '*' } }, (client) => {
    clients.push(client)
    client.send({ event: 'welcome', data: `hello ${client.id}` })
  }))
  try {
    const raw = await openStream(web.server, { path: '/events' })
    await raw.waitFor('welcome')
    assert.equal(raw.status, 200)
    assert.equal(raw.headers['content-type'], 'text/event-stream; charset=utf-8')
    assert.equal(raw.headers['cache-control'], 'no-cache, no-transform')
    assert.equal(raw.headers['x-accel-buffering'], 'no')
    assert.equal(raw.headers['access-control-allow-origin'], '*')
    assert.deepEqual(raw.retries, [1500])
    assert.deepEqual(raw.events.map((e) => [e.event, e.data]), [['welcome', `hello ${clients[0].id}`]])
    assert.equal(clients[0].transport, 'fetch')
    assert.equal(connects[0].transport, 'fetch')

    const es = new EventSource(`${web.url}/events`)
    const got = []
    es.addEventListener('welcome', (e) => got.push(`welcome:${e.data}`))
    es.onmessage = (e) => got.push(e.data)
    await waitFor(() => got.length === 1, { what: 'the EventSource to connect' })
    assert.equal(hub.publish('news', { data: 'first' }), 2)
    hub.broadcast({ data: 'everyone' })
    await raw.waitFor((e) => e.data === 'everyone')
    await waitFor(() => got.length === 3, { what: 'the EventSource to get both events' })
    assert.deepEqual(got.slice(1), ['first', 'everyone'])
    assert.deepEqual(raw.events.slice(1).map((e) => e.data), ['first', 'everyone'])
    es.close()
    await raw.close()
    await waitFor(() => clients.every((c) => c.closed), { what: () => `both clients to leave (size ${hub.size})` })
    assert.equal(hub.size, 0)
    assert.deepEqual(clients.map((c) => c.closeReason), ['client', 'client'])
  } finally {
    await hub.close()
    await web.close()
  }
})

test('Hono: a reload resumes from Last-Event-ID (header) and from the query parameter, without loss or repeat', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: true })
  const web = await honoServer((c) => hub.response(c.req.raw, { channels: ['feed'] }))
  try {
    const first = rawClient(web.port, { path: '/events' })
    await waitFor(() => hub.size === 1, { what: 'the first client' })
    for (let i = 1; i <= 5; i++) hub.publish('feed', { data: `e${i}` })
    await waitFor(() => first.events.length === 5, { what: 'five events' })
    const seenId = first.events[1].id
    first.reset()
    await waitFor(() => hub.size === 0, { what: 'the first client to leave' })
    for (let i = 6; i <= 7; i++) hub.publish('feed', { data: `e${i}` })

    const byHeader = await openStream(web.server, { path: '/events', lastEventId: seenId })
    const byQuery = await openStream(web.server, { path: `/events?lastEventId=${encodeURIComponent(seenId)}` })
    const expected = ['e3', 'e4', 'e5', 'e6', 'e7']
    await byHeader.waitFor((e) => e.data === 'e7')
    await byQuery.waitFor((e) => e.data === 'e7')
    hub.publish('feed', { data: 'e8' })
    await byHeader.waitFor((e) => e.data === 'e8')
    await byQuery.waitFor((e) => e.data === 'e8')
    assert.deepEqual(byHeader.events.map((e) => e.data), [...expected, 'e8'])
    assert.deepEqual(byQuery.events.map((e) => e.data), [...expected, 'e8'])
    assert.equal(hub.metrics().resumes.replayed, 2)
    await byHeader.close()
    await byQuery.close()
  } finally {
    await hub.close()
    await web.close()
  }
})

test('Hono: ids the app gave resume too, and the Last-Event-ID header wins over ?lastEventId=', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: true })
  const web = await honoServer((c) => hub.response(c.req.raw, { channels: ['orders'] }))
  try {
    for (const id of ['order-1', 'order-2', 'order-3', 'order-4']) hub.publish('orders', { id, data: id.toUpperCase() })
    const byHeader = await openStream(web.server, { path: '/events', lastEventId: 'order-1' })
    const byQuery = await openStream(web.server, { path: '/events?lastEventId=order-3' })
    // Both given: the header is what the browser's own EventSource sends on a reconnect, and
    // the query only what the page was first opened with.
    const both = await openStream(web.server, { path: '/events?lastEventId=order-3', lastEventId: 'order-2' })
    for (const stream of [byHeader, byQuery, both]) await stream.waitFor((e) => e.id === 'order-4')
    assert.deepEqual(byHeader.events.map((e) => [e.id, e.data]), [['order-2', 'ORDER-2'], ['order-3', 'ORDER-3'], ['order-4', 'ORDER-4']])
    assert.deepEqual(byQuery.events.map((e) => e.id), ['order-4'])
    assert.deepEqual(both.events.map((e) => e.id), ['order-3', 'order-4'])
    hub.publish('orders', { id: 'order-5', data: 'ORDER-5' })
    for (const stream of [byHeader, byQuery, both]) assert.equal((await stream.next()).id, 'order-5', 'all three go live')
    assert.equal(hub.metrics().resumes.replayed, 3)
    for (const stream of [byHeader, byQuery, both]) await stream.close()
  } finally {
    await hub.close()
    await web.close()
  }
})

test('Hono: a reader that stops is cut (slow) with its lag bounded, while one that reads gets everything', async () => {
  const maxLagBytes = 256 * 1024
  const hub = createHub({ heartbeatMs: 60_000, maxLagBytes, overflow: 'disconnect' })
  const closes = []
  const web = await honoServer((c) => hub.response(c.req.raw, (client) => {
    client.on('close', (reason) => closes.push(reason))
    client.send({ data: 'ready' })
  }))
  try {
    const stalled = await openStream(web.server, { path: '/events' })
    await stalled.waitFor((e) => e.data === 'ready')
    stalled.pause()
    const reading = await openStream(web.server, { path: '/events' })
    await reading.waitFor((e) => e.data === 'ready')
    const payload = 'p'.repeat(16 * 1024)
    let sent = 0
    let maxLag = 0
    // Sockets and Node's buffers absorb several MB before anything backs up into the hub;
    // 3,000 x 16 KiB is far beyond that.
    while (sent < 3000 && closes.length === 0) {
      for (let i = 0; i < 4; i++) hub.broadcast({ data: payload, id: String(sent++) })
      maxLag = Math.max(maxLag, hub.stats().maxClientQueuedBytes)
      await reading.waitFor((e) => e.id === String(sent - 1), { timeoutMs: 10_000 })
    }
    await waitFor(() => closes.length === 1, { what: 'the stalled client to be cut' })
    assert.deepEqual(closes, ['slow'])
    assert.ok(maxLag <= maxLagBytes, `lag ${maxLag} B above ${maxLagBytes}`)
    hub.broadcast({ data: 'after', id: 'after' })
    await reading.waitFor((e) => e.id === 'after')
    assert.equal(reading.events.length, sent + 2)
    assert.equal(hub.metrics().closes.slow, 1)
    await waitFor(() => hub.stats().queuedBytes === 0, { what: 'the cut client to release its lag' })
    await reading.close()
    await stalled.close()
  } finally {
    await hub.close()
    await web.close()
  }
})

test('Hono: caps answer 503 with Retry-After; a staged close sends the final event and ends each stream', async () => {
  const hub = createHub({ heartbeatMs: 60_000, maxClients: 1, retryAfterSeconds: 7 })
  const refusals = []
  hub.on('refuse', (info) => refusals.push(info.reason))
  const clients = []
  const web = await honoServer((c) => hub.response(c.req.raw, (client) => clients.push(client)))
  try {
    const first = await openStream(web.server, { path: '/events' })
    assert.equal(first.status, 200)
    const second = await openStream(web.server, { path: '/events' })
    assert.equal(second.status, 503)
    assert.equal(second.headers['retry-after'], '7')
    assert.equal(await ended(second), 'end')
    assert.match(second.body, /hub-full/)
    assert.deepEqual(refusals, ['hub-full'])
    assert.equal(clients[1].refusal, 'hub-full')
    assert.equal(clients[1].closeReason, 'refused')

    await hub.close({ spreadMs: 0, drainMs: 2000, retryMs: 4000, retryJitterMs: 0, finalEvent: { event: 'bye', data: 'moving' } })
    assert.equal(await ended(first), 'end', 'the body ended cleanly (last chunk), not cut')
    assert.deepEqual(first.events.map((e) => [e.event, e.data]), [['bye', 'moving']])
    assert.deepEqual(first.retries, [4000])
    assert.equal(clients[0].closeReason, 'server')
  } finally {
    await hub.close()
    await web.close()
  }
})

test('Hono: 300 clients that leave by FIN, by RST or before the stream starts leave nothing behind', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const closes = new Map()
  // Requests with `?wait` are held in the handler (an auth check, say) until the test lets
  // them go, so their peers can leave before response() runs.
  let held = 0
  let release
  const gate = new Promise((resolve) => { release = resolve })
  const peersGone = []
  const web = await honoServer(async (c) => {
    if (c.req.query('wait') !== undefined) {
      held++
      peersGone.push(new Promise((resolve) => c.env.incoming.socket.once('close', resolve)))
      await gate
    }
    return hub.response(c.req.raw, (client) => {
      client.on('close', (reason) => closes.set(reason, (closes.get(reason) ?? 0) + 1))
    })
  })
  try {
    const before = hub.metrics().connectionsOpened
    for (let round = 0; round < 2; round++) {
      const clients = Array.from({ length: 100 }, () => rawClient(web.port, { path: '/events' }))
      await waitFor(() => clients.every((c) => c.comments.length > 0), { what: `round ${round}: 100 streams to open` })
      clients.forEach((c, i) => (i % 2 === 0 ? c.end() : c.reset()))
      await waitFor(() => hub.size === 0, { what: () => `round ${round}: every client to leave (size ${hub.size})` })
    }
    const early = Array.from({ length: 100 }, () => rawClient(web.port, { path: '/events?wait' }))
    await waitFor(() => held === 100, { what: () => `100 requests held in the handler (${held})` })
    early.forEach((c, i) => (i % 2 === 0 ? c.end() : c.reset()))
    await Promise.all(peersGone)
    assert.equal(hub.size, 0, 'nothing attached while the handler waited')
    release()
    await waitFor(() => (closes.get('client') ?? 0) === 300 && hub.size === 0,
      { what: () => `300 closes (${[...closes]}), size ${hub.size}` })
    assert.deepEqual([...closes.keys()], ['client'])
    assert.equal(hub.metrics().connectionsOpened - before, 300)
    assert.equal(hub.size, 0)
    assert.equal(hub.stats().queuedBytes, 0)
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(): a body nobody reads, or whose reader stopped, is cut after writeTimeoutMs and gives its place back', async () => {
  const writeTimeoutMs = 400
  const hub = createHub({ heartbeatMs: 60_000, writeTimeoutMs, maxClients: 1000 })
  const closes = new Map()
  const count = (reason) => closes.set(reason, (closes.get(reason) ?? 0) + 1)
  // Something a server would hold: nothing else keeps this process's loop alive.
  const keepAlive = setInterval(() => {}, 1000)
  try {
    const started = performance.now()
    for (let i = 0; i < 1000; i++) hub.response(new Request('http://127.0.0.1/events'), (c) => c.on('close', count))
    assert.equal(hub.size, 1000)
    assert.equal(hub.response(new Request('http://127.0.0.1/events')).status, 503, 'the dropped bodies hold every place')
    await waitFor(() => hub.size === 0 && closes.get('timeout') === 1000,
      { timeoutMs: 20_000, what: () => `the 1,000 unread bodies to be cut (size ${hub.size}, ${[...closes]})` })
    assert.ok(performance.now() - started >= writeTimeoutMs, 'none was cut before its deadline')
    assert.deepEqual([...closes.keys()], ['timeout'])

    // One that read its opening and then stopped while events waited for it.
    const decoder = new TextDecoder()
    let stopped
    const stoppedBody = hub.response(new Request('http://127.0.0.1/events'), (c) => { stopped = c }).body.getReader()
    assert.match(decoder.decode((await stoppedBody.read()).value), /^:\n\n$/, 'the opening')
    stopped.send({ data: 'never read' })
    assert.equal(await once(stopped, 'close', 20_000), 'timeout')

    // One whose reader is waiting with nothing to take is not stalled, however long it waits;
    // nor is one that keeps reading. The first read comes back only after three deadlines.
    let idle
    const idleBody = hub.response(new Request('http://127.0.0.1/events'), (c) => { idle = c }).body.getReader()
    await idleBody.read()
    const later = idleBody.read()
    await new Promise((resolve) => setTimeout(resolve, 3 * writeTimeoutMs))
    assert.equal(idle.closed, false, 'an idle reader with nothing to take is not cut')
    idle.send({ data: 'still here' })
    assert.match(decoder.decode((await later).value), /data: still here/)
    assert.equal(hub.size, 1)
    await idleBody.cancel()
    await waitFor(() => idle.closed, { what: 'the idle reader to leave' })
    assert.equal(idle.closeReason, 'client')
    assert.equal(hub.size, 0)
  } finally {
    clearInterval(keepAlive)
    await hub.close()
  }
})

test('hub.response() refuses what it cannot serve, with stable codes, before anything registers', async () => {
  const hub = createHub()
  try {
    assert.throws(() => hub.response({}), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => hub.response(new Request('http://127.0.0.1/'), { transprt: 'fetch' }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
    assert.throws(() => hub.response(new Request('http://127.0.0.1/'), { transport: 'native' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION', message: /transport must be 'auto' or 'fetch'/ })
    assert.throws(() => hub.response(new Request('http://127.0.0.1/'), { channels: [''] }), { code: 'ERR_SSE_INVALID_CHANNEL' })
    assert.throws(() => hub.response(new Request('http://127.0.0.1/'), {}, 'nope'), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT' })
    // The runtime's own TypeError, with no code, before.
    for (const headers of [{ 'x-id': 'a\nb' }, { 'x id': '1' }, [['x-only-name']]]) {
      assert.throws(() => hub.response(new Request('http://127.0.0.1/'), { headers }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION', message: /headers must be valid HTTP headers/ }, JSON.stringify(headers))
    }
    assert.equal(hub.metrics().connectionsOpened, 0)
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
  }
})

test('hub.response() with the runtime\'s own Request: backpressure from the reader, abort as leaving, nothing kept', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const controller = new AbortController()
  let client
  const request = new Request('http://127.0.0.1/events', { signal: controller.signal })
  const response = hub.response(request, (c) => { client = c })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  // Nothing else here holds the event loop while the body waits for Rust (a server would).
  const keepAlive = setInterval(() => {}, 1000)
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  const readUntil = async (done) => {
    for (let i = 0; i < 1000 && !done(); i++) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
  }
  try {
    client.send({ id: 'a', data: 'one' })
    await readUntil(() => text.includes('data: one\n\n'))
    assert.match(text, /id: a\ndata: one\n\n/)
    // Unread, the body takes one batch past its 16 KiB mark; what is sent after waits in the hub.
    const frames = () => text.split('data: x').length - 1
    client.send({ data: 'x'.repeat(64 * 1024) })
    await waitFor(() => hub.metrics().bytesWritten > 64 * 1024, { what: 'the first batch to go into the body' })
    // The body refused the batch it took past its mark, so the hub hands it nothing more:
    // these wait in the hub, where the high-water mark, the lag bound and the write deadline
    // see them (the 16th takes it past 64 KiB).
    const sent = []
    for (let i = 0; i < 16; i++) sent.push(client.send({ data: 'x'.repeat(4096) }))
    assert.equal(sent.at(-1), false, 'above the high-water mark')
    // Read after the writer had its chance: a second body, which reads, gets an event sent
    // after the 16, so its writer ran after they were queued; the first's had the same turn.
    let witness
    const witnessBody = hub.response(new Request('http://127.0.0.1/events'), (c) => { witness = c }).body.getReader()
    witness.send({ data: 'witness' })
    for (let i = 0, seen = ''; i < 10 && !seen.includes('data: witness'); i++) seen += decoder.decode((await witnessBody.read()).value)
    // The witness leaves before the queues are counted, so the count is the unread body's
    // alone (on Node 24 the witness's own batch could still be waiting for its ack).
    await witnessBody.cancel()
    await waitFor(() => witness.closed, { what: 'the witness to leave' })
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(hub.stats().queuedEvents, 16, 'the hub holds what the body has no room for')
    const { bytesWritten } = hub.metrics()
    assert.ok(bytesWritten < 80 * 1024, `nothing more went into the unread body (${bytesWritten} B written)`)
    await readUntil(() => frames() === 17)
    assert.equal(frames(), 17)
    await waitFor(() => hub.stats().queuedBytes === 0, { what: 'the reader to take everything' })
    assert.equal(getEventListeners(request.signal, 'abort').length, 1, 'the hub watches the request')
    const closed = once(client, 'close')
    controller.abort()
    assert.equal(await closed, 'client')
    assert.equal(hub.size, 0)
    assert.equal(hub.metrics().closes.client, 2, 'the witness and this one')
    assert.equal(getEventListeners(request.signal, 'abort').length, 0, 'nothing left on the signal')

    // A client the server closes: its body ends, and it lets go of its request's signal too.
    const secondRequest = new Request('http://127.0.0.1/events', { signal: new AbortController().signal })
    let other
    const body = hub.response(secondRequest, (c) => { other = c }).body.getReader()
    assert.equal(getEventListeners(secondRequest.signal, 'abort').length, 1)
    other.send({ data: 'bye' })
    other.close()
    let rest = ''
    for (let i = 0; i < 100; i++) {
      const { value, done } = await body.read()
      if (done) break
      rest += decoder.decode(value)
    }
    assert.match(rest, /data: bye\n\n$/)
    await waitFor(() => other.closed, { what: 'the second client to close' })
    assert.equal(other.closeReason, 'server')
    assert.equal(getEventListeners(secondRequest.signal, 'abort').length, 0, 'the server-closed client let go of its signal')
  } finally {
    clearInterval(keepAlive)
    await hub.close()
  }
})

test('hub.response(): a body nobody reads takes 16 KiB and the batch past it, then the hub hands it nothing until it is read', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let client
  const response = hub.response(new Request('http://127.0.0.1/events'), (c) => { client = c })
  const keepAlive = setInterval(() => {}, 1000)
  const event = (i) => String(i).padEnd(1000, 'x')
  try {
    // Each goes into the body before the next is sent, so each is a batch of its own, until
    // the body's queue passes 16 KiB: it refuses the batch that took it there.
    let sent = 0
    while (hub.metrics().bytesWritten <= 16 * 1024) {
      const before = hub.metrics().bytesWritten
      client.send({ data: event(sent++) })
      await waitFor(() => hub.metrics().bytesWritten > before, { what: `event ${sent - 1} to go into the body` })
    }
    const atRefusal = hub.metrics().bytesWritten
    // The hub hands it nothing more (without the refusal, it would go on to the end of its
    // credit, 16 KiB past the last acknowledgement at 8 KiB): the rest waits in the hub.
    for (; sent < 40; sent++) {
      client.send({ data: event(sent) })
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve))
    }
    // A second body, which reads, gets an event sent after the 40, so its writer ran after
    // they were queued; the first's had its chance too.
    let witness
    const witnessBody = hub.response(new Request('http://127.0.0.1/events'), (c) => { witness = c }).body.getReader()
    witness.send({ data: 'witness' })
    const decoder = new TextDecoder()
    for (let i = 0, seen = ''; i < 10 && !seen.includes('data: witness'); i++) seen += decoder.decode((await witnessBody.read()).value)
    await witnessBody.cancel()
    await waitFor(() => witness.closed, { what: 'the witness to leave' })
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve))
    // Since: the witness's opening and event, and at most the one event the hub may have
    // handed over before the refusal reached it (it travels back from the flush that wrote).
    const { bytesWritten } = hub.metrics()
    assert.ok(bytesWritten < atRefusal + 1008 + 100, `${bytesWritten - atRefusal} B more went into the unread body after it refused`)
    const waiting = hub.stats().queuedEvents
    assert.ok(waiting >= 40 - 18, `${waiting} events wait in the hub`)
    // Read, it gets all 40, in order.
    const reader = response.body.getReader()
    let text = ''
    for (let i = 0; i < 1000 && !text.includes(`data: ${event(39)}\n\n`); i++) text += decoder.decode((await reader.read()).value, { stream: true })
    const got = text.split('data: ').slice(1).map((frame) => Number.parseInt(frame, 10))
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i))
    await reader.cancel()
  } finally {
    clearInterval(keepAlive)
    await hub.close()
  }
})

test('hub.close() resolves once the runtime has taken every byte of each Fetch body and its end, within its limit', async () => {
  const decoder = new TextDecoder()
  const hub = createHub({ heartbeatMs: 60_000, writeTimeoutMs: 300 })
  const client = { closed: null }
  const response = hub.response(new Request(`http://${HOST}/events`), (c) => {
    client.closed = once(c, 'close')
  })
  const reader = response.body.getReader()
  assert.equal(decoder.decode((await reader.read()).value), ':\n\n', 'the opening')
  const order = []
  const closing = hub.close({ finalEvent: { event: 'bye', data: 'last words' } }).then(() => order.push('resolved'))
  // The final event is small: Rust hands it over and the client's 'close' fires without the
  // reader taking it. close() must still wait for the reader.
  assert.equal(await client.closed, 'server')
  const early = await Promise.race([closing.then(() => 'resolved'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 500))])
  assert.equal(early, 'waiting', 'close() resolved while the final event was not taken')
  let text = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    text += decoder.decode(value)
  }
  order.push('read to the end')
  assert.match(text, /event: bye\ndata: last words\n\n$/)
  await closing
  assert.deepEqual(order, ['read to the end', 'resolved'])

  // A body whose reader never comes back does not hold close() past its limit
  // (writeTimeoutMs + 1 s): it resolves, and the body is the runtime's to drop.
  // (No server holds the event loop open here: a timer stands in for it.)
  const server = setInterval(() => {}, 1000)
  try {
    const stuck = createHub({ heartbeatMs: 60_000, writeTimeoutMs: 300 })
    const stuckBody = stuck.response(new Request(`http://${HOST}/events`)).body.getReader()
    await stuckBody.read()
    const started = performance.now()
    await stuck.close({ finalEvent: { event: 'bye', data: 'unread' } })
    assert.ok(performance.now() - started < 10_000, 'close() resolved within its limit')
  } finally {
    clearInterval(server)
  }
})

test('hub.response({ heartbeatMs }): the body keeps its own heartbeat period; a bad one throws before anything registers', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const server = setInterval(() => {}, 1000)
  try {
    for (const heartbeatMs of [0, -1, 1.5, '100', 2 ** 31]) {
      assert.throws(() => hub.response(new Request(`http://${HOST}/events`), { heartbeatMs }),
        (error) => error.code === 'ERR_SSE_INVALID_OPTION' && /heartbeatMs/.test(error.message), `heartbeatMs ${heartbeatMs}`)
    }
    assert.equal(hub.metrics().connectionsOpened, 0)
    const reader = hub.response(new Request(`http://${HOST}/events`), { heartbeatMs: 50 }).body.getReader()
    const decoder = new TextDecoder()
    let text = ''
    while ((text.match(/:\n\n/g) ?? []).length < 4) text += decoder.decode((await reader.read()).value)
    assert.match(text, /^(:\n\n)+$/, 'the opening, then heartbeats only')
    await reader.cancel()
  } finally {
    clearInterval(server)
    await hub.close()
  }
})

test('hub.response() answers a HEAD with the head and no body, and nothing connects', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let connects = 0
  hub.on('connect', () => connects++)
  let closeReason = null
  const response = hub.response(new Request(`http://${HOST}/events`, { method: 'HEAD' }), (client) => {
    client.on('close', (reason) => { closeReason = reason })
  })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type'), /^text\/event-stream/)
  assert.equal(response.body, null)
  await waitFor(() => closeReason !== null, { what: 'the HEAD client\'s close' })
  assert.equal(closeReason, 'head')
  assert.equal(connects, 0)
  assert.equal(hub.metrics().connectionsOpened, 0)
  await hub.close()
})

/** Runs `source` in a child Node (argv[1]: this package's root), bounded: its exit and output. */
function runChild (source, timeoutMs = 15_000) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', source, path.join(__dirname, '..')], { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr })
    })
  })
}

test('a hub.response() body being read keeps the process alive until its events come; one nobody reads holds nothing', async () => {
  // The last timer fires, the broadcast goes to Rust, and the only thing pending is the read:
  // without a hold, the process ended there with the event on its way.
  const read = await runChild(`
    const { createHub } = require(process.argv[1])
    const hub = createHub({ heartbeatMs: 60000 })
    const reader = hub.response(new Request('http://127.0.0.1/events')).body.getReader()
    setTimeout(() => hub.broadcast({ data: 'hello' }), 50)
    ;(async () => {
      const decoder = new TextDecoder()
      let text = ''
      while (!text.includes('hello')) text += decoder.decode((await reader.read()).value)
      console.log(JSON.stringify(text))
      await hub.close()
    })()
  `)
  assert.equal(read.code, 0, read.stderr)
  assert.equal(read.stdout.trim(), JSON.stringify(':\n\ndata: hello\n\n'))
  // Its reader served and the hub closed, the process ends by itself (the timeout would say 'SIGTERM').
  const unread = await runChild(`
    const { createHub } = require(process.argv[1])
    const hub = createHub({ heartbeatMs: 60000 })
    const response = hub.response(new Request('http://127.0.0.1/events'))
    console.log(response.status)
  `)
  assert.deepEqual([unread.code, unread.stdout.trim()], [0, '200'], unread.stderr)
})
