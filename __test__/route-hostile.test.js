'use strict'
// needs: procfs

// hub.route() against what a hostile client or a careless app sends: heads Node would refuse,
// headers meant to inject lines, an open() that never answers, two routes on one server,
// servers the front door must not take (a Unix socket, HTTP/2). Each case was a fault found
// by attacking the first version; each asserts what Node itself does in its place.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const http2 = require('node:http2')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const { createHub } = require('..')
const { openStream } = require('native-sse/testing')
const { HOST, waitFor, openFdCount, routedApp, consoleErrors } = require('./helpers')

/** Sends `text` on a new connection and resolves with everything until the server closes
 *  it, or with what came by the time `untilText` shows up. */
function exchange (target, text, untilText = null) {
  return new Promise((resolve, reject) => {
    const socket = typeof target === 'string' ? net.connect(target) : net.connect(target, HOST)
    let got = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer; got ${JSON.stringify(got)}`)) }, 5000)
    socket.setEncoding('latin1')
    socket.on('data', (data) => {
      got += data
      if (untilText !== null && got.includes(untilText)) { clearTimeout(timer); socket.destroy(); resolve(got) }
    })
    socket.on('close', () => { clearTimeout(timer); resolve(got) })
    socket.on('error', () => {})
    socket.write(text)
  })
}

test('open()\'s headers are checked as Node checks them: characters beyond Latin-1 or controls cannot become header lines', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const errors = consoleErrors(t)
  hub.route(app.server, '/events', (request) => ({ headers: { 'x-room': new URL(request.url, 'http://x').searchParams.get('room') } }))
  try {
    // U+010D U+010A: their low bytes are CR LF.
    const injected = await exchange(app.port, `GET /events?room=${encodeURIComponent('a\u010d\u010aSet-Cookie: session=attacker')} HTTP/1.1\r\nHost: x\r\n\r\n`, '\r\n0\r\n\r\n')
    assert.match(injected, /^HTTP\/1\.1 500 /)
    assert.doesNotMatch(injected, /set-cookie/i)
    const control = await exchange(app.port, `GET /events?room=${encodeURIComponent('a\u0001b')} HTTP/1.1\r\nHost: x\r\n\r\n`, '\r\n0\r\n\r\n')
    assert.match(control, /^HTTP\/1\.1 500 /)
    assert.equal(errors.length, 2)
    assert.equal(errors[0].at(-1).code, 'ERR_SSE_INVALID_OPTION')
    const fine = await openStream(app.server, { path: '/events?room=lobby' })
    assert.equal(fine.headers['x-room'], 'lobby')
    await fine.close()
  } finally {
    await hub.close()
    await app.close()
  }
})

test('an open() that never answers is answered 503 after openTimeoutMs, and connections that left meanwhile release their descriptors', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const route = hub.route(app.server, '/events', () => new Promise(() => {}), { openTimeoutMs: 300 })
  try {
    const waited = await openStream(app.server, { path: '/events', timeoutMs: 5000 })
    assert.equal(waited.status, 503)
    assert.equal(waited.headers['retry-after'], '1')
    await waited.closed
    assert.match(waited.body, /open\(\) did not answer within 300 ms/)

    const baseline = openFdCount()
    const sockets = []
    for (let i = 0; i < 50; i++) {
      const socket = net.connect(app.port, HOST)
      socket.on('error', () => {})
      socket.write(`GET /events HTTP/1.1\r\nHost: x\r\n\r\n`)
      sockets.push(socket)
    }
    await waitFor(() => route.counts.taken === 51)
    for (const socket of sockets) socket.destroy()
    await waitFor(() => openFdCount() <= baseline, 5000)
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await app.close()
  }
})

test('heads Node would refuse go to Node: no Host, a length twice, bare line feeds, a raw non-ASCII target, a head over the server\'s maxHeaderSize', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp({ serverOptions: { maxHeaderSize: 1024 } })
  const route = hub.route(app.server, '/events')
  try {
    const cases = [
      ['GET /events HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /events HTTP/1.1\nHost: x\n\n', /^HTTP\/1\.1 400 /],
      // UTF-8 bytes in the target: taken and streamed before (open() saw '/events?q=é').
      ['GET /events?q=\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
      [`GET /events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`, /^HTTP\/1\.1 431 /]
    ]
    for (const [head, expected] of cases) assert.match(await exchange(app.port, head), expected, JSON.stringify(head.slice(0, 40)))
    assert.equal(route.counts.taken, 0)
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await app.close()
  }
})

test('open() sees repeated headers as Node joins them: the first Host and Authorization, cookies joined with "; "', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const seen = []
  hub.route(app.server, '/events', (request) => { seen.push(request.headers) })
  try {
    await exchange(app.port, 'GET /events HTTP/1.1\r\nHost: x\r\nHost: y\r\nAuthorization: Bearer good\r\nAuthorization: Bearer evil\r\nCookie: a=1\r\nCookie: b=2\r\nX-Many: 1\r\nX-Many: 2\r\nConstructor: z\r\n\r\n', '\r\n\r\n')
    assert.equal(seen.length, 1)
    const headers = seen[0]
    assert.equal(headers.host, 'x')
    assert.equal(headers.authorization, 'Bearer good')
    assert.equal(headers.cookie, 'a=1; b=2')
    assert.equal(headers['x-many'], '1, 2')
    assert.equal(headers.constructor, 'z')
  } finally {
    await hub.close()
    await app.close()
  }
})

test('two routes on one server: each path its own, closing either leaves the other fronting and the app answering once; the same path twice throws', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let appCalls = 0
  const server = http.createServer((req, res) => { appCalls++; res.end('app') })
  let nodeConnections = 0
  server.on('connection', () => { nodeConnections++ })
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  const a = hub.route(server, '/a')
  const b = hub.route(server, '/b')
  try {
    assert.throws(() => hub.route(server, '/a'), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT' })
    for (const p of ['/a', '/b']) {
      const stream = await openStream(server, { path: p })
      assert.equal(stream.status, 200)
      await stream.close()
    }
    assert.equal(nodeConnections, 0)
    a.close()
    assert.equal(b.fronting, true)
    assert.equal(a.fronting, false)
    const stillB = await openStream(server, { path: '/b' })
    assert.equal(stillB.status, 200)
    await stillB.close()
    assert.equal(nodeConnections, 0, '/b is still taken before Node')
    assert.equal(await (await fetch(`http://${HOST}:${server.address().port}/a`)).text(), 'app')
    assert.equal(appCalls, 1, 'the app answered /a once')
    b.close()
    assert.equal(await (await fetch(`http://${HOST}:${server.address().port}/b`)).text(), 'app')
    assert.equal(appCalls, 2)
    assert.equal(server.listeners('request').length, 1)
  } finally {
    await hub.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

test('servers the front door does not take still serve the path through Node: a Unix socket (attach() too), an HTTP/2 server', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-')), 'app.sock')
  const unix = await routedApp({ listenOn: socketPath })
  const attached = http.createServer((req, res) => hub.attach(req, res))
  const attachedPath = `${socketPath}.attach`
  await new Promise((resolve) => attached.listen(attachedPath, resolve))
  const h2 = http2.createServer()
  await new Promise((resolve) => h2.listen(0, HOST, resolve))
  try {
    const route = hub.route(unix.server, '/events')
    assert.equal(route.fronting, false)
    assert.equal(hub.route(h2, '/events').fronting, false)
    for (const target of [socketPath, attachedPath]) {
      const got = exchange(target, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n', 'data: over a unix socket')
      await waitFor(() => hub.size === 1)
      hub.broadcast({ data: 'over a unix socket' })
      assert.match(await got, /^HTTP\/1\.1 200 OK/)
      await waitFor(() => hub.size === 0)
    }
  } finally {
    await hub.close()
    await unix.close()
    attached.close()
    h2.close()
  }
})

test('a route closed while a new connection\'s head is still arriving leaves that connection to the app', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  const route = hub.route(app.server, '/events')
  const handle = app.server._handle
  const inner = handle.onconnection
  let accepted = 0
  handle.onconnection = function (...args) { inner.apply(this, args); accepted++ }
  const socket = net.connect(app.port, HOST)
  let got = ''
  socket.setEncoding('latin1')
  socket.on('data', (data) => { got += data })
  socket.on('error', () => {})
  try {
    socket.write('GET /eve')
    await waitFor(() => accepted === 1)
    route.close()
    socket.write('nts HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => got.includes('app GET /events'))
    assert.equal(route.counts.taken, 0)
    assert.equal(hub.size, 0)
  } finally {
    socket.destroy()
    await hub.close()
    await app.close()
  }
})

test('an error whose status getter throws, or a thenable whose then() throws, is answered 500 without taking the process down', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  consoleErrors(t)
  hub.route(app.server, '/events', (request) => {
    if (request.url.endsWith('thenable')) return { then () { throw new Error('then') } }
    throw Object.defineProperty(new Error('x'), 'status', { get () { throw new Error('status getter') } })
  })
  try {
    for (const p of ['/events?status', '/events?thenable']) {
      const answer = await openStream(app.server, { path: p })
      assert.equal(answer.status, 500, p)
      await answer.closed
    }
  } finally {
    await hub.close()
    await app.close()
  }
})

test('a set-cookie array from open() goes out a line per cookie on both paths', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = await routedApp()
  hub.route(app.server, '/events', () => ({ headers: { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] } }))
  try {
    const front = await exchange(app.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n', '\r\n\r\n')
    // The kept-alive path: Node parses a second request on the same connection.
    const socket = net.connect(app.port, HOST)
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (data) => { got += data })
    socket.write('GET /other HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => got.includes('app GET /other'))
    socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => /text\/event-stream[^]*\r\n\r\n/i.test(got))
    socket.destroy()
    const kept = got.slice(got.indexOf('HTTP/1.1', 10))
    for (const head of [front, kept]) {
      const cookies = head.split('\r\n\r\n')[0].split('\r\n').filter((line) => /^set-cookie:/i.test(line)).map((line) => line.replace(/^set-cookie:\s*/i, ''))
      assert.deepEqual(cookies, ['a=1; Path=/', 'b=2; Path=/'])
    }
  } finally {
    await hub.close()
    await app.close()
  }
})
