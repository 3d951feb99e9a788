'use strict'

// The Fastify plugin and the Express helper, with real clients; and both module systems.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { sse } = require('../lib/express')
const { HOST, withUrl, waitFor, rawClient, openFdCount } = require('./helpers')

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
  app.get('/broken', sse(hub, { onConnect: async () => { throw new Error('boom') } }))
  const server = app.listen(0, HOST)
  await new Promise((resolve) => server.once('listening', resolve))
  const http = withUrl(server)
  try {
    const baseline = openFdCount()
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
    await waitFor(() => hub.size === 0 && hub.channelSize('news') === 0, { what: 'the client to leave' })
    await waitFor(() => openFdCount() <= baseline, { what: 'fds to return to baseline' })

    // A failing onConnect closes the client.
    const raw = rawClient(http.port, { path: '/broken' })
    await waitFor(() => raw.ended, { what: 'the broken stream to end' })
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Express helper rejects bad arguments with codes', () => {
  const hub = createHub()
  try {
    assert.throws(() => sse({}), (e) => e instanceof TypeError && e.code === 'ERR_SSE_INVALID_ARGUMENT')
    assert.throws(() => sse(hub, { onConnect: 'yes' }), (e) => e.code === 'ERR_SSE_INVALID_OPTION')
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
