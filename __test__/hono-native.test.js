'use strict'
// needs: procfs

// hub.response(c) with a Hono context on @hono/node-server: served from Node's own response as
// attach() serves it (natively on plain HTTP/1.1), with the headers Hono's middleware put on
// the context's Response; everything else as the Fetch transport promises (resume, caps,
// staged close, authorization, leaving without a trace). c.req.raw stays the Fetch body.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hono } = require('hono')
const { cors } = require('hono/cors')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { HOST, rawClient, waitFor, openFdCount, listenHono, ended } = require('./helpers')

/** A Hono app on @hono/node-server: CORS and a header set after the handler, then GET /events. */
async function honoServer (route) {
  const app = new Hono()
  app.use('*', cors({ origin: 'http://app.test' }))
  app.use('*', async (c, next) => {
    await next()
    c.res.headers.set('x-served-by', 'after-next')
  })
  app.get('/events', route)
  app.onError((error, c) => c.text(`failed: ${error.message}`, 500))
  return listenHono(app)
}

test('hub.response(c) streams natively on Node: the middleware\'s headers and the app\'s in the head, send() and publish() reach an EventSource', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 1500 })
  const clients = []
  const web = await honoServer((c) => hub.response(c.req.query('fetch') !== undefined ? c.req.raw : c,
    { channels: ['news'], headers: { 'x-app': 'mine' } }, (client) => {
      clients.push(client)
      client.send({ event: 'welcome', data: `hello ${client.id}` })
    }))
  try {
    const raw = await openStream(web.server, { path: '/events', headers: { Origin: 'http://app.test' } })
    await raw.waitFor('welcome')
    assert.equal(clients[0].transport, 'native')
    assert.equal(hub.metrics().connections.native, 1)
    assert.equal(raw.status, 200)
    assert.equal(raw.headers['content-type'], 'text/event-stream; charset=utf-8')
    assert.equal(raw.headers['cache-control'], 'no-cache, no-transform')
    assert.equal(raw.headers['access-control-allow-origin'], 'http://app.test', 'set by hono/cors before the handler')
    assert.equal(raw.headers['x-served-by'], 'after-next', 'set on c.res after the handler returned')
    assert.equal(raw.headers['x-app'], 'mine')
    assert.equal(raw.headers['x-hono-already-sent'], undefined)
    assert.deepEqual(raw.retries, [1500])

    const es = new EventSource(`${web.url}/events`)
    const got = []
    es.onmessage = (e) => got.push(e.data)
    await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject })
    assert.equal(hub.publish('news', { data: 'first' }), 2)
    await waitFor(() => got.length === 1, { what: 'the EventSource to get the publish' })
    assert.deepEqual([got[0], (await raw.next()).data], ['first', 'first'])

    // c.req.raw is the Response body, as on Bun and Deno.
    const viaFetch = await openStream(web.server, { path: '/events?fetch', headers: { Origin: 'http://app.test' } })
    await viaFetch.waitFor('welcome')
    assert.equal(clients[2].transport, 'fetch')
    assert.equal(viaFetch.headers['access-control-allow-origin'], 'http://app.test')
    es.close()
    await raw.close()
    await viaFetch.close()
    // Each Client hears of its close as an event after the hub counted it gone.
    await waitFor(() => clients.every((c) => c.closed) && hub.size === 0, { what: () => `every client to leave (size ${hub.size})` })
    assert.deepEqual(clients.map((c) => c.closeReason), ['client', 'client', 'client'])
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(c): a reconnect resumes from Last-Event-ID; heartbeatMs applies to the native stream', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.channel('ticks', { history: { maxEvents: 100 } })
  const web = await honoServer((c) => hub.response(c, { channels: ['ticks'], heartbeatMs: c.req.query('beat') ? 50 : undefined }))
  try {
    const first = await openStream(web.server, { path: '/events' })
    for (let i = 1; i <= 5; i++) hub.publish('ticks', { id: `t${i}`, data: String(i) })
    await first.waitFor((e) => e.id === 't5')
    assert.equal(first.events.length, 5)
    // It leaves, and comes back with the last id it saw.
    await first.close()
    for (let i = 6; i <= 8; i++) hub.publish('ticks', { id: `t${i}`, data: String(i) })
    const again = await first.reconnect()
    await again.waitFor((e) => e.id === 't8')
    assert.deepEqual(again.events.map((e) => e.data), ['6', '7', '8'])
    assert.equal(hub.metrics().connections.native, 1, 'resumed on the native transport')

    // The hub beats every 60 s; this client asked for 50 ms.
    const beating = await openStream(web.server, { path: '/events?beat=1' })
    await waitFor(() => beating.comments.length >= 4, { what: () => `heartbeats at 50 ms (${beating.comments.length})` })
    assert.equal(again.comments.length, 1, 'the others keep the hub\'s period')
    await again.close()
    await beating.close()
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(c): caps answer 503 through Node, a staged close ends the stream cleanly, async checks hold the client', async () => {
  const hub = createHub({ heartbeatMs: 60_000, maxClients: 1, retryAfterSeconds: 7 })
  hub.authorize('private:{id}', async ({ request }) => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return request.headers.get('authorization') === 'Bearer ok'
  })
  const clients = []
  const web = await honoServer((c) => hub.response(c, { channels: [c.req.query('channel') ?? 'public'] }, (client) => clients.push(client)))
  try {
    const denied = await openStream(web.server, { path: '/events?channel=private:1' })
    assert.equal(denied.status, 403)
    assert.equal(await ended(denied), 'end')
    assert.equal(denied.body, 'event stream forbidden\n')
    const first = await openStream(web.server, { path: '/events?channel=private:1', headers: { Authorization: 'Bearer ok' } })
    assert.equal(first.status, 200, 'the checked stream opened')
    assert.equal(clients[1].transport, 'native')
    const second = await openStream(web.server, { path: '/events' })
    assert.equal(second.status, 503)
    assert.equal(second.headers['retry-after'], '7')
    assert.equal(await ended(second), 'end')
    assert.match(second.body, /hub-full/)

    await hub.close({ spreadMs: 0, drainMs: 2000, retryMs: 4000, retryJitterMs: 0, finalEvent: { event: 'bye', data: 'moving' } })
    assert.equal(await ended(first), 'end', 'ended with the last chunk, not cut')
    assert.deepEqual(first.events.map((e) => [e.event, e.data]), [['bye', 'moving']])
    assert.equal(clients[1].closeReason, 'server')
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(c): an onClient that throws is Hono\'s error, and 200 clients leaving by FIN or RST leave no descriptor, client or queue behind', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const web = await honoServer((c) => hub.response(c, (client) => {
    if (c.req.query('throw') !== undefined) throw new Error('app bug')
  }))
  try {
    const failed = await fetch(`${web.url}/events?throw`)
    assert.equal(failed.status, 500)
    assert.equal(await failed.text(), 'failed: app bug')
    await waitFor(() => hub.size === 0, { what: 'the failed client to go' })

    const fdsBefore = openFdCount()
    const clients = Array.from({ length: 200 }, () => rawClient(web.port, { path: '/events' }))
    await waitFor(() => clients.every((c) => c.comments.length > 0), { what: '200 streams to open' })
    assert.equal(hub.metrics().connections.native, 200)
    clients.forEach((c, i) => (i % 2 === 0 ? c.end() : c.reset()))
    await waitFor(() => hub.size === 0, { what: () => `every client to leave (size ${hub.size})` })
    await waitFor(() => openFdCount() <= fdsBefore, { what: () => `descriptors back to ${fdsBefore} (${openFdCount()})` })
    assert.equal(hub.stats().queuedBytes, 0)
    assert.equal(hub.metrics().closes.client, 200)
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(c): what was sent before a close in the same turn still goes out, then a clean end; a middleware\'s own answer after next() replaces the stream', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = new Hono()
  app.use('/guarded', async (c, next) => {
    await next()
    c.res = c.text('denied', 401)
  })
  app.get('/guarded', (c) => hub.response(c, (client) => client.send({ data: 'secret' })))
  app.get('/once', (c) => hub.response(c, (client) => {
    client.send({ data: 'only' })
    client.close()
  }))
  // No middleware: Hono hands the handler's Response to the adapter without setting c.res.
  app.get('/bye', (c) => {
    const answer = hub.response(c, (client) => client.send({ data: 'hi' }))
    if (c.req.query('close') !== undefined) hub.close()
    return answer
  })
  const web = await listenHono(app)
  try {
    const once = await openStream(web.server, { path: '/once' })
    assert.equal(await ended(once), 'end', 'the closed stream ended with its last chunk')
    assert.deepEqual(once.events.map((e) => e.data), ['only'])

    const guarded = await openStream(web.server, { path: '/guarded' })
    assert.equal(guarded.status, 401)
    assert.equal(await ended(guarded), 'end')
    assert.equal(guarded.body, 'denied')
    await waitFor(() => hub.size === 0, { what: () => `the denied client to go (size ${hub.size})` })

    const bye = await openStream(web.server, { path: '/bye?close' })
    assert.equal(bye.status, 200)
    assert.equal(await ended(bye), 'end', 'the stream ended by hub.close() ended with its last chunk')
    assert.deepEqual(bye.events.map((e) => e.data), ['hi'])
  } finally {
    await hub.close()
    await web.close()
  }
})

test('hub.response(c): every cookie, the middleware\'s and the headers option\'s, on its own line; a header Node would refuse throws before anything registers', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const { setCookie } = require('hono/cookie')
  const app = new Hono()
  app.use('*', async (c, next) => {
    await next()
    setCookie(c, 'm1', 'x')
    setCookie(c, 'm2', 'y')
  })
  app.get('/events', (c) => hub.response(c, {
    headers: c.req.query('bad') !== undefined ? { 'x-bad': 'a\u0001b' } : [['set-cookie', 'o1=1'], ['set-cookie', 'o2=2']]
  }))
  app.onError((error, c) => c.text(`failed: ${error.code}`, 500))
  const web = await listenHono(app)
  const port = web.port
  try {
    const raw = rawClient(port, { path: '/events' })
    await waitFor(() => raw.head !== null, { what: 'the head' })
    const cookies = [...raw.head.matchAll(/\r\nset-cookie: ([^\r]*)/gi)].map((m) => m[1].split(';')[0])
    assert.deepEqual(cookies, ['m1=x', 'm2=y', 'o1=1', 'o2=2'])
    raw.end()
    const bad = await fetch(`http://${HOST}:${port}/events?bad`)
    assert.equal(bad.status, 500)
    assert.equal(await bad.text(), 'failed: ERR_INVALID_CHAR')
    await waitFor(() => hub.size === 0, { what: 'the stream to go' })
    assert.equal(hub.metrics().connectionsOpened, 1, 'the refused header registered nothing')
  } finally {
    await hub.close()
    await web.close()
  }
})
