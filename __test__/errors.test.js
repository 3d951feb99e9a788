'use strict'
// needs: nothing

// Bad input gets a thrown TypeError or RangeError with a stable err.code and a message that
// says what to do, and a rejected call writes nothing to any client.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const fs = require('node:fs')
const path = require('node:path')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { startHttp, TRANSPORTS, HOST } = require('./helpers')

function throwsCode (fn, Kind, code, pattern) {
  assert.throws(fn, (error) => {
    // The class itself: every TypeError is also an instanceof Error.
    assert.equal(error && error.constructor, Kind, `expected ${Kind.name}, got ${error && error.constructor.name}: ${error && error.message}`)
    assert.equal(error.code, code, `expected err.code ${code}, got ${error.code}: ${error.message}`)
    if (pattern) assert.match(error.message, pattern)
    return true
  })
}

test('createHub rejects wrong types, out-of-range values and unknown options', () => {
  throwsCode(() => createHub({ heartbeatMs: '15s' }), TypeError, 'ERR_SSE_INVALID_OPTION', /heartbeatMs must be a number/)
  throwsCode(() => createHub({ heartbeatMs: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION', /from 1 to/)
  throwsCode(() => createHub({ maxLagBytes: 1.5 }), RangeError, 'ERR_SSE_INVALID_OPTION', /whole number/)
  throwsCode(() => createHub({ maxLagEvents: -1 }), RangeError, 'ERR_SSE_INVALID_OPTION')
  throwsCode(() => createHub({ listenBacklog: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION', /listenBacklog must be true, false or a whole number from 1 to 65535/)
  throwsCode(() => createHub({ listenBacklog: 'max' }), TypeError, 'ERR_SSE_INVALID_OPTION', /listenBacklog must be true, false or a number, got/)
  throwsCode(() => createHub({ listenBacklog: null }), TypeError, 'ERR_SSE_INVALID_OPTION', /listenBacklog/)
  throwsCode(() => createHub({ overflow: 'block' }), TypeError, 'ERR_SSE_INVALID_OPTION', /'disconnect' or 'drop-oldest'/)
  throwsCode(() => createHub({ heartbeat: 1000 }), TypeError, 'ERR_SSE_UNKNOWN_OPTION', /unknown createHub option 'heartbeat'.*heartbeatMs/)
  throwsCode(() => createHub({ retryMs: -5 }), RangeError, 'ERR_SSE_INVALID_RETRY')
  throwsCode(() => createHub('fast'), TypeError, 'ERR_SSE_INVALID_OPTION', /must be an object/)
})

test('metricsText and collectHubMetrics bound the prefix and labels every sample repeats, so the exposition stays a string', async () => {
  const { collectHubMetrics } = require('../lib/prometheus')
  const registry = new (require('prom-client').Registry)()
  const hub = createHub()
  try {
    // 9 MB on each of some 150 lines was past V8's largest string: 'Invalid string length'.
    for (const expose of [(options) => hub.metricsText(options), (options) => collectHubMetrics(hub, { registry, ...options })]) {
      throwsCode(() => expose({ labels: { instance: 'y'.repeat(9 * 1024 * 1024) } }), RangeError, 'ERR_SSE_INVALID_OPTION', /labels must be at most 4096 characters in all/)
      throwsCode(() => expose({ labels: { a: 'x'.repeat(2048), b: 'x'.repeat(2048) } }), RangeError, 'ERR_SSE_INVALID_OPTION', /got 4098/)
      throwsCode(() => expose({ prefix: 'p'.repeat(257) }), RangeError, 'ERR_SSE_INVALID_OPTION', /prefix must be at most 256 characters, got 257/)
    }
    // At the bounds: every sample carries them.
    const text = hub.metricsText({ prefix: 'p'.repeat(256), labels: { a: 'x'.repeat(4095) } })
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
    assert.ok(samples.length > 10)
    for (const line of samples) assert.ok(line.startsWith(`${'p'.repeat(256)}`) && line.includes(`a="${'x'.repeat(4095)}"`), line.slice(0, 80))
    const collector = collectHubMetrics(hub, { registry, prefix: 'q'.repeat(256), labels: { a: 'x'.repeat(4095) } })
    assert.match(await registry.metrics(), /^q{256}\w+\{a="x{4095}"/m)
    collector.unregister()
  } finally {
    await hub.close()
  }
})

test('rejected messages throw with codes and nothing reaches the wire', async () => {
  const hub = createHub({ maxLagBytes: 64 * 1024, heartbeatMs: 60_000 })
  let client
  const stream = await openStream((req, res) => {
    client = hub.attach(req, res)
    client.send({ data: 'ready' })
  })
  try {
    await stream.waitFor((e) => e.data === 'ready')
    const circular = {}
    circular.self = circular
    const cases = [
      [() => hub.broadcast('just a string'), TypeError, 'ERR_SSE_INVALID_MESSAGE', /must be an object like \{ data/],
      [() => hub.broadcast(null), TypeError, 'ERR_SSE_INVALID_MESSAGE'],
      [() => hub.broadcast({ data: 'x', type: 'price' }), TypeError, 'ERR_SSE_UNKNOWN_OPTION', /unknown message field 'type'/],
      [() => hub.broadcast({}), TypeError, 'ERR_SSE_INVALID_MESSAGE', /pass `data: ''`/],
      [() => hub.broadcast({ event: 'x' }), TypeError, 'ERR_SSE_INVALID_MESSAGE', /pass `data: ''`/],
      [() => hub.broadcast({ data: 'x', event: 7 }), TypeError, 'ERR_SSE_INVALID_FIELD', /event must be a string/],
      [() => hub.broadcast({ data: 'x', id: {} }), TypeError, 'ERR_SSE_INVALID_FIELD', /id must be a string/],
      [() => hub.broadcast({ data: 'x', id: 'a\nb' }), TypeError, 'ERR_SSE_INVALID_FIELD', /single line/],
      [() => hub.broadcast({ data: 'x', event: 'a\r\nb' }), TypeError, 'ERR_SSE_INVALID_FIELD', /single line/],
      [() => hub.broadcast({ data: 'x', id: 'a\0' }), TypeError, 'ERR_SSE_INVALID_FIELD', /NUL/],
      [() => hub.broadcast({ data: 'x', retry: -1 }), RangeError, 'ERR_SSE_INVALID_RETRY', /non-negative/],
      [() => hub.broadcast({ data: 'x', retry: 1.5 }), RangeError, 'ERR_SSE_INVALID_RETRY'],
      [() => hub.broadcast({ data: 10n }), TypeError, 'ERR_SSE_INVALID_DATA', /JSON/],
      [() => hub.broadcast({ data: circular }), TypeError, 'ERR_SSE_INVALID_DATA', /JSON/],
      [() => hub.broadcast({ data: () => 1 }), TypeError, 'ERR_SSE_INVALID_DATA', /no JSON form/],
      [() => hub.broadcast({ data: 'x'.repeat(70 * 1024) }), RangeError, 'ERR_SSE_EVENT_TOO_LARGE', /raise maxEventBytes/],
      [() => hub.comment(42), TypeError, 'ERR_SSE_INVALID_COMMENT'],
      [() => hub.comment('c'.repeat(70 * 1024)), RangeError, 'ERR_SSE_EVENT_TOO_LARGE'],
      [() => client.send({ data: 'x', id: 'a\rb' }), TypeError, 'ERR_SSE_INVALID_FIELD'],
      [() => client.send({ data: 'y'.repeat(70 * 1024) }), RangeError, 'ERR_SSE_EVENT_TOO_LARGE'],
      [() => client.comment(undefined), TypeError, 'ERR_SSE_INVALID_COMMENT'],
      // Found by __test__/fuzz.test.js: writable(null) threw a bare TypeError from destructuring.
      [() => client.writable(null), TypeError, 'ERR_SSE_INVALID_OPTION', /must be an object/],
      [() => client.writable({ end: 'yes' }), TypeError, 'ERR_SSE_INVALID_OPTION', /end must be a boolean/],
      [() => client.writable({ close: true }), TypeError, 'ERR_SSE_UNKNOWN_OPTION', /allowed: end/],
      [() => hub.publish('', { data: 'x' }), TypeError, 'ERR_SSE_INVALID_CHANNEL', /non-empty string/],
      [() => hub.publish(5, { data: 'x' }), TypeError, 'ERR_SSE_INVALID_CHANNEL', /got number 5/],
      [() => hub.publish('c'.repeat(257), { data: 'x' }), RangeError, 'ERR_SSE_INVALID_CHANNEL', /at most 256 characters, got 257/],
      [() => hub.channel(null), TypeError, 'ERR_SSE_INVALID_CHANNEL']
    ]
    for (const [fn, Kind, code, pattern] of cases) throwsCode(fn, Kind, code, pattern)

    // Whatever a rejected call had written would come before the marker.
    hub.broadcast({ data: 'marker' })
    await stream.waitFor((e) => e.data === 'marker')
    assert.deepEqual(stream.events.map((e) => e.data), ['ready', 'marker'])
    assert.deepEqual(stream.comments, [''], 'only the opening comment')
    assert.equal(client.closed, false, 'a rejected call does not harm the client')
  } finally {
    await stream.close()
    await hub.close()
  }
})

test('collectHubMetrics refuses a registry where its names are taken, before registering any, and a client that is not prom-client', async () => {
  const { collectHubMetrics } = require('../lib/prometheus')
  const client = require('prom-client')
  const registry = new client.Registry()
  const chat = createHub()
  const news = createHub()
  try {
    const first = collectHubMetrics(chat, { registry, labels: { hub: 'chat' } })
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name).sort()
    // prom-client threw its plain Error ('already been registered') here, with no code.
    throwsCode(() => collectHubMetrics(news, { registry, labels: { hub: 'news' } }), RangeError, 'ERR_SSE_INVALID_OPTION', /sse_connections already.*its own prefix/)
    throwsCode(() => collectHubMetrics(chat, { registry }), RangeError, 'ERR_SSE_INVALID_OPTION', /already/)
    assert.deepEqual((await registry.getMetricsAsJSON()).map((metric) => metric.name).sort(), names, 'nothing more registered')
    // Its own prefix, or the first one's unregister(), and the second hub is collected.
    const second = collectHubMetrics(news, { registry, prefix: 'news_sse_' })
    assert.match(await registry.metrics(), /^news_sse_connections\{transport="native"\} 0$/m)
    second.unregister()
    first.unregister()
    collectHubMetrics(news, { registry }).unregister()
    // A bare TypeError ('Kind is not a constructor') before.
    throwsCode(() => collectHubMetrics(chat, { registry, client: {} }), TypeError, 'ERR_SSE_INVALID_OPTION', /client must be the prom-client module/)
  } finally {
    await chat.close()
    await news.close()
  }
})

test('a close plan the hub refuses stops nothing: a running stream goes on, and the hub stays open', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: true })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: ['answer'] }))
  let resolveNext
  const source = { [Symbol.asyncIterator]: () => ({ next: () => new Promise((resolve) => { resolveNext = resolve }), return: async () => ({ done: true }) }) }
  try {
    const stream = await openStream(http.server)
    const { done } = hub.publishStream('answer', source, { id: 'live' })
    await stream.waitFor((e) => e.id === 'live.0')
    for (const [plan, code] of [
      [{ finalEvent: { event: 'a\nb', data: 'x' } }, 'ERR_SSE_INVALID_FIELD'],
      [{ spreadMs: -1 }, 'ERR_SSE_INVALID_OPTION'],
      [{ retryJitterMs: 2 ** 31 }, 'ERR_SSE_INVALID_OPTION']
    ]) {
      assert.throws(() => hub.close(plan), (error) => error.code === code, JSON.stringify(plan))
    }
    // Before, the plan was refused after the running streams were stopped: their error
    // event went out, and the hub stayed open with them ended.
    assert.equal(hub.closed, false)
    resolveNext({ value: 'token', done: false })
    const token = await stream.waitFor((e) => e.id === 'live.1')
    assert.equal(token.data, 'token')
    assert.equal(stream.events.some((e) => e.event === 'stream-error'), false)
    resolveNext({ done: true })
    assert.deepEqual(await done, { id: 'live', events: 1, completed: true })
    await stream.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('attach rejects non-request arguments and unknown options before writing anything', async () => {
  const hub = createHub()
  const errors = []
  const listener = (req, res) => {
    for (const call of [
      () => hub.attach(null, res),
      () => hub.attach(req, {}),
      () => hub.attach(req, res, { channel: 'x' }),
      () => hub.attach(req, res, { transport: 'carrier-pigeon' }),
      () => hub.attach(req, res, { retryMs: -1 }),
      () => hub.attach(req, res, { channels: ['ok', ''] }),
      () => hub.attach(req, res, { channels: 'prices' })
    ]) {
      try {
        call()
      } catch (error) {
        errors.push(error)
      }
    }
    res.end('plain')
  }
  const stream = await openStream(listener)
  try {
    assert.equal(stream.status, 200)
    assert.doesNotMatch(JSON.stringify(stream.headers), /event-stream/)
    assert.deepEqual(stream.comments, [])
    assert.deepEqual(errors.map((e) => [e.constructor.name, e.code]), [
      ['TypeError', 'ERR_SSE_INVALID_ARGUMENT'],
      ['TypeError', 'ERR_SSE_INVALID_ARGUMENT'],
      ['TypeError', 'ERR_SSE_UNKNOWN_OPTION'],
      ['TypeError', 'ERR_SSE_INVALID_OPTION'],
      ['RangeError', 'ERR_SSE_INVALID_RETRY'],
      ['TypeError', 'ERR_SSE_INVALID_CHANNEL'],
      ['TypeError', 'ERR_SSE_INVALID_OPTION']
    ])
    assert.equal(hub.size, 0)
  } finally {
    await stream.close()
    await hub.close()
  }
})

/** Sends the requests pipelined on one connection; resolves with all the server sent once it
 *  closed the connection or went quiet for 300 ms. */
function exchange (port, paths) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST)
    let answer = ''
    let quiet
    const done = () => { clearTimeout(quiet); socket.destroy(); resolve(answer) }
    socket.on('data', (chunk) => { answer += chunk.toString('latin1'); clearTimeout(quiet); quiet = setTimeout(done, 300) })
    socket.on('close', done)
    socket.on('error', () => {})
    socket.write(paths.map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
  })
}

test('attach on a response that has begun throws with nothing written, and the response stays the application\'s', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const errors = {}
  const attempt = (name, req, res) => {
    try {
      hub.attach(req, res)
      errors[name] = null
    } catch (error) {
      errors[name] = error
    }
  }
  const http = await startHttp((req, res) => {
    const name = req.url.slice(1)
    if (name === 'ended') {
      res.end('done')
      attempt(name, req, res)
    } else if (name === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' })
      attempt(name, req, res)
      res.end('<p>page</p>')
    } else if (name === 'flushed') {
      res.flushHeaders()
      attempt(name, req, res)
      res.end('flushed')
    } else if (name === 'unauthorized') {
      res.statusCode = 401
      attempt(name, req, res)
      errors.unauthorizedHeadersSent = res.headersSent
      res.end('denied')
    } else {
      res.end('next')
    }
  })
  try {
    // Each one followed, on the same keep-alive connection, by a plain request whose answer
    // must come through clean: a stream written after the first would corrupt it.
    const answers = {}
    for (const name of ['ended', 'html', 'flushed', 'unauthorized']) answers[name] = await exchange(http.port, [`/${name}`, '/next'])
    const expect = {
      ended: ['Error', 'ERR_SSE_HEADERS_SENT', /the response has ended/],
      html: ['Error', 'ERR_SSE_HEADERS_SENT', /status 200, content-type 'text\/html'.*content-type 'text\/event-stream'/],
      flushed: ['Error', 'ERR_SSE_HEADERS_SENT', /content-type none/],
      unauthorized: ['Error', 'ERR_SSE_INVALID_STATUS', /res\.statusCode is 401.*answered 200.*res\.status\(401\)\.end\(\)/]
    }
    for (const [name, [kind, code, pattern]] of Object.entries(expect)) {
      const error = errors[name]
      assert.ok(error, `${name}: attach threw`)
      assert.equal(error.constructor.name, kind, name)
      assert.equal(error.code, code, name)
      assert.match(error.message, pattern, name)
      const answer = answers[name]
      assert.doesNotMatch(answer, /event-stream|\r\n:|retry:/, `${name}: no stream bytes on the wire`)
      assert.equal(answer.match(/HTTP\/1\.1 \d{3} /g).length, 2, `${name}: two whole responses`)
      assert.match(answer, /\r\n\r\n4\r\nnext\r\n0\r\n\r\n$|\r\n\r\nnext$/, `${name}: the next response is clean`)
    }
    assert.match(answers.ended, /done/)
    assert.match(answers.html, /content-type: text\/html[\s\S]*<p>page<\/p>/i)
    assert.match(answers.unauthorized, /^HTTP\/1\.1 401[\s\S]*denied/)
    assert.equal(errors.unauthorizedHeadersSent, false, 'the refused attach sent no head')
    assert.equal(hub.size, 0)
    assert.equal(hub.metrics().connectionsOpened, 0, 'nothing was registered')
  } finally {
    await hub.close()
    await http.close()
  }
})

for (const transport of TRANSPORTS) {
  test(`a second attach of one response throws ERR_SSE_ALREADY_ATTACHED and the one stream goes on, ${transport} transport`, async () => {
    const hub = createHub({ heartbeatMs: 60_000 })
    const other = createHub({ heartbeatMs: 60_000 })
    const errors = []
    const stream = await openStream((req, res) => {
      hub.attach(req, res, { transport })
      for (const again of [() => hub.attach(req, res, { transport }), () => other.attach(req, res)]) {
        try {
          again()
        } catch (error) {
          errors.push(error)
        }
      }
    })
    try {
      assert.equal(stream.status, 200)
      assert.deepEqual(errors.map((e) => [e.constructor.name, e.code]), [['Error', 'ERR_SSE_ALREADY_ATTACHED'], ['Error', 'ERR_SSE_ALREADY_ATTACHED']])
      assert.equal(hub.size, 1)
      assert.equal(other.size, 0)
      hub.broadcast({ data: 'once' })
      hub.broadcast({ data: 'twice?' })
      // A second stream on the response would repeat the events, the marker last.
      hub.broadcast({ event: 'marker', data: '' })
      await stream.waitFor('marker')
      assert.deepEqual(stream.events.map((e) => e.data), ['once', 'twice?', ''])
      assert.deepEqual(stream.comments, [''], 'one opening comment: one stream')
    } finally {
      await stream.close()
      await hub.close()
      await other.close()
    }
  })
}

test('attach on a closed hub answers 503 with Retry-After and returns a refused client', async () => {
  const hub = createHub()
  await hub.close()
  let client
  const stream = await openStream((req, res) => {
    client = hub.attach(req, res)
  })
  try {
    assert.equal(stream.status, 503)
    assert.equal(stream.headers['retry-after'], '5')
    assert.equal(client.refusal, 'closing')
    assert.equal(client.closeReason, 'refused')
    assert.equal(client.send({ data: 'x' }), false)
    assert.equal(hub.metrics().refused.closing, 1, 'counted even after the hub stopped')
  } finally {
    await stream.close()
  }
})

test('one table of error codes: every code the package raises or documents is in it, and each code in it is used', () => {
  const { errorCodes } = require('../binding')
  const table = new Map(errorCodes().map((entry) => [entry.code, entry.class]))
  assert.ok(table.size >= 20, `${table.size} codes`)
  for (const kind of table.values()) assert.ok(['TypeError', 'RangeError', 'Error'].includes(kind), kind)
  const root = path.join(__dirname, '..')
  const sources = ['index.js', 'index.d.ts', 'express.d.ts', 'fastify.d.ts', 'client.d.mts', 'README.md', ...fs.readdirSync(path.join(root, 'docs')).map((name) => path.join('docs', name))]
  for (const dir of ['lib', 'lib/client']) {
    for (const name of fs.readdirSync(path.join(root, dir))) if (/\.m?js$/.test(name)) sources.push(path.join(dir, name))
  }
  const used = new Set()
  for (const file of sources) {
    for (const [code] of fs.readFileSync(path.join(root, file), 'utf8').matchAll(/ERR_SSE_[A-Z_]+/g)) {
      assert.ok(table.has(code), `${file} names ${code}, which the table (native_sse_core::ErrorCode) does not have`)
      used.add(code)
    }
  }
  for (const code of table.keys()) assert.ok(used.has(code), `${code} is in the table but nothing raises or documents it`)
})

test('the SseErrorCode union of index.d.ts is the error table: every code of the table is in it, and every member is in the table', () => {
  const { errorCodes } = require('../binding')
  const { unionOf, withUnion } = require('../scripts/error-codes')
  const typings = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const table = errorCodes().map((entry) => entry.code)
  const union = unionOf(typings)
  const missing = table.filter((code) => !union.includes(code))
  const extra = union.filter((code) => !table.includes(code))
  assert.deepEqual(missing, [], `in the table, not in SseErrorCode: ${missing}; run \`npm run build\` (or node scripts/error-codes.js)`)
  assert.deepEqual(extra, [], `in SseErrorCode, not in the table: ${extra}`)
  assert.equal(new Set(union).size, union.length, 'each code once')
  assert.equal(withUnion(typings, table), typings, 'index.d.ts is what scripts/error-codes.js writes')
  assert.match(typings, /export interface SseError extends Error \{\s+code: SseErrorCode\s+\}/)
})

test('what the core refuses reaches JS under its own code and class, and a full hub is a refusal, not a closed hub', async () => {
  // Each case makes the core (or the binding's option check) refuse for real; its message is
  // the core's, so the call did cross. The codes and classes are written here, not read from
  // the table (errorCodes()) a wrong mapping would be in.
  const hub = createHub({ heartbeatMs: 60_000, maxEventBytes: 1000, maxChannelsPerClient: 2, maxClients: 1 })
  const clients = []
  const listener = (req, res) => { clients.push(hub.attach(req, res, { channels: ['a'] })) }
  const raw = await openStream(listener)
  try {
    assert.equal(clients.length, 1)
    const [client] = clients
    assert.equal(client.subscribe('b'), true)
    throwsCode(() => client.subscribe('c'), RangeError, 'ERR_SSE_TOO_MANY_CHANNELS',
      /^a client may be subscribed to at most 2 channels \(maxChannelsPerClient\), this would make 3/)
    throwsCode(() => hub.broadcast({ data: '\n'.repeat(600) }), RangeError, 'ERR_SSE_EVENT_TOO_LARGE',
      /^encoded event is 4208 bytes, more than maxEventBytes \(1000\)/)
    throwsCode(() => hub.publish('a', { data: 'x', id: 'a\nb' }), TypeError, 'ERR_SSE_INVALID_FIELD',
      /^message\.id contains a line break at byte 1; `id` must be a single line/)
    throwsCode(() => client.send({ data: 'x', event: 'a\rb' }), TypeError, 'ERR_SSE_INVALID_FIELD',
      /^message\.event contains a line break at byte 1/)
    throwsCode(() => createHub({ heartbeatMs: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION',
      /^heartbeatMs must be a whole number from 1 to 2147483647, got 0/)

    // maxClients reached: the core refuses the second client, and it reaches JS as that
    // refusal (503, 'hub-full'), not as a closed hub.
    const second = await openStream(listener)
    assert.equal(second.status, 503)
    assert.equal(clients.length, 2)
    assert.equal(clients[1].refusal, 'hub-full')
    assert.equal(clients[1].closeReason, 'refused')
    assert.deepEqual({ hubFull: hub.metrics().refused.hubFull, closing: hub.metrics().refused.closing }, { hubFull: 1, closing: 0 })

    hub.broadcast({ data: 'marker' })
    await raw.waitFor((e) => e.data === 'marker')
    assert.deepEqual(raw.events.map((e) => e.data), ['marker'], 'nothing refused reached the wire')
    assert.equal(client.closed, false)
  } finally {
    await raw.close()
    await hub.close()
  }
  throwsCode(() => hub.broadcast({ data: 'x' }), Error, 'ERR_SSE_HUB_CLOSED', /^the hub is closed; create a new hub/)
  throwsCode(() => hub.publish('a', { data: 'x' }), Error, 'ERR_SSE_HUB_CLOSED', /^the hub is closed/)
})

test('fromNative gives each code of the table its class, and anything else is ERR_SSE_INTERNAL', () => {
  const { errorCodes } = require('../binding')
  const { fromNative } = require('../lib/errors')
  for (const { code, class: kind } of errorCodes()) {
    const error = fromNative(Object.assign(new Error('from the core'), { code }))
    assert.equal(error.code, code)
    assert.equal(error.constructor.name, kind, code)
  }
  assert.equal(fromNative(Object.assign(new Error('napi'), { code: 'InvalidArg' })).code, 'ERR_SSE_INTERNAL')
})

test('maxLagEvents/maxLagBytes name the lag window; the names it had before are unknown options', async () => {
  const hub = createHub({ maxLagBytes: 1000 })
  try {
    // maxEventBytes follows a lower window: 2000 bytes no longer fit.
    throwsCode(() => hub.broadcast({ data: 'x'.repeat(2000) }), RangeError, 'ERR_SSE_EVENT_TOO_LARGE', /more than maxEventBytes \(1000\)/)
  } finally {
    await hub.close()
  }
  throwsCode(() => createHub({ maxLagBytes: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION', /^maxLagBytes must be/)
  throwsCode(() => createHub({ maxLagEvents: 0 }), RangeError, 'ERR_SSE_INVALID_OPTION', /^maxLagEvents must be/)
  throwsCode(() => createHub({ maxQueueEvents: 10 }), TypeError, 'ERR_SSE_UNKNOWN_OPTION', /unknown createHub option 'maxQueueEvents'/)
  throwsCode(() => createHub({ maxQueueBytes: 1 << 20 }), TypeError, 'ERR_SSE_UNKNOWN_OPTION', /unknown createHub option 'maxQueueBytes'/)
})
