'use strict'

// After attach() the connection belongs to Rust: Node's server no longer counts it, its
// timeouts no longer apply, and server.close() completes while the stream keeps flowing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http2 = require('node:http2')
const { createHub } = require('..')
const { HOST, startHttp, rawClient, waitFor, sleep } = require('./helpers')

test('server.close() resolves while a handed-off stream keeps flowing', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => hub.attach(req, res).send({ data: 'first' }))
  try {
    const raw = rawClient(http.port)
    await waitFor(() => raw.events.length === 1, { what: 'the first event' })
    const connections = await new Promise((resolve, reject) =>
      http.server.getConnections((error, n) => (error ? reject(error) : resolve(n))))
    assert.equal(connections, 0, 'the server no longer tracks the handed-off connection')
    await new Promise((resolve, reject) => http.server.close((error) => (error ? reject(error) : resolve())))
    hub.broadcast({ data: 'after server.close()' })
    await waitFor(() => raw.events.length === 2, { what: 'an event after server.close()' })
    assert.equal(raw.events[1].data, 'after server.close()')
    assert.equal(hub.size, 1)
  } finally {
    await hub.close()
  }
})

test("Node's request, headers, keep-alive and socket timeouts no longer apply", async () => {
  const hub = createHub({ heartbeatMs: 100 })
  const http = await startHttp((req, res) => hub.attach(req, res).send({ data: 'first' }),
    { requestTimeout: 200, headersTimeout: 150, keepAliveTimeout: 100 })
  http.server.setTimeout(150)
  try {
    const raw = rawClient(http.port)
    await waitFor(() => raw.events.length === 1, { what: 'the first event' })
    await sleep(1000)
    assert.equal(raw.ended, false, 'the stream outlived every Node timeout')
    assert.ok(raw.comments.length >= 5, 'heartbeats kept flowing')
    hub.broadcast({ data: 'still here' })
    await waitFor(() => raw.events.length === 2, { what: 'a late event' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('bytes Node already queued for the socket reach the client before Rust writes', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => {
    // A head written and corked by Node: the handoff must wait for it to drain.
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'X-Early': 'yes' })
    res.write('data: written by node\n\n')
    hub.attach(req, res).send({ data: 'written by rust' })
  })
  try {
    const raw = rawClient(http.port)
    await waitFor(() => raw.events.length === 2, { what: 'both events' })
    assert.match(raw.head, /X-Early: yes/)
    assert.deepEqual(raw.events.map((e) => e.data), ['written by node', 'written by rust'])
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Last-Event-ID is exposed as client.lastEventId', async () => {
  const hub = createHub()
  const seen = []
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res)
    seen.push(client.lastEventId)
    client.close()
  })
  try {
    const a = rawClient(http.port, { headers: { 'Last-Event-ID': 'evt-41' } })
    await waitFor(() => a.ended, { what: 'first stream' })
    const b = rawClient(http.port)
    await waitFor(() => b.ended, { what: 'second stream' })
    assert.deepEqual(seen, ['evt-41', ''])
  } finally {
    await hub.close()
    await http.close()
  }
})

test('retryMs is sent first on connect', async () => {
  const hub = createHub({ retryMs: 2500 })
  const http = await startHttp((req, res) => hub.attach(req, res, req.url === '/fast' ? { retryMs: 100 } : undefined).close())
  try {
    const a = rawClient(http.port)
    const b = rawClient(http.port, { path: '/fast' })
    await waitFor(() => a.ended && b.ended, { what: 'streams to end' })
    assert.match(a.raw.toString(), /\r\n\r\n[0-9a-f]+\r\nretry: 2500\n\n/)
    assert.match(b.raw.toString(), /\r\n\r\n[0-9a-f]+\r\nretry: 100\n\n/)
  } finally {
    await hub.close()
    await http.close()
  }
})

test("transport: 'native' on HTTP/2 throws ERR_SSE_TRANSPORT_UNAVAILABLE and writes nothing", async () => {
  const hub = createHub()
  const errors = []
  const server = http2.createServer((req, res) => {
    try {
      hub.attach(req, res, { transport: 'native' })
    } catch (error) {
      errors.push(error)
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('no native transport')
    }
  })
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  const session = http2.connect(`http://${HOST}:${server.address().port}`)
  try {
    const stream = session.request({ ':path': '/' })
    let status = 0
    let body = ''
    stream.on('response', (headers) => { status = headers[':status'] })
    stream.on('data', (d) => { body += d })
    await new Promise((resolve) => stream.on('end', resolve))
    assert.equal(status, 503)
    assert.equal(body, 'no native transport')
    assert.equal(errors.length, 1)
    assert.equal(errors[0].code, 'ERR_SSE_TRANSPORT_UNAVAILABLE')
    assert.match(errors[0].message, /HTTP\/2\.0/)
    assert.equal(hub.size, 0)
  } finally {
    session.close()
    await hub.close()
    await new Promise((resolve) => server.close(resolve))
  }
})

test("no epoll registration is left under Node's fd after the handoff, io_uring or not", async () => {
  const { execFile } = require('node:child_process')
  const path = require('node:path')
  for (const uring of ['0', '1']) {
    const stdout = await new Promise((resolve, reject) => execFile(process.execPath,
      [path.join(__dirname, 'fixtures', 'epoll-probe.js')],
      { env: { ...process.env, UV_USE_IO_URING: uring }, timeout: 10_000 },
      (error, out) => (error ? reject(error) : resolve(out))))
    const { fd, before, after } = JSON.parse(stdout)
    assert.deepEqual(before, [fd], 'before the handoff only libuv watches the socket')
    assert.ok(after.length > 0, 'the runtime watches the socket after the handoff')
    assert.ok(!after.includes(fd), `UV_USE_IO_URING=${uring}: a registration under fd ${fd} was left behind`)
  }
})
