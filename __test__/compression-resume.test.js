'use strict'
// needs: curl, nginx

// gzip streams behind a stock nginx (proxy_pass and nothing else: HTTP/1.0 to the app, gzip
// off, the app's body passed on as it comes) to the eventsource package, native-sse/client and
// curl --compressed; a cut and a reconnect with Last-Event-ID land exactly on the next event,
// the gap replayed inside the new gzip stream. And per-channel compression: a channel set to
// `false` is sent uncompressed inside the same gzip streams, one with its own settings uses
// them.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { pathToFileURL } = require('node:url')
const path = require('node:path')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, waitFor, curl } = require('./helpers')
const { freePort } = require('../test-support/loopback')
const { nginxBinary, startNginx, stockConfig } = require('../test-support/nginx')

if (nginxBinary() === null && process.env.CI) throw new Error('nginx is not installed: .ci/run installs it')

const CLIENT_MODULE = pathToFileURL(path.join(__dirname, '..', 'lib', 'client', 'index.mjs')).href
const USERS = ['ada', 'grace', 'linus', 'margaret']

/** A chat message: JSON whose keys and room repeat from one event to the next. */
function chat (i) {
  return { event: 'chat', id: `m${i}`, data: JSON.stringify({ room: 'general', user: USERS[i % USERS.length], text: `message number ${i} about the release`, at: 1_780_000_000_000 + i * 1000 }) }
}

/** The text of events `from` to `to - 1` as a client that decodes them sees their data. */
const range = (from, to) => Array.from({ length: to - from }, (_, i) => chat(from + i).data)

/** Publishes events `from` to `to - 1` on 'room', yielding a turn every 20. */
async function publish (hub, from, to) {
  for (let i = from; i < to; i++) {
    hub.publish('room', chat(i))
    if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A compressing hub with history, and an app attaching every request to 'room'. */
async function app (transport) {
  const hub = createHub({ compression: true, history: true, retryMs: 50, heartbeatMs: 60_000 })
  const requests = []
  const clients = []
  const http = await startHttp((req, res) => {
    requests.push({ acceptEncoding: req.headers['accept-encoding'] ?? '', lastEventId: req.headers['last-event-id'] ?? null })
    clients.push(hub.attach(req, res, { transport, channels: ['room'] }))
  })
  return { hub, http, requests, clients, stop: async () => { await hub.close(); await http.close() } }
}

describe('gzip streams behind a stock nginx', { skip: nginxBinary() === null ? 'nginx is not installed' : false }, () => {
  for (const transport of TRANSPORTS) {
    test(`${transport}: eventsource and native-sse/client decode the gzip stream, and resume across a cut with nothing missing or twice`, async () => {
      const server = await app(transport)
      const port = await freePort()
      const nginx = await startNginx(stockConfig(server.http.port, port), port)
      const { connect } = await import(CLIENT_MODULE)
      const viaEventSource = []
      const viaClient = []
      const source = new EventSource(`${nginx.url}/`)
      source.addEventListener('chat', (event) => viaEventSource.push(event.data))
      const client = connect(`${nginx.url}/`, { transport: 'fetch', text: ['chat'] })
      client.on('chat', (data) => viaClient.push(data))
      try {
        await waitFor(() => server.hub.size === 2, { what: 'two streams through nginx' })
        await publish(server.hub, 0, 150)
        await waitFor(() => viaEventSource.length === 150 && viaClient.length === 150, { what: '150 events to each' })

        // Cut by the server; what is published before they are back comes from history.
        for (const attached of server.clients.splice(0)) attached.close()
        await publish(server.hub, 150, 300)
        await waitFor(() => server.clients.length === 2 && server.hub.size === 2, { what: 'both to reconnect' })
        await publish(server.hub, 300, 450)
        await waitFor(() => viaEventSource.length >= 450 && viaClient.length >= 450, { what: '450 events to each' })

        assert.deepEqual(viaEventSource, range(0, 450), 'eventsource: every event once, in order')
        assert.deepEqual(viaClient, range(0, 450), 'native-sse/client: every event once, in order')
        assert.equal(server.requests.length, 4)
        assert.ok(server.requests.every(({ acceptEncoding }) => /gzip/.test(acceptEncoding)), `each asked for gzip through nginx: ${JSON.stringify(server.requests)}`)
        assert.deepEqual(server.requests.slice(2).map(({ lastEventId }) => lastEventId), ['m149', 'm149'], 'each resumed from its last event')
        const { plainBytes, wireBytes } = server.hub.metrics().compression
        assert.ok(plainBytes > 2 * 450 * 100, `both streams were gzip (${plainBytes} plain bytes encoded)`)
        assert.ok(wireBytes < 0.6 * plainBytes, `and compressed: ${wireBytes} of ${plainBytes} bytes`)
      } finally {
        source.close()
        client.close()
        await nginx.stop()
        await server.stop()
      }
    })

    test(`${transport}: curl --compressed through nginx with Last-Event-ID gets the rest of history and what follows, byte for byte`, async () => {
      const server = await app(transport)
      const port = await freePort()
      const nginx = await startNginx(stockConfig(server.http.port, port), port)
      try {
        await publish(server.hub, 0, 200)
        const resumed = curl(['-sS', '-N', '--compressed', '-D', '-', '-H', 'Last-Event-ID: m49', `${nginx.url}/`], 20_000)
        await waitFor(() => server.hub.size === 1, { what: 'curl through nginx' })
        await publish(server.hub, 200, 300)
        await server.hub.close()
        const { code, stdout, stderr } = await resumed
        assert.equal(code, 0, `curl checked the gzip trailer and exited cleanly: ${stderr}`)
        const text = stdout.toString('latin1')
        assert.match(text, /\r\ncontent-encoding: gzip\r\n/i, 'nginx passed the gzip stream on')
        const body = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')
        const data = body.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6))
        assert.deepEqual(data, range(50, 300), 'from the event after m49 to the last, each once')
      } finally {
        await nginx.stop()
        await server.stop()
      }
    })
  }
})

test('per-channel compression: false sends a channel uncompressed inside gzip streams, and a channel\'s own settings are used', async () => {
  const hub = createHub({
    compression: true,
    heartbeatMs: 60_000,
    // Already compressed, say: deflating it again costs CPU for nothing.
    channels: { blobs: { compression: false } }
  })
  // Its own keyframe every event: nothing to refer back to, so it barely shrinks.
  hub.channel('tuned', { compression: { keyframeEvery: 1 } })
  const http = await startHttp((req, res) => {
    hub.attach(req, res, { channels: [new URL(req.url, 'http://x').pathname.slice(1)] })
  })
  const EVENTS = 300
  try {
    const names = ['room', 'blobs', 'tuned']
    const runs = names.map((name) => curl(['-sS', '-N', '--compressed', '-w', '\n%{size_download}', '-D', '-', `${http.url}/${name}`], 20_000))
    await waitFor(() => names.every((name) => hub.channel(name).size === 1), { what: 'one curl per channel' })
    for (let i = 0; i < EVENTS; i++) {
      for (const name of names) hub.publish(name, chat(i))
      if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve))
    }
    await hub.close()
    // The counters as Prometheus reads them: the same figures as metrics().
    const { plainBytes, wireBytes } = hub.metrics().compression
    const text = hub.metricsText()
    assert.match(text, new RegExp(`^sse_compression_plain_bytes_total ${plainBytes}$`, 'm'))
    assert.match(text, new RegExp(`^sse_compression_wire_bytes_total ${wireBytes}$`, 'm'))
    const plainSize = range(0, EVENTS).reduce((sum, data, i) => sum + Buffer.byteLength(`event: chat\nid: m${i}\ndata: ${data}\n\n`), 0)
    const share = {}
    for (const [i, run] of (await Promise.all(runs)).entries()) {
      assert.equal(run.code, 0, `${names[i]}: ${run.stderr}`)
      const output = run.stdout.toString('utf8')
      assert.match(output, /\r\ncontent-encoding: gzip\r\n/i, `${names[i]} is a gzip stream`)
      const data = output.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6))
      assert.deepEqual(data, range(0, EVENTS), `${names[i]}: every event decoded`)
      share[names[i]] = Number(output.slice(output.lastIndexOf('\n') + 1)) / plainSize
    }
    assert.ok(share.room < 0.4, `the hub's settings compress the chat: ${JSON.stringify(share)}`)
    assert.ok(share.blobs > 1, `compression: false sends the channel as it is (stored blocks): ${JSON.stringify(share)}`)
    assert.ok(share.tuned > 0.6 && share.tuned < 1, `a keyframe every event refers back to nothing: ${JSON.stringify(share)}`)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('per-channel compression options: a wrong type, range or key throws with a code, and true needs a compressing hub', () => {
  const plain = createHub()
  const compressing = createHub({ compression: { level: 9 } })
  try {
    assert.throws(() => plain.channel('x', { compression: true }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION', message: /needs a hub that compresses: createHub\(\{ compression: true \}\)/ })
    assert.throws(() => createHub({ channels: { x: { compression: {} } } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION' })
    plain.channel('x', { compression: false })
    assert.throws(() => compressing.channel('x', { compression: 'off' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.throws(() => compressing.channel('x', { compression: { level: 0 } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION', message: /compression\.level must be a whole number from 1 to 9/ })
    assert.throws(() => compressing.channel('x', { compression: { keyframes: 2 } }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION', message: /allowed: level, keyframeEvery/ })
    assert.throws(() => compressing.channel('x', { compresion: false }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
  } finally {
    plain.close()
    compressing.close()
  }
})
