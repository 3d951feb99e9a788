'use strict'
// needs: redis-server, test-hooks

// Failure paths that need the addon built with the `test-hooks` cargo feature
// (`npm run build:test-hooks`; release builds contain no such hook): deliberate panics in a hub
// call, in a writer task and in register(), and a process without libuv's uv_backend_fd.
// Each test file runs in its own process, so loading that addon here touches no other file.

const path = require('node:path')
const fs = require('node:fs')
const { execFile } = require('node:child_process')

const HOOKS_ADDON = path.join(__dirname, '..', 'target', 'test-hooks', 'native-sse.node')
if (!fs.existsSync(HOOKS_ADDON)) throw new Error(`${HOOKS_ADDON} is missing: run npm run build:test-hooks`)
process.env.NAPI_RS_NATIVE_LIBRARY_PATH = HOOKS_ADDON

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, waitFor, linkedHub, ended } = require('./helpers')

// The magic texts of crates/core/src/test_hooks.rs.
const PANIC_IN_HUB_CALL = 'native-sse:test-hooks:panic-in-hub-call'
const PANIC_IN_WRITER = 'native-sse:test-hooks:panic-in-writer'
const PANIC_IN_REGISTER = 'native-sse:test-hooks:panic-in-register'

test('a panic inside a hub call throws ERR_SSE_INTERNAL and the hub keeps serving', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const stream = await openStream((req, res) => hub.attach(req, res))
  try {
    assert.equal(hub.size, 1)
    assert.throws(() => hub.comment(PANIC_IN_HUB_CALL), (error) =>
      error.code === 'ERR_SSE_INTERNAL' && /deliberate panic in a hub call/.test(error.message) && error.cause !== undefined)
    assert.equal(hub.broadcast({ data: 'after the panic' }), 1)
    assert.equal((await stream.next()).data, 'after the panic')
    assert.equal(stream.events.length, 1)
  } finally {
    await stream.close()
    await hub.close()
  }
})

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test("a panic in one client's writer task closes that client with 'error'; the others keep flowing", async () => {
      const hub = createHub({ heartbeatMs: 60_000 })
      const clients = []
      const closes = []
      const listener = (req, res) => {
        const client = hub.attach(req, res, { transport })
        client.on('close', (reason) => closes.push([client.id, reason]))
        clients.push(client)
      }
      const victim = await openStream(listener)
      const bystander = await openStream(listener)
      try {
        assert.equal(clients.length, 2)
        clients[0].comment(PANIC_IN_WRITER)
        await waitFor(() => closes.length === 1, { what: "the victim's close" })
        assert.deepEqual(closes, [[clients[0].id, 'error']])
        assert.notEqual(await ended(victim), 'client', "the victim's connection ended")
        for (let i = 0; i < 100; i++) hub.broadcast({ data: String(i) })
        await bystander.waitFor((e) => e.data === '99')
        assert.deepEqual(bystander.events.map((e) => Number(e.data)), Array.from({ length: 100 }, (_, i) => i))
        assert.equal(hub.size, 1)
        assert.equal(hub.metrics().closes.error, 1)
      } finally {
        await bystander.close()
        await hub.close()
      }
    })
  })
}

test('a failure in register() leaves the response untouched, so the handler can answer', async () => {
  const hub = createHub()
  const errors = []
  const stream = await openStream((req, res) => {
    try {
      hub.attach(req, res, { channels: [PANIC_IN_REGISTER] })
    } catch (error) {
      errors.push(error)
      // Only possible when attach wrote nothing: Node throws ERR_HTTP_HEADERS_SENT otherwise.
      res.writeHead(500, { 'content-type': 'text/plain', 'x-error': error.code }).end(error.code)
    }
  })
  try {
    // The handler's own answer, whole.
    assert.equal(stream.status, 500)
    assert.equal(stream.headers['content-type'], 'text/plain')
    assert.equal(stream.headers['x-error'], 'ERR_SSE_INTERNAL')
    assert.equal(await ended(stream), 'end')
    assert.deepEqual(errors.map((e) => e.code), ['ERR_SSE_INTERNAL'])
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
  }
})

test('a head that Node refuses unregisters the client and leaves the handler free to answer', async () => {
  const hub = createHub()
  const errors = []
  const stream = await openStream((req, res) => {
    // A status message Node refuses (it would split the head): Node throws from writeHead.
    // (A status other than 200 is refused by attach itself, before it registers anything.)
    res.statusMessage = 'OK\r\nX-Injected: 1'
    try {
      hub.attach(req, res)
    } catch (error) {
      errors.push(error)
      res.statusCode = 500
      res.statusMessage = 'Internal Server Error'
      res.setHeader('content-length', Buffer.byteLength('refused head'))
      res.end('refused head')
    }
  })
  try {
    assert.equal(stream.status, 500)
    assert.equal(stream.headers['content-length'], '12', 'the handler\'s answer')
    assert.equal(await ended(stream), 'end', 'its body whole')
    assert.deepEqual(errors.map((e) => e.code), ['ERR_INVALID_CHAR'])
    assert.equal(hub.metrics().connectionsOpened, 1, 'the client was registered before Node refused its head')
    await waitFor(() => hub.size === 0, { what: 'the client to be unregistered' })
  } finally {
    await hub.close()
  }
})

test('without uv_backend_fd in the process, attach falls back to the Node transport', async () => {
  const stdout = await new Promise((resolve, reject) => execFile(process.execPath,
    [path.join(__dirname, 'fixtures', 'no-uv-backend-fd.js')],
    { env: { ...process.env, NATIVE_SSE_TEST_HIDE_UV_BACKEND_FD: '1' }, timeout: 15_000 },
    (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))))
  const result = JSON.parse(stdout)
  assert.deepEqual(result.transports, ['node'], 'auto picks the Node transport')
  assert.deepEqual(result.events, ['served through node'])
  assert.equal(result.nativeError.code, 'ERR_SSE_TRANSPORT_UNAVAILABLE')
  assert.match(result.nativeError.message, /uv_backend_fd/)
})

test('a Redis task that panics is started again: the hub hears backend down with the reason, then up, and goes on applying', { timeout: 60_000 }, async () => {
  const { startRedis } = require('../test-support/redis')
  const redis = await startRedis({ durable: false })
  const prefix = `hooks${process.pid}`
  const { hub, backend, raw, close } = await linkedHub({ url: redis.url, prefix, reconnectMinMs: 50, reconnectMaxMs: 200 })
  try {
    hub.broadcast({ data: 'before' })
    await raw.waitFor((e) => e.data === 'before')
    // The magic payload of crates/redis/src/receiver.rs.
    assert.equal(await redis.cli('PUBLISH', `{${prefix}}:events`, 'native-sse test hook: panic the receiver'), '1')
    await waitFor(() => backend.some((e) => e.state === 'down'), { what: "'backend' down" })
    const down = backend.find((e) => e.state === 'down')
    assert.match(down.detail, /the Redis receiver task failed \(test hook: the receiver panicked\); it starts again/)
    await waitFor(() => backend.at(-1).state === 'up' && hub.metrics().redis.connected, { what: "'backend' up again" })
    hub.broadcast({ data: 'after' })
    await raw.waitFor((e) => e.data === 'after', { timeoutMs: 10_000 })
    assert.deepEqual(raw.events.map((e) => e.data), ['before', 'after'])
  } finally {
    await close()
    await redis.close()
  }
})
