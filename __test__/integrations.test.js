'use strict'
// needs: curl, openssl, procfs

// The Fastify plugin and the Express helper, with real clients; and both module systems.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { sse } = require('../lib/express')
const { HOST, withUrl, waitFor, rawClient, openFdCount, openFdTargets, fdsOpenedSince, curl, selfSignedCert } = require('./helpers')

test('Fastify: reply.sse() streams to eventsource and fastify.close() ends streams and resolves', async () => {
  const app = Fastify()
  await app.register(require('native-sse/fastify'), { heartbeatMs: 60_000, retryMs: 1500 })
  assert.equal(typeof app.sse.broadcast, 'function')
  const connected = []
  app.get('/events', (request, reply) => {
    const client = reply.sse({ channels: ['prices'] })
    connected.push(client)
    client.send({ event: 'hello', data: 'fastify' })
  })
  await app.listen({ port: 0, host: HOST })
  const { port } = app.server.address()
  const source = new EventSource(`http://${HOST}:${port}/events`)
  const got = []
  source.addEventListener('hello', (e) => got.push(e.data))
  source.addEventListener('price', (e) => got.push(JSON.parse(e.data)))
  try {
    await waitFor(() => got.length === 1, { what: 'the hello event' })
    assert.equal(app.sse.publish('prices', { event: 'price', data: { p: 1 } }), 1)
    await waitFor(() => got.length === 2, { what: 'the published price' })
    assert.deepEqual(got, ['fastify', { p: 1 }])

    // A raw client sees the stream end cleanly when Fastify closes.
    const raw = rawClient(port, { path: '/events' })
    await waitFor(() => raw.events.length === 1, { what: 'the raw client' })
    assert.match(raw.raw.toString(), /retry: 1500\n\n/)
    const closes = []
    for (const client of connected) client.on('close', (reason) => closes.push(reason))
    source.close()
    await app.close()
    assert.equal(app.sse.closed, true)
    await waitFor(() => raw.ended, { what: 'the stream to end' })
    assert.equal(raw.sawLastChunk, true)
    assert.ok(closes.includes('server'))
    assert.equal(app.sse.size, 0)
  } finally {
    source.close()
    if (!app.sse.closed) await app.close()
  }
})

test('Fastify plugin is exported the way official plugins are', () => {
  const plugin = require('native-sse/fastify')
  assert.equal(plugin.default, plugin)
  assert.equal(plugin.nativeSse, plugin)
  assert.equal(plugin[Symbol.for('fastify.display-name')], 'native-sse')
  assert.equal(plugin[Symbol.for('skip-override')], true)
})

test('Express: sse() streams to a real client, calls onConnect, and cleans up on disconnect', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = express()
  const seen = []
  app.get('/events', sse(hub, {
    channels: ['news'],
    onConnect: (client, req) => {
      seen.push({ id: client.id, path: req.path, lastEventId: client.lastEventId })
      client.send({ event: 'welcome', data: 'express' })
    }
  }))
  const server = app.listen(0, HOST)
  await new Promise((resolve) => server.once('listening', resolve))
  const http = withUrl(server)
  try {
    const baseline = openFdCount()
    const fdsBefore = openFdTargets()
    const source = new EventSource(`${http.url}/events`)
    const got = []
    source.addEventListener('welcome', (e) => got.push(e.data))
    source.addEventListener('story', (e) => got.push(e.data))
    await waitFor(() => got.length === 1, { what: 'the welcome event' })
    assert.equal(hub.publish('news', { event: 'story', data: 'headline' }), 1)
    await waitFor(() => got.length === 2, { what: 'the story' })
    assert.deepEqual(got, ['express', 'headline'])
    assert.deepEqual(seen.map((s) => s.path), ['/events'])
    source.close()
    await waitFor(() => hub.size === 0 && hub.channel('news').size === 0, { what: 'the client to leave' })
    await waitFor(() => openFdCount() <= baseline, {
      what: () => `fds to return to ${baseline} (${openFdCount()} open; new since: ${fdsOpenedSince(fdsBefore).join(', ')})`
    })
  } finally {
    await hub.close()
    await http.close()
  }
})

for (const [name, onConnect] of [
  ['throws', (client) => { client.send({ data: 'before the failure' }); throw new Error('boom') }],
  ['rejects', async (client) => { client.send({ data: 'before the failure' }); throw new Error('boom') }]
]) {
  test(`Express: an onConnect that ${name} closes the stream gracefully and reports to onError`, async () => {
    const hub = createHub({ heartbeatMs: 60_000 })
    const app = express()
    const reported = []
    const closes = []
    app.get('/events', sse(hub, {
      onConnect: (client, req) => {
        client.on('close', (reason) => closes.push(reason))
        return onConnect(client, req)
      },
      onError: (error, client, req) => reported.push({ message: error.message, id: client.id, path: req.path })
    }))
    const server = app.listen(0, HOST)
    await new Promise((resolve) => server.once('listening', resolve))
    const http = withUrl(server)
    try {
      const raw = rawClient(http.port, { path: '/events' })
      await waitFor(() => raw.ended, { what: 'the stream to end' })
      assert.equal(raw.sawLastChunk, true, 'a graceful end (terminating chunk), not a destroyed socket')
      assert.deepEqual(raw.events.map((e) => e.data), ['before the failure'])
      assert.match(raw.head, /^HTTP\/1\.1 200 /)
      await waitFor(() => closes.length === 1, { what: 'the close event' })
      assert.deepEqual(closes, ['server'])
      assert.deepEqual(reported.map((r) => [r.message, r.path]), [['boom', '/events']])
      assert.equal(hub.size, 0)
    } finally {
      await hub.close()
      await http.close()
    }
  })
}

test('Express: the compression middleware leaves the stream uncompressed and flowing', async () => {
  const compression = require('compression')
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = express()
  app.use(compression({ threshold: 0 }))
  app.get('/events/:transport', (req, res) => hub.attach(req, res, { transport: req.params.transport }))
  app.get('/plain', (req, res) => res.type('text').send('x'.repeat(2000)))
  const server = app.listen(0, HOST)
  await new Promise((resolve) => server.once('listening', resolve))
  const http = withUrl(server)
  try {
    // The control: the same middleware does compress an ordinary response.
    const control = await curl(['-s', '-D', '-', '-o', '/dev/null', '-H', 'Accept-Encoding: gzip', `${http.url}/plain`])
    assert.match(control.stdout.toString(), /content-encoding: gzip/i)
    for (const transport of ['native', 'node']) {
      const raw = rawClient(http.port, { path: `/events/${transport}`, headers: { 'Accept-Encoding': 'gzip, deflate, br' } })
      await waitFor(() => raw.comments.length === 1, { what: `the ${transport} stream to open` })
      assert.doesNotMatch(raw.head, /content-encoding/i)
      for (let i = 0; i < 3; i++) {
        hub.broadcast({ data: `event ${i}` })
        await waitFor(() => raw.events.length === i + 1, { what: `event ${i} on ${transport}` })
      }
      assert.deepEqual(raw.events.map((e) => e.data), ['event 0', 'event 1', 'event 2'])
      raw.end()
      await waitFor(() => hub.size === 0, { what: 'the client to leave' })
    }
  } finally {
    await hub.close()
    await http.close()
  }
})

/** curl with a bounded wait: status, headers and body of one request. */
async function request (url, extra = []) {
  const { code, stdout } = await curl(['-sk', '--max-time', '5', '-D', '-', ...extra, url], 10_000)
  assert.equal(code, 0, `curl answered nothing for ${url} within 5 s`)
  const text = stdout.toString()
  const at = text.indexOf('\r\n\r\n')
  return { status: Number(text.slice(9, 12)), head: text.slice(0, at), body: text.slice(at + 4) }
}

test('Fastify: reply.sse() that cannot attach answers 500 with the code instead of hanging', async () => {
  const { key, cert } = selfSignedCert()
  for (const https of [undefined, { key, cert }]) {
    const app = Fastify({ https })
    await app.register(require('native-sse/fastify'))
    app.get('/bad-option', (request, reply) => { reply.sse({ chanels: ['typo'] }) })
    app.get('/native', (request, reply) => { reply.sse({ transport: 'native' }).close() })
    app.get('/ok', (request, reply) => { reply.sse().close() })
    await app.listen({ port: 0, host: HOST })
    const base = `${https ? 'https' : 'http'}://${HOST}:${app.server.address().port}`
    try {
      const bad = await request(`${base}/bad-option`)
      assert.equal(bad.status, 500)
      assert.equal(JSON.parse(bad.body).code, 'ERR_SSE_UNKNOWN_OPTION')
      const native = await request(`${base}/native`)
      if (https) {
        assert.equal(native.status, 500)
        assert.equal(JSON.parse(native.body).code, 'ERR_SSE_TRANSPORT_UNAVAILABLE')
        assert.match(JSON.parse(native.body).message, /TLS/)
      } else {
        assert.equal(native.status, 200, 'plain HTTP/1.1 can be handed off')
        assert.match(native.head, /text\/event-stream/)
      }
      const ok = await request(`${base}/ok`)
      assert.equal(ok.status, 200)
      // The body ends (its last chunk written) a moment before the hub forgets the client.
      await waitFor(() => app.sse.size === 0, { what: () => `the closed clients to leave (size ${app.sse.size})` })
    } finally {
      await app.close()
    }
  }
})

test('Fastify: reply.sse() on a closed or full hub answers 503 with Retry-After', async () => {
  const app = Fastify()
  await app.register(require('native-sse/fastify'), { maxClients: 1, retryAfterSeconds: 3 })
  const refusals = []
  app.get('/events', (request, reply) => {
    const client = reply.sse()
    if (client.refusal !== null) refusals.push(client.refusal)
  })
  await app.listen({ port: 0, host: HOST })
  const url = `http://${HOST}:${app.server.address().port}/events`
  try {
    const first = rawClient(app.server.address().port, { path: '/events' })
    await waitFor(() => first.head !== null, { what: 'the first stream' })
    const full = await request(url)
    assert.equal(full.status, 503)
    assert.match(full.head, /\r\nretry-after: 3\b/i)
    first.socket.destroy()
    await app.sse.close()
    const closed = await request(url)
    assert.equal(closed.status, 503)
    assert.match(closed.head, /\r\nretry-after: 3\b/i)
    assert.deepEqual(refusals, ['hub-full', 'closing'])
    assert.equal(app.sse.retryAfterSeconds, 3, 'what the plugin tells a client whose attach threw')
  } finally {
    await app.close()
  }
})

test('Fastify: fastify.close() runs the staged close given as the plugin\'s close option', async () => {
  const app = Fastify()
  await app.register(require('native-sse/fastify'), { close: { spreadMs: 300, finalEvent: { event: 'bye', data: 'restarting' } } })
  app.get('/events', (request, reply) => { reply.sse() })
  await app.listen({ port: 0, host: HOST })
  const port = app.server.address().port
  const clients = [rawClient(port, { path: '/events' }), rawClient(port, { path: '/events' })]
  await waitFor(() => app.sse.size === 2 && clients.every((c) => c.head !== null), { what: 'two streams' })
  await app.close()
  await waitFor(() => clients.every((c) => c.finishedAt !== null), { what: 'the streams to end' })
  for (const client of clients) {
    assert.deepEqual(client.events.map((e) => [e.event, e.data]), [['bye', 'restarting']])
    assert.equal(client.retries.length, 1)
  }
  assert.equal(app.sse.metrics().closes.server, 2)
})

test('Fastify: a bad close option fails the registration, whether its name, a range or a final event\'s field is wrong', async () => {
  // A range or a field checked only by hub.close() made fastify.close() reject instead, and
  // leave the hub and its streams open.
  const cases = [
    [{ spread: 1 }, (error) => error.code === 'ERR_SSE_UNKNOWN_OPTION'],
    [{ spreadMs: -1 }, (error) => error instanceof RangeError && error.code === 'ERR_SSE_INVALID_OPTION' && /spreadMs/.test(error.message)],
    [{ drainMs: 2 ** 40 }, (error) => error.code === 'ERR_SSE_INVALID_OPTION' && /drainMs/.test(error.message)],
    [{ finalEvent: { event: 'a\nb', data: 'x' } }, (error) => error.code === 'ERR_SSE_INVALID_FIELD']
  ]
  for (const [close, check] of cases) {
    const app = Fastify()
    app.register(require('native-sse/fastify'), { close })
    await assert.rejects(app.ready(), check, JSON.stringify(close))
  }
})

test('Express helper rejects bad arguments with codes', () => {
  const hub = createHub()
  try {
    assert.throws(() => sse({}), (e) => e instanceof TypeError && e.code === 'ERR_SSE_INVALID_ARGUMENT')
    assert.throws(() => sse(hub, { onConnect: 'yes' }), (e) => e.code === 'ERR_SSE_INVALID_OPTION')
    assert.throws(() => sse(hub, { onError: 1 }), (e) => e.code === 'ERR_SSE_INVALID_OPTION' && /onError must be a function/.test(e.message))
    assert.throws(() => sse(hub, { channel: 'x' }), (e) => e.code === 'ERR_SSE_UNKNOWN_OPTION')
  } finally {
    hub.close()
  }
})

test('require() and import both expose the API', async () => {
  const esm = await import('native-sse')
  const cjs = require('native-sse')
  assert.equal(esm.createHub, cjs.createHub)
  assert.equal(typeof esm.attach, 'function')
  const fastifyPlugin = await import('native-sse/fastify')
  assert.equal(fastifyPlugin.default, require('native-sse/fastify'))
  assert.equal(fastifyPlugin.nativeSse, require('native-sse/fastify'))
  const expressHelper = await import('native-sse/express')
  assert.equal(expressHelper.sse, sse)
})
