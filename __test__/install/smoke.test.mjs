// The install smoke test: run by scripts/install-test.js inside a fresh app that installed the
// packed tarballs (no Rust toolchain on PATH), so every import below resolves to what a user
// gets from `npm install native-sse`. Run directly (`node smoke.test.mjs`), not through
// `node --test`, so it also runs under qemu user-mode emulation, which cannot start a child of
// another architecture.
//
// SMOKE_PLATFORM: the binary package expected to serve the addon (e.g. linux-arm64-gnu).
// SMOKE_TRANSPORTS: which transports to force, comma-separated (default native,node).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { createHub } from 'native-sse'
import { sse } from 'native-sse/express'
import nativeSse from 'native-sse/fastify'
import { connect } from 'native-sse/client'
import express from 'express'
import Fastify from 'fastify'

const require = createRequire(import.meta.url)
const PLATFORM = process.env.SMOKE_PLATFORM
const TRANSPORTS = (process.env.SMOKE_TRANSPORTS ?? 'native,node').split(',')
// Generous: under emulation every instruction is translated, and a test waits on events.
const WAIT_MS = 60_000

/** Resolves with the value `subscribe`'s callback is called with first, or fails after WAIT_MS. */
function waitFor (what, subscribe) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS)
    subscribe((value) => { clearTimeout(timer); resolve(value) })
  })
}

/** An event-stream reader over a raw node:http request: yields parsed events in order. */
function openStream (url, headers = {}) {
  const events = []
  const waiters = []
  let buffer = ''
  const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } })
  const response = once(request, 'response').then(([res]) => {
    res.setEncoding('utf8')
    res.on('data', (chunk) => {
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = { event: 'message', data: [], id: undefined }
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue
          const colon = line.indexOf(':')
          const field = line.slice(0, colon)
          const value = line.slice(colon + 1).replace(/^ /, '')
          if (field === 'data') event.data.push(value)
          else if (field === 'event') event.event = value
          else if (field === 'id') event.id = value
        }
        if (event.data.length === 0) continue
        event.data = event.data.join('\n')
        events.push(event)
        waiters.splice(0).forEach((wake) => wake())
      }
    })
    return res
  })
  return {
    response,
    /** The next `count` events (data events only; comments and retry lines are skipped). */
    async take (count) {
      const deadline = Date.now() + WAIT_MS
      while (events.length < count) {
        if (Date.now() > deadline) throw new Error(`got ${events.length} of ${count} events: ${JSON.stringify(events)}`)
        await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 1000) })
      }
      return events.splice(0, count)
    },
    close () { request.destroy() }
  }
}

async function listen (server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${server.address().port}`
}

test('the addon is the one from the binary package, not a build from source', () => {
  const main = require('native-sse/package.json')
  const mainDir = path.dirname(require.resolve('native-sse/package.json'))
  assert.deepEqual(fs.readdirSync(mainDir).filter((f) => f.endsWith('.node')), [], 'no .node file in native-sse itself')
  assert.ok(PLATFORM, 'SMOKE_PLATFORM names the expected binary package')
  assert.ok(PLATFORM.startsWith(`${process.platform}-${process.arch}`), `${PLATFORM} is this process's platform (${process.platform}-${process.arch})`)
  const binary = require(`native-sse-${PLATFORM}/package.json`)
  assert.equal(binary.version, main.version, 'the binary package is locked to the main version')
  assert.equal(main.optionalDependencies[`native-sse-${PLATFORM}`], main.version)
  assert.equal(typeof createHub, 'function')
})

for (const transport of TRANSPORTS) {
  test(`node:http: attach and broadcast over the ${transport} transport`, async () => {
    const hub = createHub({ heartbeatMs: 60_000 })
    let onAttach
    const server = http.createServer((req, res) => onAttach(hub.attach(req, res, { transport })))
    const base = await listen(server)
    try {
      const attached = waitFor('attach', (resolve) => { onAttach = resolve })
      const stream = openStream(`${base}/events`)
      const client = await attached
      assert.equal(client.transport, transport)
      const res = await stream.response
      assert.equal(res.statusCode, 200)
      assert.match(res.headers['content-type'], /^text\/event-stream/)
      hub.broadcast({ event: 'tick', data: { n: 1 } })
      hub.broadcast({ data: 'two\nlines' })
      const [tick, message] = await stream.take(2)
      assert.deepEqual(tick, { event: 'tick', data: '{"n":1}', id: undefined })
      assert.deepEqual(message, { event: 'message', data: 'two\nlines', id: undefined })
      const closed = waitFor('close', (resolve) => client.on('close', resolve))
      stream.close()
      assert.equal(await closed, 'client')
      assert.equal(hub.size, 0)
    } finally {
      await hub.close()
      server.close()
    }
  })

  test(`Express: the sse() helper with a channel over the ${transport} transport`, async () => {
    const hub = createHub()
    let onAttach
    const app = express()
    app.get('/events', sse(hub, { channels: ['prices'], transport, onConnect: (client) => onAttach(client) }))
    const server = http.createServer(app)
    const base = await listen(server)
    try {
      const attached = waitFor('attach', (resolve) => { onAttach = resolve })
      const stream = openStream(`${base}/events`)
      const client = await attached
      assert.equal(client.transport, transport)
      hub.publish('elsewhere', { event: 'price', data: 'not for this client' })
      hub.publish('prices', { event: 'price', data: { symbol: 'BTC', price: 67420 } })
      const [price] = await stream.take(1)
      assert.deepEqual(JSON.parse(price.data), { symbol: 'BTC', price: 67420 })
      stream.close()
    } finally {
      await hub.close()
      server.close()
    }
  })

  test(`Fastify: the plugin's reply.sse() over the ${transport} transport`, async () => {
    const app = Fastify()
    await app.register(nativeSse, { heartbeatMs: 60_000 })
    let onAttach
    app.get('/events', (request, reply) => { onAttach(reply.sse({ transport })) })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const attached = waitFor('attach', (resolve) => { onAttach = resolve })
      const stream = openStream(`${base}/events`)
      const client = await attached
      assert.equal(client.transport, transport)
      app.sse.broadcast({ event: 'hello', data: 'fastify' })
      const [hello] = await stream.take(1)
      assert.deepEqual(hello, { event: 'hello', data: 'fastify', id: undefined })
      stream.close()
    } finally {
      await app.close()
    }
  })

  test(`Last-Event-ID resumes just past the event, over the ${transport} transport`, async () => {
    const hub = createHub({ history: { maxEvents: 100 } })
    let onAttach
    const server = http.createServer((req, res) => onAttach(hub.attach(req, res, { channels: ['log'], transport })))
    const base = await listen(server)
    try {
      for (const n of [1, 2, 3]) hub.publish('log', { id: `e${n}`, data: `entry ${n}` })
      const attached = waitFor('attach', (resolve) => { onAttach = resolve })
      const stream = openStream(`${base}/events`, { 'last-event-id': 'e1' })
      const client = await attached
      assert.equal(client.resume, 'replayed')
      hub.publish('log', { id: 'e4', data: 'entry 4' })
      const events = await stream.take(3)
      assert.deepEqual(events.map((e) => [e.id, e.data]), [['e2', 'entry 2'], ['e3', 'entry 3'], ['e4', 'entry 4']])
      stream.close()
    } finally {
      await hub.close()
      server.close()
    }
  })
}

test('native-sse/client reconnects with Last-Event-ID and gets what it missed', async () => {
  const hub = createHub({ history: { maxEvents: 100 }, retryMs: 50 })
  const seen = []
  let onAttach
  const server = http.createServer((req, res) => {
    seen.push(req.headers['last-event-id'] ?? null)
    onAttach(hub.attach(req, res))
  })
  const base = await listen(server)
  const received = []
  let onEvent = () => {}
  const client = connect(`${base}/events`, { transport: 'fetch' })
  client.on('price', (data) => { received.push(data); onEvent() })
  try {
    let server1 = await waitFor('first connection', (resolve) => { onAttach = resolve })
    const first = waitFor('first event', (resolve) => { onEvent = resolve })
    hub.broadcast({ event: 'price', data: { n: 1 } })
    await first
    // The server drops the stream; one event is published while the client is away.
    const second = waitFor('reconnection', (resolve) => { onAttach = resolve })
    server1.close()
    hub.broadcast({ event: 'price', data: { n: 2 } })
    server1 = await second
    await waitFor('missed event', (resolve) => { onEvent = resolve; if (received.length >= 2) resolve() })
    assert.deepEqual(received, [{ n: 1 }, { n: 2 }])
    assert.equal(seen[0], null)
    assert.match(seen[1], /^[0-9a-z]+-\d+$/, 'the reconnection carried the id of the first event')
    assert.match(client.lastEventId, /^[0-9a-z]+-\d+$/)
    assert.notEqual(client.lastEventId, seen[1], 'the id moved on with the missed event')
  } finally {
    client.close()
    await hub.close()
    server.close()
  }
})
