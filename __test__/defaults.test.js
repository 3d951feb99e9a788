'use strict'
// needs: curl

// What a new user meets with default options: the stream's first body bytes leave with the
// head, a 1 MB event of any line structure goes through, and a message without `data` (which
// browsers would silently never dispatch) is refused.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { performance } = require('node:perf_hooks')
const { EventSource } = require('eventsource')
const { createHub, defaults } = require('..')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, startHttp, rawClient, curl, parseSse, waitFor } = require('./helpers')

const MB = 1_000_000
// One line of 1 MB, and 1 MB made of 20,000 short lines (50 bytes with their LF).
const ONE_LONG_LINE = 'L'.repeat(MB)
const MANY_SHORT_LINES = Array.from({ length: 20_000 }, (_, i) => String(i).padStart(49, '.')).join('\n') + '\n'
// The worst case for the encoder: every byte a line break, so every byte costs a `data: ` prefix.
const ONLY_LINE_BREAKS = '\n'.repeat(MB)

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test('the first body byte arrives at once, long before the first heartbeat', async () => {
      const hub = createHub({ heartbeatMs: 60_000 })
      let attachedAt = null
      const http = await startHttp((req, res) => {
        attachedAt = performance.now()
        hub.attach(req, res, { transport, retryMs: req.url === '/retry' ? 1500 : undefined })
      })
      try {
        for (const [path, expected] of [['/', { comments: [''], raw: /\r\n\r\n3\r\n:\n\n\r\n$/ }], ['/retry', { comments: [], raw: /retry: 1500\n\n/ }]]) {
          attachedAt = null
          const raw = rawClient(http.port, { path })
          // Stamped as the bytes arrive (rawClient's own 'data' listener has parsed them).
          let headAt = null
          let firstByteAt = null
          raw.socket.on('data', () => {
            if (raw.head === null) return
            headAt ??= performance.now()
            if (raw.raw.length > raw.raw.indexOf('\r\n\r\n') + 4) firstByteAt ??= performance.now()
          })
          await waitFor(() => firstByteAt !== null, { what: `${path}: the first body byte`, timeoutMs: 10_000 })
          // Nothing is published and the first heartbeat is 60 s away: the bytes are the head
          // and the opening frame, written when the client attaches. From attach to arrival
          // is a few ms (server and client share this process, so one clock); 1 s keeps a
          // loaded machine's stalls apart from a head or opening held back for seconds (or
          // until the first event or heartbeat).
          const head = Math.round(headAt - attachedAt)
          const firstByte = Math.round(firstByteAt - attachedAt)
          assert.ok(firstByte < 1000, `${path}: the head came ${head} ms and the first body byte ${firstByte} ms after attach, not at once`)
          await waitFor(() => expected.raw.test(raw.raw.toString('latin1')), { what: 'the whole opening frame' })
          assert.deepEqual(raw.comments, expected.comments)
          assert.equal(raw.events.length, 0, 'the opening frame dispatches no event')
          raw.end()
        }
        assert.equal(hub.metrics().heartbeats, 0, 'the opening frame is not a heartbeat')
      } finally {
        await hub.close()
        await http.close()
      }
    })

    test('1 MB events of any line structure arrive byte-exact with default options', async () => {
      const hub = createHub()
      const payloads = [ONE_LONG_LINE, MANY_SHORT_LINES, ONLY_LINE_BREAKS]
      const http = await startHttp((req, res) => {
        const client = hub.attach(req, res, { transport })
        payloads.forEach((data, i) => client.send({ event: `big${i}`, data }))
        client.send({ event: 'end', data: '' })
        client.close()
      })
      try {
        const viaCurl = await curl(['-sN', '--fail', http.url], 30_000)
        assert.equal(viaCurl.code, 0)
        const parsed = parseSse(viaCurl.stdout.toString('utf8')).events
        assert.deepEqual(parsed.map((e) => e.event), ['big0', 'big1', 'big2', 'end'])
        payloads.forEach((data, i) => assert.ok(parsed[i].data === data, `curl: payload ${i} differs`))

        const source = new EventSource(http.url)
        const received = []
        const record = (e) => received.push({ type: e.type, data: e.data })
        for (const type of ['big0', 'big1', 'big2', 'end']) source.addEventListener(type, record)
        try {
          await waitFor(() => received.some((e) => e.type === 'end'), { what: 'the end event', timeoutMs: 20_000 })
        } finally {
          source.close()
        }
        assert.deepEqual(received.map((e) => e.type), ['big0', 'big1', 'big2', 'end'])
        payloads.forEach((data, i) => assert.ok(received[i].data === data, `eventsource: payload ${i} differs`))
        assert.equal(hub.metrics().closes.slow, 0)
      } finally {
        await hub.close()
        await http.close()
      }
    })
  })
}

test('the default limits hold a 1 MB event of any structure, several to a client', () => {
  // Worst case: 7 bytes per input byte, plus the blank line and an event name.
  assert.ok(defaults.maxEventBytes >= 7 * MB + 64, `maxEventBytes ${defaults.maxEventBytes}`)
  assert.ok(defaults.maxLagBytes >= 2 * defaults.maxEventBytes, `maxLagBytes ${defaults.maxLagBytes}`)
})

test('maxEventBytes is checked on the encoded frame, and bounded by maxLagBytes', async () => {
  const hub = createHub({ maxEventBytes: 1000 })
  try {
    // 600 line breaks: 600 bytes of data, 601 lines of 7 bytes plus the blank line encoded.
    assert.throws(() => hub.broadcast({ data: '\n'.repeat(600) }), (error) =>
      error instanceof RangeError && error.code === 'ERR_SSE_EVENT_TOO_LARGE' &&
      /4208 bytes, more than maxEventBytes \(1000\)/.test(error.message))
    assert.equal(hub.broadcast({ data: 'x'.repeat(990) }), 0)
    assert.throws(() => hub.comment('c'.repeat(1000)), (error) => error.code === 'ERR_SSE_EVENT_TOO_LARGE')
  } finally {
    await hub.close()
  }
  assert.throws(() => createHub({ maxEventBytes: 2048, maxLagBytes: 1024 }), (error) =>
    error instanceof RangeError && error.code === 'ERR_SSE_INVALID_OPTION' &&
    /maxEventBytes \(2048\) must not exceed maxLagBytes \(1024\)/.test(error.message))
  // A smaller queue alone lowers the event limit with it.
  const small = createHub({ maxLagBytes: 4096 })
  try {
    assert.throws(() => small.broadcast({ data: 'x'.repeat(5000) }), (error) => error.code === 'ERR_SSE_EVENT_TOO_LARGE')
  } finally {
    await small.close()
  }
})

test('a message without data is refused with ERR_SSE_INVALID_MESSAGE and writes nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let client
  const stream = await openStream((req, res) => { client = hub.attach(req, res) })
  try {
    for (const call of [
      () => hub.broadcast({ event: 'x' }),
      () => hub.broadcast({}),
      () => hub.publish('c', { id: '7' }),
      () => client.send({ event: 'x', retry: 100 })
    ]) {
      assert.throws(call, (error) => error instanceof TypeError && error.code === 'ERR_SSE_INVALID_MESSAGE' &&
        /pass `data: ''` for an empty event/.test(error.message))
    }
    // retry alone is a message that only sets the reconnection delay; data: '' is an empty event.
    client.send({ retry: 700 })
    client.send({ event: 'empty', data: '' })
    await stream.waitFor('empty')
    assert.deepEqual(stream.events.map((e) => [e.event, e.data]), [['empty', '']], 'no event x')
    assert.deepEqual(stream.retries, [700])
    assert.equal(stream.lastEventId, '', 'no id: 7 line')
    assert.deepEqual(stream.comments, [''], 'nothing else')
  } finally {
    await stream.close()
    await hub.close()
  }
})

test('native-sse/client and the hub agree on the names they share (the bundle cannot read the core\'s constants)', () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const { defaults: native } = require('../binding')
  const source = fs.readFileSync(path.join(__dirname, '..', 'lib', 'client', 'index.mjs'), 'utf8')
  const clientDefault = (name) => {
    const found = source.match(new RegExp(`^\\s*${name}: \\['([^']*)'`, 'm'))
    assert.ok(found, `the client's ${name} default`)
    return found[1]
  }
  assert.equal(clientDefault('resetEvent'), native().hub.resetEvent)
  assert.equal(clientDefault('lastEventIdQuery'), native().lastEventIdQuery)
  assert.equal(defaults.resetEvent, native().hub.resetEvent)
  assert.equal(defaults.lastEventIdQuery, native().lastEventIdQuery)
})

test('every default is exported, read from the core', () => {
  const { historyDefaults, redisDefaults, closeDefaults } = require('..')
  const native = require('../binding').defaults()
  assert.deepEqual({ ...historyDefaults }, native.history)
  assert.deepEqual({ ...redisDefaults }, { ...native.redis, url: undefined })
  assert.equal(closeDefaults.drainMs, native.close.drainMs)
  assert.equal(closeDefaults.retryJitterMs, native.close.retryJitterMs)
  assert.equal(defaults.maxLagBytes, native.hub.maxLagBytes)
  assert.equal(defaults.retryAfterSeconds, native.retryAfterSeconds)
})
