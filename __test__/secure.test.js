'use strict'
// needs: curl, openssl

// HTTPS and HTTP/2 go through the Node transport: streams deliver exactly what was sent,
// heartbeats included, to curl, eventsource over undici, eventsource-parser over undici fetch
// and Node's own http2 client; HTTP/2 responses carry no connection-specific headers.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const https = require('node:https')
const http2 = require('node:http2')
const { EventSource } = require('eventsource')
const { Agent, fetch } = require('undici')
const { createParser } = require('eventsource-parser')
const { createHub } = require('..')
const { HOST, selfSignedCert, curl, parseSse, waitFor } = require('./helpers')

const SENT = [
  { event: 'greeting', data: 'hello\nover TLS', id: '1' },
  { data: { unicode: '\u{1F512} \u00e9' }, id: '2' },
  { data: '  spaced' }
]
const EXPECTED = [
  { event: 'greeting', data: 'hello\nover TLS', id: '1' },
  { event: undefined, data: JSON.stringify({ unicode: '\u{1F512} \u00e9' }), id: '2' },
  { event: undefined, data: '  spaced', id: undefined }
]
const HEARTBEAT_MS = 100
/**
 * The server ends each stream once the hub has sent this many heartbeats since the stream's
 * events (streams here run one at a time), or after STREAM_MAX_MS without them. A fixed 450 ms
 * stream held a single heartbeat when a CI machine stalled.
 */
const HEARTBEATS = 3
const STREAM_MAX_MS = 10_000

let hub
const closes = []
const lastEventIds = []

/** Sends SENT, lets the stream idle for HEARTBEATS heartbeats, then ends it. */
function serve (client) {
  assert.equal(client.transport, 'node')
  lastEventIds.push(client.lastEventId)
  client.on('close', (reason) => closes.push(reason))
  for (const message of SENT) client.send(message)
  const heartbeatsBefore = hub.metrics().heartbeats
  const giveUpAt = Date.now() + STREAM_MAX_MS
  const timer = setInterval(() => {
    if (client.closed || hub.metrics().heartbeats >= heartbeatsBefore + HEARTBEATS || Date.now() > giveUpAt) {
      clearInterval(timer)
      client.close()
    }
  }, 20)
}

function checkEvents (events) {
  assert.deepEqual(events.map(({ event, data, id }) => ({ event, data, id })), EXPECTED)
}

/** The first comment is the stream's opening frame (`:`), not a heartbeat. */
function checkHeartbeats (comments) {
  assert.equal(comments[0], '', 'the opening frame')
  const heartbeats = comments.length - 1
  assert.ok(heartbeats >= HEARTBEATS, `expected ${HEARTBEATS} heartbeats at least after the opening frame, got ${heartbeats}`)
  assert.ok(comments.every((c) => c === ''))
}

async function listen (server) {
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  return `https://${HOST}:${server.address().port}`
}

let tls
let httpsServer
let httpsUrl
let h2Server
let h2Url
let streamServer
let streamUrl

before(async () => {
  tls = selfSignedCert()
  hub = createHub({ heartbeatMs: HEARTBEAT_MS })
  httpsServer = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => serve(hub.attach(req, res)))
  httpsUrl = await listen(httpsServer)
  h2Server = http2.createSecureServer({ key: tls.key, cert: tls.cert }, (req, res) => serve(hub.attach(req, res)))
  h2Url = await listen(h2Server)
  streamServer = http2.createSecureServer({ key: tls.key, cert: tls.cert })
  streamServer.on('stream', (stream, headers) => serve(hub.attach(stream, headers)))
  streamUrl = await listen(streamServer)
})

after(async () => {
  await hub.close()
  await Promise.all([httpsServer, h2Server, streamServer].map((server) => new Promise((resolve) => {
    server.close(resolve)
    if (server.closeAllConnections) server.closeAllConnections()
  })))
})

test('HTTPS: curl receives the events and heartbeats and a clean end', async () => {
  const { code, stdout } = await curl(['-sN', '--fail', '--cacert', tls.certPath, httpsUrl])
  assert.equal(code, 0)
  const { events, comments } = parseSse(stdout.toString())
  checkEvents(events)
  checkHeartbeats(comments)
})

test('HTTPS: eventsource-parser over undici fetch, with the stream headers', async () => {
  const dispatcher = new Agent({ connect: { ca: tls.cert } })
  try {
    const response = await fetch(httpsUrl, { dispatcher })
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8')
    assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform')
    const events = []
    const comments = []
    const parser = createParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c) })
    const decoder = new TextDecoder()
    for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }))
    checkEvents(events)
    checkHeartbeats(comments)
  } finally {
    await dispatcher.close()
  }
})

test('HTTPS: the eventsource package over undici', async () => {
  const dispatcher = new Agent({ connect: { ca: tls.cert } })
  const source = new EventSource(httpsUrl, { fetch: (url, init) => fetch(url, { ...init, dispatcher }) })
  const events = []
  const record = (e) => events.push({ event: e.type === 'message' ? undefined : e.type, data: e.data, id: e.lastEventId || undefined })
  source.addEventListener('greeting', record)
  source.addEventListener('message', record)
  try {
    await waitFor(() => events.length === 3, { what: 'three events over TLS' })
  } finally {
    source.close()
    await dispatcher.close()
  }
  assert.deepEqual(events.map((e) => e.data), EXPECTED.map((e) => e.data))
  assert.equal(events[0].event, 'greeting')
})

/** Reads one HTTP/2 stream to its end with Node's client. */
async function readHttp2 (url) {
  const session = http2.connect(url, { ca: tls.cert })
  try {
    const stream = session.request({ ':path': '/', accept: 'text/event-stream' })
    const headers = await new Promise((resolve, reject) => {
      stream.once('response', resolve)
      stream.once('error', reject)
    })
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => { body += chunk })
    await new Promise((resolve, reject) => {
      stream.once('end', resolve)
      stream.once('error', reject)
    })
    return { headers, body }
  } finally {
    session.close()
  }
}

for (const [name, url] of [['compat API', () => h2Url], ['stream.respond API', () => streamUrl]]) {
  test(`HTTP/2 (${name}): Node's http2 client receives events and heartbeats, no connection headers`, async () => {
    const { headers, body } = await readHttp2(url())
    assert.equal(headers[':status'], 200)
    assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
    assert.equal(headers['cache-control'], 'no-cache, no-transform')
    assert.equal(headers.connection, undefined)
    assert.equal(headers['transfer-encoding'], undefined)
    const { events, comments } = parseSse(body)
    checkEvents(events)
    checkHeartbeats(comments)
  })

  test(`HTTP/2 (${name}): curl --http2 receives events and heartbeats`, async () => {
    const { code, stdout } = await curl(['-sN', '--http2', '--fail', '--cacert', tls.certPath,
      '-w', '\n:curl-http-version=%{http_version}\n', url()])
    assert.equal(code, 0)
    const { events, comments } = parseSse(stdout.toString())
    assert.ok(comments.includes('curl-http-version=2'), 'curl must have spoken HTTP/2')
    checkEvents(events)
    checkHeartbeats(comments.filter((c) => c === ''))
  })
}

test('an HTTP/2 client that cancels its stream closes the client with "client"', async () => {
  const before = closes.length
  const session = http2.connect(h2Url, { ca: tls.cert })
  try {
    const stream = session.request({ ':path': '/' })
    await new Promise((resolve) => stream.once('response', resolve))
    stream.close(http2.constants.NGHTTP2_CANCEL)
    await waitFor(() => closes.length === before + 1, { what: 'the close event' })
    assert.equal(closes.at(-1), 'client')
  } finally {
    session.close()
  }
})

test('Last-Event-ID reaches client.lastEventId over HTTPS and both HTTP/2 APIs', async () => {
  for (const [url, http2Flag, id] of [[httpsUrl, [], 'tls-7'], [h2Url, ['--http2'], 'h2-compat-8'], [streamUrl, ['--http2'], 'h2-stream-9']]) {
    lastEventIds.length = 0
    const { code } = await curl(['-sN', '--fail', ...http2Flag, '--cacert', tls.certPath, '-H', `Last-Event-ID: ${id}`, url])
    assert.equal(code, 0)
    assert.deepEqual(lastEventIds, [id])
  }
})
