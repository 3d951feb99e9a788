'use strict'
// needs: nothing

// native-sse/testing: openStream() against real hubs behind an Express app, a Fastify instance,
// a Hono app and a plain node:http listener. Events arrive typed as sent; waitFor's failure
// names what came instead; pause() makes the server see a slow client and resume() drains it;
// close() is the client leaving; reconnect() resumes with Last-Event-ID exactly once; a 403 or
// 503 answer gives its status without hanging.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const express = require('express')
const Fastify = require('fastify')
const { Hono } = require('hono')
const { createHub } = require('..')
const nativeSse = require('../lib/fastify')
const { openStream, createParser } = require('../lib/testing')

/**
 * `promise`, rejected after `ms`. The timer is also what keeps the event loop alive: a hub's
 * 'close' event and hub.close() come from its native threads, which do not, and a Fetch
 * stream has no socket that would.
 */
function within (promise, ms, what) {
  let timer
  return Promise.race([promise, new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)
  })]).finally(() => clearTimeout(timer))
}

/** A node:http listener attaching to `hub`; `next()` resolves with the next client attached. */
function attaching (hub) {
  const waiting = []
  return {
    listener: (req, res) => {
      const client = hub.attach(req, res)
      waiting.shift()?.(client)
    },
    next: () => new Promise((resolve) => waiting.push(resolve))
  }
}

test('the package exports native-sse/testing', () => {
  assert.equal(require('native-sse/testing').openStream, openStream)
})

test('Express: events arrive typed as sent, with ids, comments and status; the iterator yields them in order', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  t.after(() => hub.close())
  const app = express()
  app.get('/events', (req, res) => {
    const client = hub.attach(req, res)
    client.send({ event: 'hello', data: { user: req.get('x-user') } })
  })
  const stream = await openStream(app, { path: '/events', headers: { 'X-User': 'ada' } })
  assert.equal(stream.status, 200)
  assert.match(stream.headers['content-type'], /^text\/event-stream/)
  assert.deepEqual(await stream.next(), { event: 'hello', data: '{"user":"ada"}', id: '' })
  hub.broadcast({ event: 'price', data: { symbol: 'X', price: 1 }, id: 'p1' })
  hub.broadcast({ data: 'line one\nline two' })
  hub.comment('keep')
  hub.broadcast({ event: 'end', data: '' })
  const seen = []
  for await (const event of stream) {
    seen.push(event)
    if (event.event === 'end') break
  }
  assert.deepEqual(seen, [
    { event: 'price', data: '{"symbol":"X","price":1}', id: 'p1' },
    { event: 'message', data: 'line one\nline two', id: 'p1' },
    { event: 'end', data: '', id: 'p1' }
  ])
  assert.ok(stream.comments.includes('keep'), `comments: ${JSON.stringify(stream.comments)}`)
  assert.equal(stream.events.length, 4)
  await stream.close()
  assert.equal(await stream.closed, 'client')
})

test('waitFor: skips to the wanted event; its failure names what came instead', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  t.after(() => hub.close())
  const server = http.createServer((req, res) => hub.attach(req, res))
  const stream = await openStream(server)
  t.after(() => stream.close())
  hub.broadcast({ event: 'tick', data: 1 })
  hub.broadcast({ event: 'tick', data: 2 })
  hub.broadcast({ event: 'price', data: 3 })
  assert.deepEqual(await stream.waitFor('price'), { event: 'price', data: '3', id: '' })
  hub.broadcast({ event: 'tick', data: 4 })
  hub.broadcast({ event: 'tick', data: 5 })
  await assert.rejects(stream.waitFor('price', { timeoutMs: 300 }),
    { message: "expected event 'price' within 300 ms; got 'tick', 'tick'" })
  hub.broadcast({ event: 'tick', data: 6 })
  const big = await stream.waitFor(function dataAboveFive (e) { return Number(e.data) > 5 })
  assert.equal(big.data, '6')
  await assert.rejects(stream.next({ timeoutMs: 100 }), { message: 'expected an event within 100 ms; got none' })
})

test('Fastify: reply.sse() streams; a server-side close() ends the stream, seen as end', async (t) => {
  const fastify = Fastify()
  await fastify.register(nativeSse, { heartbeatMs: 60_000 })
  t.after(() => fastify.close())
  let client
  fastify.get('/events', (request, reply) => {
    client = reply.sse()
    client.send({ event: 'hello', data: request.query.name })
  })
  const stream = await openStream(fastify, { path: '/events?name=bo' })
  assert.equal(stream.status, 200)
  assert.deepEqual(await stream.next(), { event: 'hello', data: 'bo', id: '' })
  client.close()
  assert.equal(await stream.closed, 'end')
  await assert.rejects(stream.next(), { message: "expected an event; the stream ended ('end') first; got none" })
})

test('Hono (Fetch handler, no socket): events arrive; close() is the client leaving', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  t.after(() => within(hub.close(), 5000, 'hub.close()'))
  const app = new Hono()
  let client
  app.get('/events', (c) => hub.response(c.req.raw, { channels: ['news'] }, (attached) => {
    client = attached
    client.send({ event: 'hello', data: c.req.header('last-event-id') ?? 'none' })
  }))
  const stream = await openStream(app, { path: '/events', lastEventId: 'x' })
  assert.equal(client.transport, 'fetch')
  assert.equal(stream.status, 200)
  assert.deepEqual(await stream.next(), { event: 'hello', data: 'x', id: 'x' })
  hub.publish('news', { event: 'story', data: { n: 1 } })
  assert.deepEqual(await stream.waitFor('story'), { event: 'story', data: '{"n":1}', id: 'x' })
  const reason = new Promise((resolve) => client.once('close', resolve))
  await stream.close()
  assert.equal(await within(reason, 5000, "the client's 'close'"), 'client')
  assert.equal(await stream.closed, 'client')
})

test('close(): the server\'s client closes with reason client (node:http listener)', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  t.after(() => hub.close())
  const route = attaching(hub)
  const connected = route.next()
  const stream = await openStream(route.listener)
  const client = await connected
  const reason = new Promise((resolve) => client.once('close', resolve))
  await stream.close()
  assert.equal(await within(reason, 5000, "the client's 'close'"), 'client')
  assert.equal(await stream.closed, 'client')
})

test('pause(): the server sees a slow client (send() false, bytes queued); resume() drains it', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000, maxLagBytes: 64 << 20, maxEventBytes: 1 << 20 })
  t.after(() => hub.close())
  const route = attaching(hub)
  const connected = route.next()
  const stream = await openStream(route.listener)
  t.after(() => stream.close())
  const client = await connected
  client.send({ event: 'first', data: '' })
  await stream.waitFor('first')
  stream.pause()
  const seenBefore = stream.events.length
  const payload = 'x'.repeat(60_000)
  let sent = 0
  let refused = false
  // Far more than the loopback socket buffers hold: what they cannot take stays queued.
  while (sent < 400) {
    sent++
    if (!client.send({ event: 'bulk', data: payload, id: String(sent) })) refused = true
  }
  client.send({ event: 'last', data: '' })
  assert.ok(refused, 'send() returned false for a paused reader')
  // A second, reading stream gets an event: the event loop ran while the first was readable.
  const connected2 = route.next()
  const other = await openStream(route.listener)
  t.after(() => other.close())
  const client2 = await connected2
  client2.send({ event: 'ping', data: '' })
  await other.waitFor('ping')
  assert.equal(stream.events.length, seenBefore, 'a paused stream parses nothing')
  assert.ok(hub.stats().queuedBytes > 1_000_000, `queuedBytes ${hub.stats().queuedBytes}`)
  let drained = false
  const drain = client.drain().then(() => { drained = true })
  assert.equal(drained, false)
  stream.resume()
  await stream.waitFor('last', { timeoutMs: 10_000 })
  await drain
  assert.equal(stream.events.filter((e) => e.event === 'bulk').length, sent)
})

test('reconnect(): resumes from a history hub with Last-Event-ID, every event once', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000, history: true })
  t.after(() => hub.close())
  const app = express()
  app.get('/events', (req, res) => hub.attach(req, res, { channels: ['feed'] }))
  const stream = await openStream(app, { path: '/events' })
  for (let n = 1; n <= 3; n++) hub.publish('feed', { event: 'n', data: n })
  await stream.waitFor((e) => e.data === '3')
  await stream.close()
  for (let n = 4; n <= 6; n++) hub.publish('feed', { event: 'n', data: n })
  const again = await stream.reconnect()
  t.after(() => again.close())
  hub.publish('feed', { event: 'n', data: 7 })
  await again.waitFor((e) => e.data === '7')
  assert.deepEqual(again.events.map((e) => e.data), ['4', '5', '6', '7'])
  assert.notEqual(stream.lastEventId, '')
})

test('a 403 or a 503 answer gives its status and ends, without hanging', async (t) => {
  const hub = createHub({ heartbeatMs: 60_000, maxClients: 1 })
  t.after(() => hub.close())
  hub.authorize('secret', () => ({ allow: false }))
  const listener = (req, res) => hub.attach(req, res, { channels: req.url === '/secret' ? ['secret'] : [] })
  const forbidden = await openStream(listener, { path: '/secret' })
  assert.equal(forbidden.status, 403)
  assert.equal(await forbidden.closed, 'end')
  assert.equal(forbidden.body, 'event stream forbidden\n')
  const first = await openStream(listener)
  t.after(() => first.close())
  assert.equal(first.status, 200)
  const full = await openStream(listener)
  assert.equal(full.status, 503)
  assert.ok(full.headers['retry-after'])
  assert.equal(await full.closed, 'end')
  assert.match(full.body, /hub-full/)
  // The same through a Fetch handler.
  const fetchFull = await openStream((request) => hub.response(request))
  assert.equal(fetchFull.status, 503)
  assert.equal(await fetchFull.closed, 'end')
  assert.equal(fetchFull.body, full.body, 'the same body through a Fetch handler')
})

test('closed tells a body that ended (last chunk, all of Content-Length, FIN of an unframed body) from one cut short by a FIN', async () => {
  const listener = (req, res) => {
    const event = 'event: one\ndata: x\n\n'
    if (req.url === '/length-cut') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-length': 1000 })
      // The FIN once the event is on the socket: ended at once, Node 22 and 24 may send the
      // FIN before bytes the response still holds.
      return res.write(event, () => res.socket.end())
    }
    if (req.url === '/length') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-length': Buffer.byteLength(event) })
      return res.end(event)
    }
    if (req.url === '/unframed') {
      // HTTP/1.0-style: no chunking, no length; the connection's end is the body's.
      res.useChunkedEncodingByDefault = false
      res.shouldKeepAlive = false
      res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' })
      res.write(event)
      return res.end()
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    if (req.url === '/chunked-cut') res.write(event, () => res.socket.end())
    else res.end(event)
  }
  for (const [path, how] of [['/chunked', 'end'], ['/chunked-cut', 'reset'], ['/length', 'end'], ['/length-cut', 'reset'], ['/unframed', 'end']]) {
    const stream = await openStream(listener, { path })
    assert.equal(stream.headers['transfer-encoding'], path.startsWith('/chunked') ? 'chunked' : undefined, path)
    assert.equal((await stream.next()).event, 'one', path)
    assert.equal(await stream.closed, how, path)
    assert.equal(stream.body, 'event: one\ndata: x\n\n', path)
  }
})

test('the parser follows the spec: CR/LF/CRLF in any chunking, data lines, id carry-over, retry, comments', () => {
  const events = []
  const comments = []
  const retries = []
  const parser = createParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c), onRetry: (ms) => retries.push(ms) }, 'start')
  const text = ': hi\r\nevent: a\rdata: 1\r\ndata:2\n\nid: 7\ndata\n\nretry: 50\nretry: x\ndata: no dispatch without blank line'
  for (const ch of text) parser.feed(ch)
  assert.deepEqual(events, [{ event: 'a', data: '1\n2', id: 'start' }, { event: 'message', data: '', id: '7' }])
  assert.deepEqual(comments, ['hi'])
  assert.deepEqual(retries, [50])
  assert.equal(parser.lastEventId(), '7')
})

test('the README\'s and docs/TESTING.md\'s route tests (examples/testing/) are shown verbatim and pass as users run them: node --test', async () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const { execFile } = require('node:child_process')
  const root = path.join(__dirname, '..')
  const files = ['express.test.js', 'hono.test.js'].map((name) => path.join('examples', 'testing', name))
  for (const doc of ['README.md', path.join('docs', 'TESTING.md')]) {
    const text = fs.readFileSync(path.join(root, doc), 'utf8')
    for (const file of files) {
      const source = fs.readFileSync(path.join(root, file), 'utf8')
      assert.ok(text.includes('```js\n' + source + '```'), `${doc} must show ${file} as a js block`)
    }
  }
  // The package resolves itself by name (require('native-sse/testing')), as in a user's app.
  const { code, stdout } = await new Promise((resolve) => {
    // Without this runner's context, which would make the child report to it instead.
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT
    execFile(process.execPath, ['--test', '--test-reporter=tap', ...files], { cwd: root, env, timeout: 60_000 },
      (error, stdout) => resolve({ code: error ? error.code : 0, stdout }))
  })
  assert.equal(code, 0, stdout)
  assert.match(stdout, /^# pass 2$/m)
  assert.match(stdout, /^# fail 0$/m)
})

test('native-sse/testing runs under vitest and jest as under node:test (examples/testing/vitest, examples/testing/jest)', async () => {
  const path = require('node:path')
  const { execFile } = require('node:child_process')
  const root = path.join(__dirname, '..')
  const run = (args) => new Promise((resolve) => {
    const env = { ...process.env, CI: 'true', NO_COLOR: '1' }
    delete env.NODE_TEST_CONTEXT
    execFile(process.execPath, args, { cwd: root, env, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, output: stdout + stderr }))
  })
  // Their command-line entry points (package bins, which their exports do not list).
  const bin = (name, file) => path.join(path.dirname(require.resolve(`${name}/package.json`)), file)
  const vitest = await run([bin('vitest', 'vitest.mjs'), 'run', '--root', 'examples/testing/vitest'])
  assert.equal(vitest.code, 0, vitest.output)
  assert.match(vitest.output, /Tests\s+1 passed \(1\)/)
  const jest = await run([bin('jest', 'bin/jest.js'), '--rootDir', 'examples/testing/jest', '--testEnvironment', 'node'])
  assert.equal(jest.code, 0, jest.output)
  assert.match(jest.output, /Tests:\s+1 passed, 1 total/)
})
