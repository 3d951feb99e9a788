'use strict'
// needs: nothing

// The same stream served from plain node:http, Express 5 and Fastify 5 (with reply.hijack()),
// read by the eventsource package; middleware headers set before attach() go out with the head.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { HOST, startHttp, withUrl, waitFor, rawClient } = require('./helpers')

async function receiveThree (url) {
  const source = new EventSource(url)
  const got = []
  source.addEventListener('tick', (e) => got.push(e.data))
  try {
    await waitFor(() => got.length >= 3, { what: 'three ticks' })
  } finally {
    source.close()
  }
  return got
}

function streamThree (hub, req, res) {
  const client = hub.attach(req, res)
  for (let i = 1; i <= 3; i++) client.send({ event: 'tick', data: `tick ${i}`, id: String(i) })
  return client
}

test('plain node:http', async () => {
  const hub = createHub()
  const http = await startHttp((req, res) => streamThree(hub, req, res))
  try {
    assert.deepEqual(await receiveThree(http.url), ['tick 1', 'tick 2', 'tick 3'])
    await waitFor(() => hub.size === 0, { what: 'the client to leave' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Express 5, with headers from middleware kept', async () => {
  const hub = createHub()
  const app = express()
  app.use((req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    next()
  })
  app.get('/events', (req, res) => streamThree(hub, req, res))
  const server = app.listen(0, HOST)
  await new Promise((resolve) => server.once('listening', resolve))
  const http = withUrl(server)
  try {
    assert.deepEqual(await receiveThree(`${http.url}/events`), ['tick 1', 'tick 2', 'tick 3'])
    const raw = rawClient(http.port, { path: '/events' })
    await waitFor(() => raw.events.length === 3, { what: 'raw events' })
    assert.match(raw.head, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(raw.head, /\r\nAccess-Control-Allow-Origin: \*/i)
    assert.match(raw.head, /\r\nContent-Type: text\/event-stream/i)
    assert.match(raw.head, /\r\nConnection: keep-alive/i)
    assert.doesNotMatch(raw.head, /Content-Length|Content-Encoding/i)
    raw.end()
    await waitFor(() => hub.size === 0, { what: 'clients to leave' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Fastify 5 with reply.hijack()', async () => {
  const hub = createHub()
  const app = Fastify()
  app.get('/events', (request, reply) => {
    reply.hijack()
    streamThree(hub, request.raw, reply.raw)
  })
  await app.listen({ port: 0, host: HOST })
  try {
    const { port } = app.server.address()
    assert.deepEqual(await receiveThree(`http://${HOST}:${port}/events`), ['tick 1', 'tick 2', 'tick 3'])
    await waitFor(() => hub.size === 0, { what: 'the client to leave' })
  } finally {
    await hub.close()
    await app.close()
  }
})

test('HTTP/1.0 clients get an unchunked stream ended by close', async () => {
  const hub = createHub()
  const http = await startHttp((req, res) => {
    const client = streamThree(hub, req, res)
    client.close()
  })
  try {
    const raw = rawClient(http.port, { http10: true })
    await waitFor(() => raw.ended, { what: 'the server to end the stream' })
    assert.doesNotMatch(raw.head, /Transfer-Encoding/i)
    assert.deepEqual(raw.events.map((e) => e.data), ['tick 1', 'tick 2', 'tick 3'])
  } finally {
    await hub.close()
    await http.close()
  }
})

test('module-level attach() serves from the default hub', async () => {
  const sse = require('..')
  const http = await startHttp((req, res) => streamThree({ attach: sse.attach }, req, res))
  try {
    assert.deepEqual(await receiveThree(http.url), ['tick 1', 'tick 2', 'tick 3'])
    const hub = sse.getDefaultHub()
    assert.equal(hub.metrics().connectionsOpened, 1)
    await waitFor(() => hub.size === 0, { what: 'the client to leave' })
  } finally {
    await sse.getDefaultHub().close()
    await http.close()
  }
})

test('Express helper: channels chosen per request resume with Last-Event-ID like fixed ones', async () => {
  const { sse } = require('../lib/express')
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 } })
  const app = express()
  const attached = []
  app.get('/events/:user', sse(hub, {
    channels: (req) => [`user:${req.params.user}`],
    onConnect: (client) => attached.push(client)
  }))
  const http = await startHttp(app)
  try {
    for (let i = 1; i <= 4; i++) hub.publish('user:ada', { id: `ada-${i}`, data: `for ada ${i}` })
    hub.publish('user:bob', { id: 'bob-1', data: 'for bob' })
    const raw = rawClient(http.port, { path: '/events/ada', headers: { 'Last-Event-ID': 'ada-2' } })
    await waitFor(() => raw.events.length === 2, { what: "ada's replay" })
    assert.deepEqual(raw.events.map((e) => [e.id, e.data]), [['ada-3', 'for ada 3'], ['ada-4', 'for ada 4']])
    assert.equal(attached[0].resume, 'replayed')
    hub.publish('user:bob', { data: 'not for ada' })
    hub.publish('user:ada', { id: 'ada-5', data: 'live' })
    await waitFor(() => raw.events.length === 3, { what: 'the live event' })
    assert.equal(raw.events[2].data, 'live')
    raw.end()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('HEAD through Express app.get and Fastify\'s exposed HEAD route: the head, no connection, no onConnect', async () => {
  const { sse } = require('../lib/express')
  const hub = createHub({ heartbeatMs: 60_000 })
  const connects = []
  hub.on('connect', () => connects.push('hub'))
  const app = express()
  app.get('/events', sse(hub, { onConnect: () => connects.push('onConnect') }))
  const server = await new Promise((resolve) => { const s = app.listen(0, HOST, () => resolve(s)) })
  const fastify = Fastify()
  fastify.register(require('../lib/fastify'), { heartbeatMs: 60_000 })
  fastify.get('/events', (request, reply) => { reply.sse() })
  await fastify.listen({ port: 0, host: HOST })
  try {
    for (const port of [server.address().port, fastify.server.address().port]) {
      const head = await fetch(`http://${HOST}:${port}/events`, { method: 'HEAD' })
      assert.equal(head.status, 200)
      assert.match(head.headers.get('content-type'), /^text\/event-stream/)
      assert.equal(await head.text(), '')
    }
    // A GET still connects, so the HEADs above would have been seen.
    const raw = rawClient(server.address().port, { path: '/events' })
    await waitFor(() => connects.length === 2, { what: 'the GET to connect' })
    assert.deepEqual(connects, ['hub', 'onConnect'])
    assert.equal(fastify.sse.metrics().connectionsOpened, 0)
    raw.end()
  } finally {
    await hub.close()
    await new Promise((resolve) => server.close(resolve))
    await fastify.close()
  }
})
