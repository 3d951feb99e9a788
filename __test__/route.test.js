'use strict'
// needs: curl, ss, procfs

// hub.route(server, path, open): new connections whose first request is a GET for the path
// are served from the connection up, before Node parses anything; the rest of the server is
// the app's as before. What proves the front door took a connection: Node's server never
// emitted 'connection' for it (and route.counts says so).

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { execFileSync } = require('node:child_process')
const { EventSource } = require('eventsource')
const express = require('express')
const Fastify = require('fastify')
const { createHub } = require('..')
const { openStream } = require('native-sse/testing')
const { HOST, curl, waitFor, once, ended, openFdCount, routedApp, consoleErrors } = require('./helpers')

/** Opens a raw connection and sends `text`; collects what comes back. */
function rawSocket (port) {
  const socket = net.connect(port, HOST)
  const state = { socket, text: '', closed: false }
  socket.setEncoding('latin1')
  socket.on('data', (data) => { state.text += data })
  socket.on('close', () => { state.closed = true })
  socket.on('error', () => {})
  return state
}

test('a GET for the path is served before Node parses it: Node never sees the connection, events and resume as through attach()', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 } })
  const app = await routedApp()
  const route = hub.route(app.server, '/events', (request) => ({ channels: [new URL(request.url, 'http://x').searchParams.get('room')] }))
  try {
    assert.equal(route.fronting, true)
    const stream = await openStream(app.server, { path: '/events?room=a' })
    assert.equal(stream.status, 200)
    assert.match(stream.headers['content-type'], /^text\/event-stream/)
    assert.equal(stream.headers['transfer-encoding'], 'chunked')
    await waitFor(() => hub.size === 1)
    hub.publish('a', { id: 'a1', data: 'one' })
    hub.publish('b', { id: 'b1', data: 'elsewhere' })
    hub.publish('a', { id: 'a2', data: 'two' })
    assert.equal((await stream.waitFor((e) => e.data === 'two')).id, 'a2')
    assert.deepEqual(stream.events.map((e) => e.data), ['one', 'two'])
    const resumed = await stream.reconnect()
    hub.publish('a', { id: 'a3', data: 'three' })
    assert.equal((await resumed.next()).data, 'three')
    await resumed.close()
    assert.deepEqual(route.counts, { taken: 2, passed: 0 })
    assert.equal(app.nodeConnections(), 0, 'Node\'s server saw none of the route\'s connections')
    await waitFor(() => hub.size === 0)
  } finally {
    await hub.close()
    await app.close()
  }
})

test('the eventsource package reconnects through the route with Last-Event-ID and misses nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 50, history: { maxEvents: 100 } })
  const app = await routedApp()
  const clients = []
  const route = hub.route(app.server, '/events', undefined, { onClient: (client) => clients.push(client) })
  const source = new EventSource(`${app.url}/events`)
  const seen = []
  try {
    source.onmessage = (event) => seen.push(event.data)
    await once(hub, 'connect')
    hub.broadcast({ id: '1', data: 'first' })
    await waitFor(() => seen.length === 1)
    // Cut from the server side: the client comes back on its own, with the last id it saw.
    const back = once(hub, 'connect')
    clients[0].close()
    const again = await back
    hub.broadcast({ id: '2', data: 'second' })
    await waitFor(() => seen.length === 2)
    assert.deepEqual(seen, ['first', 'second'])
    assert.equal(again.lastEventId, '1')
    assert.equal(clients.length, 2)
    assert.equal(clients[1].lastEventId, '1')
    assert.deepEqual(route.counts, { taken: 2, passed: 0 })
    assert.equal(app.nodeConnections(), 0)
  } finally {
    source.close()
    await hub.close()
    await app.close()
  }
})

test('every other request reaches the app as before: other paths, other methods, HEAD, a body', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp({ handler: (req, res) => {
    let body = ''
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => res.end(`app ${req.method} ${req.url} ${body}`))
  } })
  const route = hub.route(app.server, '/events')
  try {
    const other = await fetch(`${app.url}/other?x=1`)
    assert.equal(await other.text(), 'app GET /other?x=1 ')
    const posted = await fetch(`${app.url}/events`, { method: 'POST', body: 'payload' })
    assert.equal(await posted.text(), 'app POST /events payload')
    const prefix = await fetch(`${app.url}/events/more`)
    assert.equal(await prefix.text(), 'app GET /events/more ')
    // HEAD for the path: the stream's head through Node, nothing registered.
    const stdout = (await curl(['-sI', `${app.url}/events`])).stdout.toString()
    assert.match(stdout, /^HTTP\/1\.1 200/)
    assert.match(stdout, /content-type: text\/event-stream/i)
    assert.equal(hub.size, 0)
    assert.equal(route.counts.taken, 0)
    // Every connection was looked at and left to Node as it came (fetch keeps some alive).
    assert.ok(route.counts.passed >= 2, `passed ${route.counts.passed}`)
    assert.equal(route.counts.passed, app.nodeConnections())
  } finally {
    await hub.close()
    await app.close()
  }
})

test('a kept-alive connection\'s later request for the path is attached through Node with the same open()', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const opened = []
  const route = hub.route(app.server, '/events', (request) => {
    opened.push(request.url)
    return { channels: ['kept'], headers: { 'x-route': 'yes' } }
  })
  const raw = rawSocket(app.port)
  try {
    raw.socket.write(`GET /page HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    await waitFor(() => raw.text.includes('app GET /page'))
    raw.socket.write(`GET /events?second HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    await waitFor(() => hub.size === 1)
    hub.publish('kept', { data: 'through node' })
    await waitFor(() => raw.text.includes('data: through node'))
    const second = raw.text.slice(raw.text.indexOf('HTTP/1.1', 10))
    assert.match(second, /^HTTP\/1\.1 200/)
    assert.match(second, /x-route: yes/i)
    assert.deepEqual(opened, ['/events?second'])
    assert.deepEqual(route.counts, { taken: 0, passed: 1 })
    assert.equal(app.nodeConnections(), 1)
  } finally {
    raw.socket.destroy()
    await hub.close()
    await app.close()
  }
})

test('a head that arrives in pieces is waited for; one that never comes goes to Node, which still serves it', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const route = hub.route(app.server, '/events')
  // Told when the listening socket's accept callback (the route's) has run for a connection.
  const handle = app.server._handle
  const inner = handle.onconnection
  let accepted = 0
  handle.onconnection = function (...args) { inner.apply(this, args); accepted++ }
  const pieces = rawSocket(app.port)
  let slow = null
  try {
    pieces.socket.write('GET /eve')
    await waitFor(() => accepted === 1)
    pieces.socket.write(`nts HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    await waitFor(() => pieces.text.includes('\r\n\r\n'))
    assert.match(pieces.text, /^HTTP\/1\.1 200/)
    assert.equal(route.counts.taken, 1)

    // Nothing for longer than the route waits: Node gets it, and serves the path when the
    // head comes.
    slow = rawSocket(app.port)
    await waitFor(() => accepted === 2)
    await waitFor(() => route.counts.passed === 1, 5000)
    slow.socket.write(`GET /events HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
    await waitFor(() => slow.text.includes('\r\n\r\n'))
    assert.match(slow.text, /^HTTP\/1\.1 200/)
    await waitFor(() => hub.size === 2)
    hub.broadcast({ data: 'both' })
    await waitFor(() => pieces.text.includes('data: both') && slow.text.includes('data: both'))
    assert.equal(app.nodeConnections(), 1)
  } finally {
    pieces.socket.destroy()
    slow?.socket.destroy()
    await hub.close()
    await app.close()
  }
})

test('open() decides: async options, its own headers, a thrown status, a failure; rules and caps answer as attach() does', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000, maxClients: 2 })
  hub.authorize('room:{id}', async ({ params }) => params.id !== 'secret')
  const app = await routedApp()
  const errors = consoleErrors(t)
  const clients = []
  const route = hub.route(app.server, '/events', async (request) => {
    const room = new URL(request.url, 'http://x').searchParams.get('room')
    if (room === 'none') throw Object.assign(new Error('sign in first'), { status: 401 })
    if (room === 'broken') throw new Error('database down')
    if (room === 'bad-option') return { channels: ['room:1'], transport: 'node' }
    return { channels: [`room:${room}`], user: request.headers['x-user'], headers: { 'Access-Control-Allow-Origin': '*', Vary: 'Origin' } }
  }, { onClient: (client, request) => clients.push([client, request.url]) })
  const streams = []
  try {
    const allowed = await openStream(app.server, { path: '/events?room=1', headers: { 'x-user': 'ada' } })
    streams.push(allowed)
    assert.equal(allowed.status, 200)
    assert.equal(allowed.headers['access-control-allow-origin'], '*')
    assert.equal(allowed.headers.vary, 'Origin')
    await waitFor(() => hub.size === 1)
    await waitFor(() => clients.length === 1)
    assert.equal(clients[0][0].user, 'ada')
    assert.equal(clients[0][1], '/events?room=1')
    hub.publish('room:1', { data: 'hi' })
    assert.equal((await allowed.next()).data, 'hi')

    const forbidden = await openStream(app.server, { path: '/events?room=secret' })
    assert.equal(forbidden.status, 403)
    await ended(forbidden)
    assert.equal(forbidden.body, 'event stream forbidden\n')

    const unauthorized = await openStream(app.server, { path: '/events?room=none' })
    assert.equal(unauthorized.status, 401)
    await ended(unauthorized)
    assert.equal(unauthorized.body, 'sign in first\n')

    const failed = await openStream(app.server, { path: '/events?room=broken' })
    assert.equal(failed.status, 500)
    const badOption = await openStream(app.server, { path: '/events?room=bad-option' })
    assert.equal(badOption.status, 500)
    assert.equal(errors.length, 2)
    assert.equal(errors[0].at(-1).message, 'database down')
    assert.equal(errors[1].at(-1).code, 'ERR_SSE_UNKNOWN_OPTION')

    streams.push(await openStream(app.server, { path: '/events?room=2' }))
    const full = await openStream(app.server, { path: '/events?room=3' })
    assert.equal(full.status, 503)
    assert.equal(full.headers['retry-after'], '5')
    await ended(full)
    assert.equal(route.counts.taken, 7)
    assert.equal(clients.length, 2, 'onClient saw the two streams and none of the refusals')
    assert.equal(app.nodeConnections(), 5, 'each answer but the two streams was written by Node')
  } finally {
    for (const stream of streams) await stream.close()
    await hub.close()
    await app.close()
  }
})

test('wrong arguments throw typed errors and change nothing', async () => {
  const hub = createHub()
  const app = await routedApp()
  try {
    const cases = [
      [() => hub.route(null, '/e'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, 'events'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/e?x=1'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      // Paths no request target can be: accepted silently before.
      [() => hub.route(app.server, '/e#top'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/e\n'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/e f'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/\u00e9'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/e', 'open'), TypeError, 'ERR_SSE_INVALID_ARGUMENT'],
      [() => hub.route(app.server, '/e', undefined, { backlog: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION'],
      [() => hub.route(app.server, '/e', undefined, { queue: 1 }), TypeError, 'ERR_SSE_UNKNOWN_OPTION'],
      [() => hub.route(app.server, '/e', undefined, { onClient: 1 }), TypeError, 'ERR_SSE_INVALID_OPTION']
    ]
    for (const [call, type, code] of cases) {
      assert.throws(call, (error) => error instanceof type && error.code === code, String(call))
    }
    assert.equal(app.server.listeners('request').length, 1)
    assert.equal(await (await fetch(`${app.url}/e`)).text(), 'app GET /e')
  } finally {
    await hub.close()
    await app.close()
  }
})

test('the listening socket\'s accept queue is raised (a wave\'s handshakes wait instead of being dropped), or left with backlog: false', async () => {
  const hub = createHub()
  const raised = await routedApp()
  const kept = await routedApp()
  const acceptQueue = (port) => Number(execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/)[2])
  try {
    assert.equal(acceptQueue(raised.port), 511)
    hub.route(raised.server, '/events')
    hub.route(kept.server, '/events', undefined, { backlog: false })
    const somaxconn = Number(require('node:fs').readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
    assert.equal(acceptQueue(raised.port), Math.min(somaxconn, 65535))
    assert.equal(acceptQueue(kept.port), 511)
  } finally {
    await hub.close()
    await raised.close()
    await kept.close()
  }
})

test('clients that leave by FIN or RST release their descriptors; route.close() gives the path back', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const route = hub.route(app.server, '/events')
  try {
    const baseline = openFdCount()
    const streams = []
    for (let i = 0; i < 20; i++) streams.push(await openStream(app.server, { path: '/events' }))
    await waitFor(() => hub.size === 20)
    for (const stream of streams.slice(0, 10)) await stream.close()
    const resets = []
    for (let i = 0; i < 10; i++) {
      const raw = rawSocket(app.port)
      raw.socket.write(`GET /events HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)
      resets.push(raw)
    }
    await waitFor(() => hub.size === 20)
    for (const raw of resets) raw.socket.resetAndDestroy()
    for (const stream of streams.slice(10)) await stream.close()
    await waitFor(() => hub.size === 0)
    await waitFor(() => openFdCount() <= baseline, 5000)
    assert.equal(route.counts.taken, 30)
    assert.equal(app.nodeConnections(), 0)

    route.close()
    assert.equal(await (await fetch(`${app.url}/events`)).text(), 'app GET /events')
    assert.equal(route.counts.taken, 30)
  } finally {
    await hub.close()
    await app.close()
  }
})

test('hub.close(): the route\'s streams end, and a connection after it is answered 503 through Node', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const route = hub.route(app.server, '/events')
  const stream = await openStream(app.server, { path: '/events' })
  await waitFor(() => hub.size === 1)
  const closing = hub.close()
  assert.equal(await ended(stream), 'end')
  await closing
  const after = await openStream(app.server, { path: '/events' })
  assert.equal(after.status, 503)
  await ended(after)
  assert.deepEqual(route.counts, { taken: 1, passed: 1 })
  assert.equal(route.fronting, true)
  await app.close()
  assert.equal(route.fronting, false, 'a closed server takes no connections to look at')
})

test('under Express and Fastify: the route on their server, their own routes beside it', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const expressApp = express()
  expressApp.get('/hello', (req, res) => res.send('express'))
  const expressServer = expressApp.listen(0, HOST)
  await once(expressServer, 'listening')
  const fastify = Fastify()
  fastify.get('/hello', async () => 'fastify')
  await fastify.listen({ port: 0, host: HOST })
  const routes = [hub.route(expressServer, '/events'), hub.route(fastify.server, '/events')]
  try {
    for (const server of [expressServer, fastify.server]) {
      const stream = await openStream(server, { path: '/events' })
      assert.equal(stream.status, 200)
      await waitFor(() => hub.size === 1)
      hub.broadcast({ data: 'to both frameworks' })
      assert.equal((await stream.next()).data, 'to both frameworks')
      await stream.close()
      await waitFor(() => hub.size === 0)
    }
    assert.equal(await (await fetch(`http://${HOST}:${expressServer.address().port}/hello`)).text(), 'express')
    assert.equal(await (await fetch(`http://${HOST}:${fastify.server.address().port}/hello`)).text(), 'fastify')
    assert.deepEqual(routes.map((route) => route.counts.taken), [1, 1])
  } finally {
    await hub.close()
    expressServer.closeAllConnections()
    await new Promise((resolve) => expressServer.close(resolve))
    await fastify.close()
  }
})

test('a compressing hub: curl --compressed gets a gzip stream through the route, a client without gzip plain text', async () => {
  const hub = createHub({ heartbeatMs: 60_000, compression: true })
  const app = await routedApp()
  const route = hub.route(app.server, '/events')
  try {
    const compressed = curl(['-sN', '--compressed', '-D', '-', '--max-time', '5', `${app.url}/events`])
    const plain = openStream(app.server, { path: '/events' })
    await waitFor(() => hub.size === 2)
    for (let i = 0; i < 50; i++) hub.broadcast({ id: String(i), data: `price ${i}` })
    const stream = await plain
    await stream.waitFor((e) => e.id === '49')
    assert.equal(stream.headers['content-encoding'], undefined)
    assert.equal(stream.headers.vary, 'Accept-Encoding')
    hub.close()
    const { stdout: bytes, code } = await compressed
    const stdout = bytes.toString()
    assert.equal(code, 0, 'curl decoded the whole gzip stream, trailer included')
    assert.match(stdout, /content-encoding: gzip/i)
    assert.match(stdout, /vary: Accept-Encoding/i)
    for (let i = 0; i < 50; i++) assert.ok(stdout.includes(`id: ${i}\ndata: price ${i}\n\n`), `event ${i}`)
    assert.equal(route.counts.taken, 2)
  } finally {
    await hub.close()
    await app.close()
  }
})

test('a throw in open() is answered as http-errors means it: its 4xx or 5xx status, its message only when exposed, its headers', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const errors = consoleErrors(t)
  hub.route(app.server, '/events', (request) => {
    const kind = new URL(request.url, 'http://x').searchParams.get('kind')
    if (kind === 'auth') throw Object.assign(new Error('sign in'), { status: 401, headers: { 'WWW-Authenticate': 'Bearer', 'Access-Control-Allow-Origin': '*', 'bad name': 'x' } })
    if (kind === 'hidden') throw Object.assign(new Error('secret detail'), { status: 400, expose: false })
    if (kind === 'busy') throw Object.assign(new Error('database down'), { status: 503 })
    return { channels: ['x'], room: kind }
  })
  try {
    const auth = await openStream(app.server, { path: '/events?kind=auth' })
    assert.equal(auth.status, 401)
    assert.equal(auth.headers['www-authenticate'], 'Bearer')
    assert.equal(auth.headers['access-control-allow-origin'], '*')
    await auth.closed
    assert.equal(auth.body, 'sign in\n')
    const hidden = await openStream(app.server, { path: '/events?kind=hidden' })
    assert.equal(hidden.status, 400)
    await hidden.closed
    assert.equal(hidden.body, 'event stream failed\n')
    const busy = await openStream(app.server, { path: '/events?kind=busy' })
    assert.equal(busy.status, 503)
    await busy.closed
    assert.equal(busy.body, 'event stream failed\n')
    const unknown = await openStream(app.server, { path: '/events?kind=lobby' })
    assert.equal(unknown.status, 500)
    await unknown.closed
    assert.equal(errors.length, 2, 'the 5xx answers are said on stderr')
    assert.equal(errors[1].at(-1).code, 'ERR_SSE_UNKNOWN_OPTION')
    assert.match(errors[1].at(-1).message, /'room'; allowed: retryMs, channels, lastEventId, user, headers$/)
  } finally {
    await hub.close()
    await app.close()
  }
})
