'use strict'
// needs: curl, bash, procfs, ss

// After attach() the connection belongs to Rust: Node's server no longer counts it, its
// timeouts no longer apply, and server.close() completes while the stream keeps flowing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http2 = require('node:http2')
const { createHub } = require('..')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFileSync } = require('node:child_process')
const { HOST, startHttp, rawClient, waitFor, sleep, openFdCount } = require('./helpers')

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

test("Node's timeouts no longer apply to a handed-off stream; the same stream kept by Node is cut", async () => {
  // No heartbeat during the test: a write would refresh Node's idle timer and hide it.
  const hub = createHub({ heartbeatMs: 60_000 })
  const IDLE_TIMEOUT_MS = 150
  const http = await startHttp((req, res) => hub.attach(req, res, { transport: req.url.slice(1) }).send({ data: 'first' }),
    { requestTimeout: 200, headersTimeout: 150, keepAliveTimeout: 100 })
  http.server.setTimeout(IDLE_TIMEOUT_MS)
  try {
    const handedOff = rawClient(http.port, { path: '/native' })
    const keptByNode = rawClient(http.port, { path: '/node' })
    await waitFor(() => handedOff.events.length === 1 && keptByNode.events.length === 1, { what: 'the first events' })
    // The control: the socket Node still owns is cut by its idle timeout.
    await waitFor(() => keptByNode.ended, { what: "Node's idle timeout to cut the Node-transport stream", timeoutMs: 5000 })
    // Twice that timeout again, with nothing written to either stream.
    await sleep(2 * IDLE_TIMEOUT_MS)
    assert.equal(handedOff.ended, false, 'the handed-off stream outlived every Node timeout')
    assert.equal(hub.metrics().heartbeats, 0)
    hub.broadcast({ data: 'still here' })
    await waitFor(() => handedOff.events.length === 2, { what: 'a late event' })
    assert.equal(hub.size, 1)
  } finally {
    await hub.close()
    await http.close()
  }
})

test("a head Node cannot flush in writeTimeoutMs closes the client with 'timeout' and frees Node's socket", async () => {
  const hub = createHub({ heartbeatMs: 60_000, writeTimeoutMs: 300 })
  const closes = []
  let serverSocket = null
  const http = await startHttp((req, res) => {
    serverSocket = req.socket
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    // Far more than loopback buffers absorb: with a peer that never reads, Node keeps most of it.
    res.write(': ' + 'x'.repeat(32 * 1024 * 1024) + '\n\n')
    hub.attach(req, res).on('close', (reason) => closes.push(reason))
  })
  const peer = rawClient(http.port)
  peer.socket.pause()
  try {
    await peer.connected
    await waitFor(() => serverSocket !== null, { what: 'the request' })
    const baseline = openFdCount() // the peer's and the server's sockets
    await waitFor(() => closes.length === 1, { what: 'the close', timeoutMs: 5000 })
    assert.deepEqual(closes, ['timeout'])
    await waitFor(() => serverSocket.destroyed, { what: "Node's socket to be destroyed" })
    await waitFor(() => openFdCount() === baseline - 1, { what: "the server's fd to be released" })
    assert.equal(hub.size, 0)
  } finally {
    peer.socket.destroy()
    await hub.close()
    await http.close()
  }
})

test('a JS thread blocked for 2 s does not stop a native stream: queued events and heartbeats still flow', async () => {
  const HEARTBEAT_MS = 200
  const hub = createHub({ heartbeatMs: HEARTBEAT_MS })
  const http = await startHttp((req, res) => hub.attach(req, res, { transport: 'native' }))
  // curl in another process; bash stamps each line with the time it arrived.
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-blocked-')), 'lines')
  const reader = spawn('bash', ['-c', `curl -sN ${http.url} | while IFS= read -r line; do echo "$EPOCHREALTIME|$line"; done > ${out}`])
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '').split('\n').filter(Boolean)
    .map((l) => { const at = l.indexOf('|'); return { at: Number(l.slice(0, at)) * 1000, text: l.slice(at + 1) } })
  try {
    await waitFor(() => hub.size === 1 && hub.metrics().bytesWritten > 0, { what: 'the stream to start' })
    await waitFor(() => lines().length > 0, { what: 'the opening comment at the reader' })
    // The window opens before the events are queued: from here on the JS thread does nothing
    // but queue them and spin.
    const blockedFrom = Date.now() - 1
    for (let i = 0; i < 3; i++) hub.broadcast({ data: `queued-${i}` })
    while (Date.now() - blockedFrom < 2000) { /* the JS thread does nothing else for 2 s */ }
    const blockedUntil = Date.now()
    await waitFor(() => lines().filter((l) => l.text === ':').length >= 12, { what: 'heartbeats after the block', timeoutMs: 5000 })
    const during = lines().filter((l) => l.at > blockedFrom && l.at < blockedUntil)
    assert.deepEqual(during.filter((l) => l.text.startsWith('data:')).map((l) => l.text),
      ['data: queued-0', 'data: queued-1', 'data: queued-2'], 'queued events arrived while JS was blocked')
    // 2 s of idleness at 200 ms: nine heartbeats; on a loaded machine at least half of them.
    const heartbeats = during.filter((l) => l.text === ':').length
    assert.ok(heartbeats >= 5, `${heartbeats} heartbeats arrived while JS was blocked`)
  } finally {
    reader.kill()
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

test('the head Node rendered goes out from Rust with the first bytes, headers set before attach included: Node writes nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 1500 })
  const nodeWrote = []
  const http = await startHttp((req, res) => {
    res.setHeader('X-Request-Id', 'abc-1')
    // Errors made as the handed-off socket closes in Node carry no stack (a handoff's cost);
    // the request's own listeners run after, with stacks as usual.
    req.on('close', () => { closeStack = new Error('in req close').stack })
    hub.attach(req, res)
    nodeWrote.push(req.socket.bytesWritten)
  })
  let closeStack = null
  const stackTraceLimit = Error.stackTraceLimit
  const net = require('node:net')
  const socket = net.connect(http.port, HOST)
  try {
    const reads = []
    socket.on('data', (chunk) => reads.push(chunk.toString('latin1')))
    socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`)
    await waitFor(() => reads.length > 0, { what: 'the first read' })
    // Node writing the head, then Rust the opening, was two writes and two segments.
    assert.deepEqual(nodeWrote, [0], 'Node wrote none of the head')
    assert.match(reads[0], /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(reads[0], /\r\nX-Request-Id: abc-1\r\n/i)
    assert.match(reads[0], /\r\n\r\n[0-9a-f]+\r\nretry: 1500\n\n\r\n$/, 'the opening in the same read as the head')
    await waitFor(() => closeStack !== null, { what: "the request's 'close'" })
    assert.match(closeStack, /\n +at /)
    assert.equal(Error.stackTraceLimit, stackTraceLimit)
    assert.equal(hub.metrics().connections.native, 1, 'taken by the native transport')
  } finally {
    socket.destroy()
    await hub.close()
    await http.close()
  }
})

test("the first stream raises its server's accept queue (listenBacklog; a wave's handshakes wait instead of being dropped), whatever the transport", async () => {
  // The listening socket's queue as the kernel reports it (ss: Send-Q of a LISTEN socket).
  const acceptQueue = (port) => Number(execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/)[2])
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
  const cases = [
    { options: {}, transport: 'native', queue: Math.min(somaxconn, 65535) },
    { options: { listenBacklog: 1000 }, transport: 'node', queue: Math.min(somaxconn, 1000) },
    { options: { listenBacklog: false }, transport: 'native', queue: Math.min(somaxconn, 511) }
  ]
  const started = []
  try {
    for (const { options, transport, queue } of cases) {
      const hub = createHub({ heartbeatMs: 60_000, ...options })
      const http = await startHttp((req, res) => hub.attach(req, res, { transport }).send({ data: 'open' }))
      started.push({ hub, http })
      assert.equal(acceptQueue(http.port), Math.min(somaxconn, 511), "Node's own queue before any stream")
      const raw = rawClient(http.port)
      await waitFor(() => raw.events.length === 1, { what: 'the stream' })
      assert.equal(acceptQueue(http.port), queue, `${JSON.stringify(options)} with transport ${transport}`)
      raw.end()
    }
  } finally {
    for (const { hub, http } of started) {
      await hub.close()
      await http.close()
    }
  }
})

test('the Fastify plugin raises the accept queue as the server starts listening: a restarted server meets the wave before any stream', async () => {
  const Fastify = require('fastify')
  const acceptQueue = (port) => Number(execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/)[2])
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
  const cases = [
    { options: {}, queue: Math.min(somaxconn, 65535) },
    { options: { listenBacklog: 1000 }, queue: Math.min(somaxconn, 1000) },
    { options: { listenBacklog: false }, queue: Math.min(somaxconn, 511) }
  ]
  for (const { options, queue } of cases) {
    const app = Fastify()
    await app.register(require('../lib/fastify'), { heartbeatMs: 60_000, ...options })
    app.get('/events', (request, reply) => { reply.sse() })
    try {
      await app.listen({ port: 0, host: HOST })
      // No stream yet: what a client of the wave meets first.
      assert.equal(acceptQueue(app.server.address().port), queue, JSON.stringify(options))
    } finally {
      await app.close()
    }
  }
})

test('the Fastify plugin raises the queue of every address Fastify listens on (localhost: 127.0.0.1 and ::1)', async (t) => {
  // This machine's hosts file may give localhost one address; a stock one gives both, and
  // Fastify then listens with a second server of its own on ::1.
  const dns = require('node:dns')
  const lookup = dns.lookup
  dns.lookup = function (host, options, callback) {
    if (host === 'localhost' && options?.all === true) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }])
    return lookup.apply(this, arguments)
  }
  t.after(() => { dns.lookup = lookup })
  const Fastify = require('fastify')
  const queues = (port) => execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n').map((line) => Number(line.trim().split(/\s+/)[2]))
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
  const app = Fastify()
  await app.register(require('../lib/fastify'), { heartbeatMs: 60_000, listenBacklog: 1000 })
  try {
    await app.listen({ port: 0, host: 'localhost' })
    const port = app.server.address().port
    assert.deepEqual(app.addresses().map((a) => a.address).sort(), ['127.0.0.1', '::1'])
    assert.deepEqual(queues(port), [Math.min(somaxconn, 1000), Math.min(somaxconn, 1000)])
  } finally {
    await app.close()
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

function epollProbe (env, args = []) {
  const { execFile } = require('node:child_process')
  return new Promise((resolve, reject) => execFile(process.execPath,
    [path.join(__dirname, 'fixtures', 'epoll-probe.js'), ...args],
    { env: { ...process.env, ...env }, timeout: 10_000 },
    (error, out) => (error ? reject(error) : resolve(JSON.parse(out)))))
}

test("a refused adoption leaves libuv's registration of the socket in place", async () => {
  const { fd, before, after, code } = await epollProbe({}, ['refused'])
  assert.equal(code, 'ERR_SSE_CLIENT_CLOSED')
  assert.deepEqual(before, [fd])
  assert.deepEqual(after, [fd], 'Node still watches the socket it still owns')
})

test("no epoll registration is left under Node's fd after the handoff, io_uring or not", async () => {
  for (const uring of ['0', '1']) {
    const { fd, before, after } = await epollProbe({ UV_USE_IO_URING: uring })
    assert.deepEqual(before, [fd], 'before the handoff only libuv watches the socket')
    assert.ok(after.length > 0, 'the runtime watches the socket after the handoff')
    assert.ok(!after.includes(fd), `UV_USE_IO_URING=${uring}: a registration under fd ${fd} was left behind`)
  }
})
