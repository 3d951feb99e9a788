'use strict'
// needs: nginx, procfs

// Behind a real nginx: the deployment guide's configuration (docs/DEPLOYMENT.md) and a stock `proxy_pass` (which relies on the
// hub's `X-Accel-Buffering: no`) pass each event on at once; heartbeats keep a quiet stream
// open past `proxy_read_timeout`; gzip does not stall or corrupt the stream; a client resumes
// with Last-Event-ID after `nginx -s reload`.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { performance } = require('node:perf_hooks')
const { request } = require('undici')
const { createParser } = require('eventsource-parser')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, waitFor, sleep } = require('./helpers')
const { freePort } = require('../test-support/loopback')
const { nginxBinary, readmeNginxConfig, startNginx, stockConfig } = require('../test-support/nginx')

const LATENCY_LIMIT_MS = 100

if (nginxBinary() === null && process.env.CI) throw new Error('nginx is not installed: .ci/run installs it')

/**
 * The deployment guide's configuration, pointed at `upstreamPort`, listening on `port`, with `changes`
 * (a map of directive to value, e.g. { proxy_read_timeout: '3s' }) applied; each must exist.
 */
function recommendedConfig (upstreamPort, port, changes = {}) {
  let config = readmeNginxConfig()
    .replace('server 127.0.0.1:3000;', `server 127.0.0.1:${upstreamPort};`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`)
  for (const [directive, value] of Object.entries(changes)) {
    const pattern = new RegExp(`(^|\\n)(\\s*)${directive} [^;]*;`)
    assert.match(config, pattern, `the deployment guide's nginx block sets ${directive}`)
    config = config.replace(pattern, `$1$2${directive} ${value};`)
  }
  return config
}

/**
 * An SSE reader over undici (which decompresses gzip as it streams) and eventsource-parser:
 * each event with the moment it was parsed, the response's status and headers, and whether
 * the body ended.
 */
async function streamThrough (url, headers = {}) {
  const controller = new AbortController()
  // A proxy that buffers may hold even the head back: that fails here, after 5 s.
  const response = await request(url, {
    headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal, headersTimeout: 5000, bodyTimeout: 0
  })
  const reader = { status: response.statusCode, headers: response.headers, events: [], comments: 0, ended: false, error: null }
  const parser = createParser({
    onEvent: (event) => reader.events.push({ ...event, at: performance.now() }),
    onComment: () => reader.comments++
  })
  const encoding = response.headers['content-encoding']
  let body = response.body
  if (encoding === 'gzip') body = body.pipe(require('node:zlib').createGunzip())
  const decoder = new TextDecoder()
  body.on('data', (chunk) => parser.feed(decoder.decode(chunk, { stream: true })))
  body.on('end', () => { reader.ended = true; reader.endedAt ??= performance.now() })
  body.on('error', (error) => { reader.error = error; reader.ended = true; reader.endedAt ??= performance.now() })
  response.body.on('error', () => {})
  reader.close = () => controller.abort()
  return reader
}

/** Publishes `count` events `gapMs` apart and returns each one's delay to `reader`, in ms. */
async function measureLatency (hub, reader, count, gapMs, data = (i) => `event ${i}`) {
  const delays = []
  const before = reader.events.length
  for (let i = 0; i < count; i++) {
    const publishedAt = performance.now()
    hub.broadcast({ event: 'tick', data: data(i) })
    await waitFor(() => reader.events.length > before + i, { what: `event ${i} through nginx`, timeoutMs: 5000, intervalMs: 1 })
    delays.push(reader.events[before + i].at - publishedAt)
    await sleep(gapMs)
  }
  return delays
}

// A series with an event later than the limit is measured again, at most this many times in
// all. A proxy that buffers holds every small event (until 4-8 KB have gathered, or for good),
// so it fails every series; a series spoiled by the machine does not repeat. This machine is a
// VM whose vCPUs the host takes away now and then (2% steal on average, in bursts): CI saw
// single events 105-719 ms late, other events of the same series at 0.5-1 ms, and with a second
// CI run on the machine a gzip series had 7 of 30 events 115-997 ms late.
const SERIES_ATTEMPTS = 5

/**
 * Publishes series of `count` events through `reader` until one has every event within
 * LATENCY_LIMIT_MS (at most SERIES_ATTEMPTS). Returns that series' delays (or the last's) and
 * one line per series measured, for the record.
 */
async function onTimeSeries (hub, reader, count, gapMs, data) {
  const lines = []
  let delays = []
  for (let attempt = 1; attempt <= SERIES_ATTEMPTS; attempt++) {
    delays = await measureLatency(hub, reader, count, gapMs, data)
    const late = delays.flatMap((d, i) => d > LATENCY_LIMIT_MS ? [`event ${i}: ${d.toFixed(1)} ms`] : [])
    lines.push(`series ${attempt}: ${summary(delays)}${late.length > 0 ? `; late: ${late.join(', ')}` : ''}`)
    if (late.length === 0) break
  }
  return { delays, lines }
}

function summary (delays) {
  const sorted = [...delays].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1)
  return `median ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`
}

/**
 * An app server on a hub, with what its clients sent as Last-Event-ID. `?transport=` overrides
 * the transport per request, and `?hub=other` attaches to `otherHubOptions`' hub instead.
 */
async function app (hubOptions, transport, otherHubOptions = {}) {
  const hub = createHub(hubOptions)
  const other = createHub(otherHubOptions)
  const lastEventIds = []
  const http = await startHttp((req, res) => {
    const query = new URL(req.url, 'http://x').searchParams
    lastEventIds.push(req.headers['last-event-id'] ?? null)
    const target = query.get('hub') === 'other' ? other : hub
    target.attach(req, res, { transport: query.get('transport') ?? transport })
  })
  return {
    hub,
    other,
    http,
    lastEventIds,
    stop: async () => {
      await Promise.all([hub.close(), other.close()])
      await http.close()
    }
  }
}

describe('behind nginx', { skip: nginxBinary() === null ? 'nginx is not installed' : false }, () => {
  for (const transport of TRANSPORTS) {
    for (const [name, config] of [['the deployment guide configuration', recommendedConfig], ['a stock proxy_pass', stockConfig]]) {
      test(`${transport}, ${name}: each event arrives within ${LATENCY_LIMIT_MS} ms of its publish`, async (t) => {
        const server = await app({ heartbeatMs: 60_000 }, transport)
        const port = await freePort()
        const nginx = await startNginx(config(server.http.port, port), port)
        let reader = null
        try {
          reader = await streamThrough(`${nginx.url}/events`)
          assert.equal(reader.status, 200)
          assert.match(reader.headers['content-type'], /^text\/event-stream/)
          await waitFor(() => server.hub.size === 1, { what: 'the stream through nginx' })
          // A buffering proxy would hold these small events until its 4-8 KB buffer filled.
          const { delays, lines } = await onTimeSeries(server.hub, reader, 50, 20)
          t.diagnostic(`${transport}, ${name}: ${lines.join(' | ')}`)
          assert.ok(delays.every((d) => d <= LATENCY_LIMIT_MS), `no series of 50 with every event within ${LATENCY_LIMIT_MS} ms: ${lines.join(' | ')}`)
          const series = Array.from({ length: 50 }, (_, i) => `event ${i}`)
          assert.deepEqual(reader.events.map((e) => e.data), lines.flatMap(() => series))
        } finally {
          reader?.close()
          await nginx.stop()
          await server.stop()
        }
      })
    }
  }

  test('with proxy_read_timeout 3s, heartbeats every 1 s keep quiet streams open for 15 s (both transports); without them nginx cuts at 3 s', async (t) => {
    const server = await app({ heartbeatMs: 1000 }, 'auto', { heartbeatMs: 60_000 })
    const port = await freePort()
    const nginx = await startNginx(recommendedConfig(server.http.port, port, { proxy_read_timeout: '3s' }), port)
    const readers = []
    try {
      const openedAt = performance.now()
      const [native, node, unguarded] = await Promise.all([
        streamThrough(`${nginx.url}/events?transport=native`),
        streamThrough(`${nginx.url}/events?transport=node`),
        streamThrough(`${nginx.url}/events?hub=other`)
      ])
      readers.push(native, node, unguarded)
      await waitFor(() => server.hub.size === 2 && server.other.size === 1, { what: 'three streams through nginx' })
      // The control: with heartbeats 60 s apart, nginx's read timeout ends the stream.
      await waitFor(() => unguarded.ended, { what: 'nginx to cut the stream without heartbeats', timeoutMs: 10_000, intervalMs: 20 })
      const cutAfter = unguarded.endedAt - openedAt
      t.diagnostic(`without heartbeats nginx ended the stream after ${Math.round(cutAfter)} ms`)
      assert.ok(cutAfter >= 2900, `cut after ${Math.round(cutAfter)} ms`)
      // The subject: 15 s of silence but for heartbeats, five read timeouts' worth.
      await sleep(Math.max(0, 15_000 - (performance.now() - openedAt)))
      for (const reader of [native, node]) {
        assert.equal(reader.ended, false, 'the stream is still open after 15 s')
        assert.ok(reader.comments >= 12, `${reader.comments} heartbeats in 15 s`)
      }
      assert.equal(server.hub.size, 2)
      server.hub.broadcast({ data: 'still here' })
      await waitFor(() => native.events.length === 1 && node.events.length === 1, { what: 'an event after 15 s quiet' })
      assert.equal(native.events[0].data, 'still here')
      assert.equal(node.events[0].data, 'still here')
      assert.equal(server.hub.metrics().connections.native, 1, 'one stream on each transport')
    } finally {
      for (const reader of readers) reader.close()
      await nginx.stop()
      await server.stop()
    }
  })

  for (const transport of TRANSPORTS) {
    test(`${transport}: with gzip on for text/event-stream, events still arrive at once and intact`, async (t) => {
      const server = await app({ heartbeatMs: 60_000, maxEventBytes: 1 << 20 }, transport)
      const port = await freePort()
      const config = recommendedConfig(server.http.port, port, { gzip: 'on; gzip_types text/event-stream' })
      const nginx = await startNginx(config, port)
      let reader = null
      try {
        reader = await streamThrough(`${nginx.url}/events`, { 'accept-encoding': 'gzip' })
        assert.equal(reader.headers['content-encoding'], 'gzip', 'nginx compresses the stream')
        await waitFor(() => server.hub.size === 1, { what: 'the stream through nginx' })
        const large = 'x'.repeat(100_000)
        const payload = (i) => i === 10 ? large : i % 3 === 0 ? `line ${i}\nsecond line é ✓ 🙂\n\nafter a blank` : `event ${i}`
        const { delays, lines } = await onTimeSeries(server.hub, reader, 30, 20, payload)
        t.diagnostic(`${transport}, gzip on: ${lines.join(' | ')}`)
        assert.ok(delays.every((d) => d <= LATENCY_LIMIT_MS), `no series of 30 with every event within ${LATENCY_LIMIT_MS} ms: ${lines.join(' | ')}`)
        const series = Array.from({ length: 30 }, (_, i) => payload(i))
        assert.deepEqual(reader.events.map((e) => e.data), lines.flatMap(() => series))
        assert.equal(reader.error, null)
      } finally {
        reader?.close()
        await nginx.stop()
        await server.stop()
      }
    })

    test(`${transport}: after nginx -s reload, eventsource resumes with Last-Event-ID and misses nothing`, async (t) => {
      const server = await app({ heartbeatMs: 60_000, retryMs: 100, history: { maxEvents: 10_000 } }, transport)
      const port = await freePort()
      const nginx = await startNginx(recommendedConfig(server.http.port, port, { worker_shutdown_timeout: '1s' }), port)
      const source = new EventSource(`${nginx.url}/events`)
      const received = []
      source.addEventListener('message', (e) => received.push(Number(e.data)))
      try {
        await waitFor(() => server.hub.size === 1, { what: 'the stream through nginx' })
        const workersBefore = nginx.workers()
        let published = 0
        const publishFor = async (until) => {
          while (!until() && published < 5000) {
            server.hub.broadcast({ data: String(published++) })
            await sleep(5)
          }
        }
        await publishFor(() => received.length >= 50)
        nginx.reload()
        // The old worker closes the stream after worker_shutdown_timeout; eventsource comes back
        // through a new worker with the id of the last event it got.
        await publishFor(() => server.lastEventIds.some((id) => id !== null) && server.hub.size === 1 && received.length > published - 10)
        const resumedWith = server.lastEventIds.filter((id) => id !== null)
        assert.equal(resumedWith.length, 1, `reconnects with Last-Event-ID: ${resumedWith}`)
        assert.ok(nginx.workers().some((pid) => !workersBefore.includes(pid)), 'a new worker serves the resumed stream')
        for (let i = 0; i < 50; i++) server.hub.broadcast({ data: String(published++) })
        await waitFor(() => received.length >= published, { what: `${published} events`, timeoutMs: 10_000 })
        t.diagnostic(`${transport}: ${published} events, resumed once through the new worker`)
        assert.equal(received.length, published, 'no event twice')
        assert.ok(received.every((value, i) => value === i), 'every event once, in order')
      } finally {
        source.close()
        await nginx.stop()
        await server.stop()
      }
    })
  }
})
