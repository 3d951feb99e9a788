'use strict'
// needs: chromium

// native-sse/client against a real native-sse server, in headless Chromium (both transports:
// the browser's EventSource and the fetch reader) and under Node (fetch). The same scenario
// functions run in both places: in the page through page.evaluate, in Node by a direct call.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const { pathToFileURL } = require('node:url')
const { chromium } = require('playwright-core')
const { createHub } = require('..')
const { startHttp, waitFor, sleep, once, rawClient } = require('./helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const CLIENT_DIR = path.join(__dirname, '..', 'lib', 'client')
const PAGE = '<!doctype html><meta charset="utf-8"><title>native-sse/client</title>'

let browser
before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
})
after(async () => {
  // A test that failed midway leaves its Node clients reconnecting, which would keep the file from ending.
  for (const record of Object.values(globalThis.__sse ?? {})) record.client.close()
  if (browser) await browser.close()
})

/**
 * An HTTP server that serves the page and the client's modules, and passes everything else to
 * `route`; it records each request (method, path, headers, time) in `requests`.
 */
async function startServer (route) {
  const requests = []
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (url.pathname === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE)
    if (url.pathname === '/favicon.ico') return res.writeHead(404).end()
    if (url.pathname.startsWith('/client/')) {
      const file = path.join(CLIENT_DIR, path.basename(url.pathname))
      return res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(file))
    }
    requests.push({ method: req.method, url, headers: req.headers, at: performance.now() })
    route(req, res, url)
  })
  return { ...http, requests }
}

/** Where a scenario runs: a fresh Chromium page on the server's origin, or this Node process. */
async function environment (name, server) {
  if (name === 'node') {
    const moduleUrl = pathToFileURL(path.join(CLIENT_DIR, 'index.mjs')).href
    return { transports: ['auto'], run: (fn, arg = {}) => fn({ ...arg, moduleUrl }), close: async () => {} }
  }
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(error))
  await page.goto(`${server.url}/`)
  return {
    transports: ['eventsource', 'fetch'],
    run: (fn, arg = {}) => page.evaluate(fn, { ...arg, moduleUrl: '/client/index.mjs' }),
    close: async () => {
      await page.close()
      assert.deepEqual(errors, [], 'no uncaught error in the page')
    }
  }
}

const ENVIRONMENTS = ['chromium', 'node']

/** Runs `body(env, name)` in each environment, closing its page afterwards. */
async function inEachEnvironment (server, body) {
  for (const name of ENVIRONMENTS) {
    const env = await environment(name, server)
    try {
      await body(env, name)
    } finally {
      await env.close()
    }
  }
}

/** Runs `body(env, transport, name)` for each transport of each environment. */
const inEachTransport = (server, body) => inEachEnvironment(server, async (env, name) => {
  for (const transport of env.transports) await body(env, transport, name)
})

// ---- Scenario functions: self-contained, since page.evaluate sends their source. ----

/** Opens a client kept as globalThis.__sse[key], recording everything it reports. */
async function openClient ({ moduleUrl, url, key, options = {}, listen = [], iterate = false }) {
  const { connect } = await import(moduleUrl)
  const record = { events: [], iterated: [], errors: [], resets: [], revokes: [], presences: [], closes: [], opens: 0 }
  globalThis.__sse ??= {}
  globalThis.__sse[key] = record
  record.client = connect(url, {
    ...options,
    onOpen: () => { record.opens++ },
    onError: (info) => { record.errors.push({ status: info.status ?? null, retryInMs: info.retryInMs }) },
    onReset: (info) => { record.resets.push(info) },
    onRevoke: (info) => { record.revokes.push(info) },
    onPresence: (info) => { record.presences.push(info) },
    onClose: (info) => { record.closes.push(info) }
  })
  for (const name of listen) {
    record.client.on(name, (data, meta) => record.events.push({ event: meta.event, data, id: meta.id, type: typeof data }))
  }
  // Everything the iterator yields (on EventSource: the names listened to), until the client stops.
  if (iterate) (async () => { for await (const { event, data } of record.client) record.iterated.push({ event, data }) })().catch(() => {})
  return record.client.transport
}

/** What the client `key` has recorded so far, its state, and `client.members()` of each of `channels`. */
function readClient ({ key, channels = [] }) {
  const record = globalThis.__sse[key]
  const { client, ...rest } = record
  const members = Object.fromEntries(channels.map((channel) => [channel, client.members(channel)]))
  return { ...rest, state: client.state, lastEventId: client.lastEventId, retryMs: client.retryMs, members }
}

/** The delays (`retryInMs`) each client of `keys` planned so far, one array per key. */
function plannedDelays ({ keys }) {
  return keys.map((key) => globalThis.__sse[key].errors.map((e) => e.retryInMs))
}

function closeClient ({ key }) {
  const record = globalThis.__sse[key]
  record.client.close()
  return record.client.state
}

/** Collects `count` events with `for await`, then leaves the loop. */
async function iterateClient ({ moduleUrl, url, options = {}, count }) {
  const { connect } = await import(moduleUrl)
  const client = connect(url, options)
  const got = []
  for await (const event of client) {
    got.push(event)
    if (got.length === count) break
  }
  client.close()
  return got
}

/** Calls connect() with bad options and returns each error's class, code and message. */
async function badCalls ({ moduleUrl, url }) {
  const { connect } = await import(moduleUrl)
  const calls = [
    [url, { retryMs: -1 }],
    [url, { transport: 'websocket' }],
    [url, { colour: 'red' }],
    [url, { lastEventId: 'a\nb' }],
    [url, { text: 'note' }],
    [42, {}],
    [url, 'options']
  ]
  const out = []
  for (const [target, options] of calls) {
    try {
      connect(target, options).close()
      out.push(null)
    } catch (error) {
      out.push({ name: error.name, code: error.code, message: error.message })
    }
  }
  const client = connect(url, { transport: 'fetch' })
  try {
    client.on('x', 'not a function')
  } catch (error) {
    out.push({ name: error.name, code: error.code, message: error.message })
  }
  client.close()
  return out
}

// ---- Tests ----

test('typed handlers and the iterator get data as the hub serialized it', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const server = await startServer((req, res) => hub.attach(req, res))
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      const used = await env.run(openClient, {
        url: `${server.url}/events`, key, options: { transport, text: ['note'] }, listen: ['price', 'note', 'message']
      })
      assert.equal(used, transport === 'auto' ? 'fetch' : transport)
      const iterated = env.run(iterateClient, {
        url: `${server.url}/events`, count: 4, options: { transport, events: ['price', 'note'], text: ['note'] }
      })
      await waitFor(() => hub.size === 2, { what: `${key}: two streams` })
      hub.broadcast({ event: 'price', data: { symbol: 'ACME', price: 12.5 }, id: 'p1' })
      hub.broadcast({ event: 'note', data: '42' })
      hub.broadcast({ data: [1, 2, 3] })
      hub.broadcast({ data: 'plain words' })
      await waitFor(async () => (await env.run(readClient, { key })).events.length === 4, { what: `${key}: four events` })
      const { events, lastEventId } = await env.run(readClient, { key })
      assert.deepEqual(events.map(({ id, ...rest }) => rest), [
        { event: 'price', data: { symbol: 'ACME', price: 12.5 }, type: 'object' },
        // Listed in `text`: the string stays a string although it reads as JSON.
        { event: 'note', data: '42', type: 'string' },
        { event: 'message', data: [1, 2, 3], type: 'object' },
        { event: 'message', data: 'plain words', type: 'string' }
      ], key)
      assert.equal(events[0].id, 'p1')
      assert.equal(lastEventId, events[3].id)
      assert.deepEqual((await iterated).map((e) => e.data), [{ symbol: 'ACME', price: 12.5 }, '42', [1, 2, 3], 'plain words'])
      assert.equal(await env.run(closeClient, { key }), 'closed')
      await waitFor(() => hub.size === 0, { what: `${key}: the streams to leave` })
    })
  } finally {
    await hub.close()
    await server.close()
  }
})

test('the client resumes without loss when the server cuts the stream, and after a refused reconnect', async () => {
  const EVENTS = 600
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 20, history: { maxEvents: EVENTS } })
  let refuse = 0
  const clients = []
  const server = await startServer((req, res) => {
    // A refusal answers the GET and, for EventSource, the HEAD that asks why it failed.
    if (refuse > 0) {
      refuse--
      return res.writeHead(503).end()
    }
    clients.push(hub.attach(req, res))
  })
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      const first = server.requests.length
      await env.run(openClient, { url: `${server.url}/events`, key, options: { transport, retryMs: 20 }, listen: ['message'] })
      await waitFor(() => hub.size === 1, { what: `${key}: the stream` })
      const received = async () => (await env.run(readClient, { key })).events.length
      for (let seq = 0; seq < EVENTS; seq++) {
        hub.broadcast({ data: seq })
        if (seq % 150 === 149 && seq < EVENTS - 100) {
          // Cut once the client has caught up; publishing goes on while it is away, so
          // what it missed must come back from the history. The second cut also refuses
          // the first reconnect, which then backs off.
          await waitFor(async () => (await received()) === seq + 1, { what: `${key}: the client to catch up` })
          const opened = clients.length
          if (seq === 299) refuse = 2
          clients[clients.length - 1].close()
          for (let i = 0; i < 20; i++) hub.broadcast({ data: ++seq })
          await waitFor(() => clients.length > opened && hub.size === 1, { what: `${key}: the reconnect`, timeoutMs: 10_000 })
        }
        if (seq % 20 === 0) await sleep(0)
      }
      await waitFor(async () => (await received()) >= EVENTS, { what: `${key}: every event`, timeoutMs: 20_000 })
      const record = await env.run(readClient, { key })
      assert.deepEqual(record.events.map((e) => e.data), Array.from({ length: EVENTS }, (_, i) => i), `${key}: every event once, in order`)
      assert.equal(record.opens, 4, `${key}: the first stream and three reconnects`)
      assert.equal(record.retryMs, 20, `${key}: the server's retry: is honoured`)
      assert.deepEqual(record.resets, [])
      assert.ok(record.errors.some((e) => e.status === 503), `${key}: the refused reconnect was reported`)
      const mine = server.requests.slice(first)
      const resumed = mine.filter((r) => r.method === 'GET').slice(1)
      const inUrl = resumed.filter((r) => r.headers['last-event-id'] === undefined)
      for (const request of inUrl) {
        assert.ok(request.url.searchParams.get('lastEventId'), `${key}: a reconnect without any last event id`)
      }
      // EventSource reconnects by itself after a cut (header); after the refusal the client
      // opens a new one, which carries the id in the URL. fetch always sends the header.
      assert.equal(inUrl.length, transport === 'eventsource' ? 1 : 0, `${key}: reconnects with the id in the URL`)
      assert.ok(mine.every((r) => r.method === 'GET' || (r.method === 'HEAD' && transport === 'eventsource')))
      await env.run(closeClient, { key })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    })
  } finally {
    await hub.close()
    await server.close()
  }
})

test('the last event id outlives reconnects without an event, and any id the hub accepts resumes (non-Latin-1 too)', async () => {
  // The hub cuts every stream right after its opening frame unless told to hold: reconnects
  // with no event in between, which must keep resuming from the last id, as EventSource does.
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 20, history: { maxEvents: 100 } })
  const ID = '日本-3 é'
  let hold = 0
  const streams = []
  const server = await startServer((req, res) => {
    const client = hub.attach(req, res)
    streams.push(client)
    if (hold === 0) setImmediate(() => client.close())
  })
  /** The id each stream of `key` resumed from, as the hub read it (header or query). */
  const resumedFrom = (first) => streams.slice(first).map((c) => c.lastEventId)
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      // Ids unique to this round: one given twice would resume as 'ambiguous'.
      const [before, id, after] = [`before ${key}`, `${ID} ${key}`, `after ${key}`]
      hub.broadcast({ id: before, data: 'old' })
      const first = streams.length
      hold = 1
      await env.run(openClient, { url: `${server.url}/events`, key, options: { transport, retryMs: 20, lastEventId: before }, listen: ['message'] })
      await waitFor(() => streams.length === first + 1, { what: `${key}: the first stream` })
      hub.broadcast({ id, data: 'one' })
      await waitFor(async () => (await env.run(readClient, { key })).events.length === 1, { what: `${key}: the event` })
      hold = 0
      streams[first].close()
      // Three reconnects with no event in between, then one that stays.
      await waitFor(() => streams.length >= first + 4, { what: `${key}: three reconnects`, timeoutMs: 10_000 })
      hold = 1
      await waitFor(() => hub.size === 1, { what: `${key}: a stream that stays`, timeoutMs: 10_000 })
      hub.broadcast({ id: after, data: 'two' })
      await waitFor(async () => (await env.run(readClient, { key })).events.length === 2, { what: `${key}: the next event` })
      const record = await env.run(readClient, { key })
      assert.deepEqual(record.events.map((e) => e.data), ['one', 'two'], key)
      assert.equal(record.lastEventId, after, key)
      assert.deepEqual(record.resets, [], `${key}: every reconnect resumed`)
      const ids = resumedFrom(first)
      assert.equal(ids[0], before, `${key}: the lastEventId option is sent first`)
      assert.ok(ids.slice(1).every((sent) => sent === id), `${key}: every reconnect resumes from the last id: ${JSON.stringify(ids)}`)
      assert.ok(streams.slice(first + 1).every((c) => c.resume === 'replayed'), `${key}: ${streams.slice(first + 1).map((c) => c.resume)}`)
      await env.run(closeClient, { key })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    })
  } finally {
    await hub.close()
    await server.close()
  }
})

test('a delay beyond what a timer holds is clamped, not fired at once; the hub refuses such a retry', async () => {
  assert.throws(() => createHub({ retryMs: 3e9 }), (error) => error instanceof RangeError && error.code === 'ERR_SSE_INVALID_RETRY')
  const hub = createHub()
  try {
    assert.throws(() => hub.broadcast({ retry: 2 ** 31 }), (error) => error.code === 'ERR_SSE_INVALID_RETRY')
  } finally {
    await hub.close()
  }
  const server = await startServer((req, res) => res.writeHead(503, { 'retry-after': '2200000' }).end())
  try {
    await inEachEnvironment(server, async (env, name) => {
      const first = server.requests.length
      await env.run(openClient, { url: `${server.url}/events`, key: `${name}-storm`, options: { transport: 'fetch' } })
      await waitFor(async () => (await env.run(readClient, { key: `${name}-storm` })).errors.length >= 1, { what: `${name}: the refusal` })
      // Give an overflowed timer (fired after 1 ms) the time to come back many times.
      await sleep(500)
      const record = await env.run(readClient, { key: `${name}-storm` })
      assert.equal(server.requests.length - first, 1, `${name}: one request, no reconnect storm`)
      assert.equal(record.errors[0].retryInMs, 2 ** 31 - 1, `${name}: the delay is the timer's most`)
      await env.run(closeClient, { key: `${name}-storm` })
    })
  } finally {
    await server.close()
  }
})

test('a Last-Event-ID the hub cannot resume from calls onReset', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 10 } })
  const server = await startServer((req, res) => hub.attach(req, res))
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      await env.run(openClient, { url: `${server.url}/events`, key, options: { transport, lastEventId: 'no-such-id' }, listen: ['message'] })
      await waitFor(async () => (await env.run(readClient, { key })).resets.length === 1, { what: `${key}: onReset` })
      hub.broadcast({ data: 'after' })
      await waitFor(async () => (await env.run(readClient, { key })).events.length === 1, { what: `${key}: the live event` })
      const record = await env.run(readClient, { key })
      assert.deepEqual(record.resets, [{ reason: 'unknown' }])
      assert.deepEqual(record.events.map((e) => e.data), ['after'], 'the reset event is not handed to handlers')
      await env.run(closeClient, { key })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    })
  } finally {
    await hub.close()
    await server.close()
  }
})

/** A server attaching the channels of `?ch=` (repeatable) to `hub`. */
const channelServer = (hub) => startServer((req, res, url) => hub.attach(req, res, { channels: url.searchParams.getAll('ch') }))
const channelsUrl = (server, ...channels) => `${server.url}/events?${channels.map((ch) => `ch=${encodeURIComponent(ch)}`).join('&')}`

test('a grant that expires or is revoked calls onRevoke; the event reaches no handler nor the iterator, and the stream goes on for the other channels', async () => {
  // The hub's default revokedEvent, and one of the app's naming, which the client is told.
  for (const revokedEvent of [undefined, 'grant-ended']) {
    const hub = createHub({ heartbeatMs: 60_000, ...(revokedEvent && { revokedEvent }) })
    hub.authorize('doc:{id}', () => ({ expiresAt: Date.now() + 300 }))
    hub.authorize('room:{id}', () => true)
    const server = await channelServer(hub)
    try {
      await inEachTransport(server, async (env, transport, name) => {
        const key = `${name}-${transport}-${revokedEvent ?? 'default'}`
        const [doc, room, news] = [`doc:${key}`, `room:${key}`, `news:${key}`]
        // With a custom name, a handler is also registered for it: it still gets nothing. With
        // the default name, none is: the EventSource transport must listen for it by itself.
        await env.run(openClient, {
          url: channelsUrl(server, doc, room, news),
          key,
          options: { transport, ...(revokedEvent && { revokedEvent }) },
          listen: revokedEvent ? ['message', revokedEvent] : ['message'],
          iterate: true
        })
        const started = Date.now()
        await waitFor(async () => (await env.run(readClient, { key })).opens === 1, { what: `${key}: the stream` })
        await waitFor(async () => (await env.run(readClient, { key })).revokes.length === 1, { what: `${key}: onRevoke for the expired grant` })
        assert.ok(Date.now() - started >= 250, `${key}: told ${Date.now() - started} ms after attaching, before the grant's 300 ms`)
        assert.equal(hub.publish(doc, { data: 'expired' }), 0, `${key}: unsubscribed from ${doc}`)
        assert.equal(hub.revoke({ channel: room }), 1)
        await waitFor(async () => (await env.run(readClient, { key })).revokes.length === 2, { what: `${key}: onRevoke for the revoked grant` })
        assert.equal(hub.publish(room, { data: 'revoked' }), 0, `${key}: unsubscribed from ${room}`)
        assert.equal(hub.publish(news, { data: 'still here' }), 1)
        await waitFor(async () => (await env.run(readClient, { key })).events.length === 1, { what: `${key}: the other channel's event` })
        await sleep(50)
        const record = await env.run(readClient, { key })
        assert.deepEqual(record.revokes, [{ channel: doc, reason: 'expired' }, { channel: room, reason: 'revoked' }], key)
        assert.deepEqual(record.events.map((e) => [e.event, e.data]), [['message', 'still here']], `${key}: no handler got the revoked event`)
        assert.deepEqual(record.iterated, [{ event: 'message', data: 'still here' }], `${key}: nor did the iterator`)
        assert.deepEqual([record.state, record.opens, record.errors, record.closes, record.resets], ['open', 1, [], [], []], `${key}: one stream, never dropped`)
        await env.run(closeClient, { key })
        await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
      })
    } finally {
      await hub.close()
      await server.close()
    }
  }
})

test('presence: onPresence and members() follow the snapshot, joins and leaves; a reconnect\'s snapshot replaces the list; the event reaches no handler nor the iterator', async () => {
  // The hub's default presenceEvent, and one of the app's naming, which the client is told.
  for (const presenceEvent of [undefined, 'who-is-here']) {
    const hub = createHub({ heartbeatMs: 60_000, retryMs: 50, ...(presenceEvent && { presenceEvent }) })
    hub.presence('room:{room}')
    // Members carry their grant's data.
    hub.authorize('room:{room}', ({ user }) => ({ data: { name: user.toUpperCase() } }))
    const streams = []
    let held = null
    const server = await startServer((req, res, url) => {
      const user = url.searchParams.get('user')
      const attach = () => streams.push({ user, client: hub.attach(req, res, { channels: url.searchParams.getAll('ch'), user }) })
      if (held !== null && user === 'me') held.promise.then(attach)
      else attach()
    })
    const others = []
    try {
      await inEachTransport(server, async (env, transport, name) => {
        const key = `${name}-${transport}-${presenceEvent ?? 'default'}`
        const [room, news] = [`room:${key}`, `news:${key}`]
        const member = (user) => ({ user, data: { name: user.toUpperCase() } })
        const join = (user) => {
          const client = rawClient(server.port, { path: `/events?ch=${encodeURIComponent(room)}&user=${user}` })
          others.push(client)
          return client
        }
        const users = () => hub.members(room).members.map((m) => m.user).join()
        const read = () => env.run(readClient, { key, channels: [room, news] })
        /** The presence events after the first `seen`, once there are `count` of them. */
        const told = async (seen, count, what) => (await waitFor(async () => {
          const record = await read()
          return record.presences.length >= seen + count && record
        }, { what: `${key}: ${what}` })).presences.slice(seen)
        const ann = join('ann')
        await waitFor(() => users() === 'ann', { what: `${key}: ann in the room` })
        // With a custom name, a handler is also registered for it: it still gets nothing. With
        // the default name, none is: the EventSource transport must listen for it by itself.
        await env.run(openClient, {
          url: `${server.url}/events?ch=${encodeURIComponent(room)}&ch=${encodeURIComponent(news)}&user=me`,
          key,
          options: { transport, ...(presenceEvent && { presenceEvent }) },
          listen: presenceEvent ? ['message', presenceEvent] : ['message'],
          iterate: true
        })
        // The snapshot (taken before this client joined), then its own join.
        assert.deepEqual(await told(0, 2, 'the snapshot and its own join'), [
          { channel: room, members: [member('ann')], joins: [member('ann')], leaves: [], snapshot: true },
          { channel: room, members: [member('ann'), member('me')], joins: [member('me')], leaves: [], snapshot: false }
        ], key)
        const bob = join('bob')
        assert.deepEqual(await told(2, 1, 'bob\'s join'),
          [{ channel: room, members: [member('ann'), member('me'), member('bob')], joins: [member('bob')], leaves: [], snapshot: false }], key)
        ann.end()
        // A leave carries the data the member had.
        assert.deepEqual(await told(3, 1, 'ann\'s leave'),
          [{ channel: room, members: [member('me'), member('bob')], joins: [], leaves: [member('ann')], snapshot: false }], key)
        assert.deepEqual((await read()).members, { [room]: [member('me'), member('bob')], [news]: [] }, `${key}: members()`)

        // The server cuts the stream; its reconnect waits while bob leaves and cy comes. The new
        // connection's snapshot replaces the list, and says who came and went meanwhile.
        held = {}
        held.promise = new Promise((resolve) => { held.resolve = resolve })
        streams.findLast((s) => s.user === 'me').client.close()
        bob.end()
        join('cy')
        await waitFor(() => users() === 'cy', { what: `${key}: me and bob gone, cy in` })
        await waitFor(() => server.requests.filter((r) => r.url.searchParams.get('user') === 'me' && r.url.searchParams.getAll('ch').includes(room)).length === 2, { what: `${key}: the reconnect` })
        held.resolve()
        held = null
        assert.deepEqual(await told(4, 2, 'the new snapshot and its own join'), [
          { channel: room, members: [member('cy')], joins: [member('cy')], leaves: [member('me'), member('bob')], snapshot: true },
          { channel: room, members: [member('cy'), member('me')], joins: [member('me')], leaves: [], snapshot: false }
        ], key)

        assert.equal(hub.publish(news, { data: 'still here' }), 1)
        await waitFor(async () => (await read()).events.length === 1, { what: `${key}: the other channel's event` })
        // A revoked grant ends the channel's presence events: its list is dropped.
        assert.equal(hub.revoke({ channel: room, user: 'me' }), 1)
        await waitFor(async () => (await read()).revokes.length === 1, { what: `${key}: onRevoke` })
        await sleep(50)
        const record = await read()
        assert.deepEqual(record.members, { [room]: [], [news]: [] }, `${key}: the revoked channel's list is dropped`)
        assert.equal(record.presences.length, 6, key)
        assert.deepEqual(record.events.map((e) => [e.event, e.data]), [['message', 'still here']], `${key}: no handler got a presence event`)
        assert.deepEqual(record.iterated, [{ event: 'message', data: 'still here' }], `${key}: nor did the iterator`)
        assert.deepEqual([record.state, record.opens, record.closes, record.resets], ['open', 2, [], []], `${key}: one cut, one reconnect`)
        await env.run(closeClient, { key })
        for (const client of others.splice(0)) client.end()
        await waitFor(() => hub.size === 0, { what: `${key}: the streams to leave` })
      })
    } finally {
      held?.resolve()
      for (const client of others) client.end()
      await hub.close()
      await server.close()
    }
  }
})

test('a rule that denies (403) stops the client for good; a check that fails (503, Retry-After) is retried after it', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryAfterSeconds: 1 })
  let broken = true
  hub.authorize('private:{x}', () => false)
  hub.authorize('flaky:{x}', () => { if (broken) throw new Error('the session store is down'); return true })
  const refusals = []
  hub.on('refuse', ({ reason }) => refusals.push(reason))
  const server = await channelServer(hub)
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      let first = server.requests.length
      await env.run(openClient, { url: channelsUrl(server, `private:${key}`), key: `${key}-denied`, options: { transport, retryMs: 20 } })
      await waitFor(async () => (await env.run(readClient, { key: `${key}-denied` })).state === 'closed', { what: `${key}: the 403 to stop the client` })
      const denied = await env.run(readClient, { key: `${key}-denied` })
      assert.deepEqual([denied.closes, denied.opens, denied.errors], [[{ reason: 'status', status: 403 }], 0, []], key)
      // Ten retry intervals later it has still asked once (EventSource: a GET and the HEAD that read the status).
      await sleep(200)
      assert.deepEqual(server.requests.slice(first).map((r) => r.method), transport === 'eventsource' ? ['GET', 'HEAD'] : ['GET'], key)

      broken = true
      first = server.requests.length
      await env.run(openClient, { url: channelsUrl(server, `flaky:${key}`), key: `${key}-flaky`, options: { transport, retryMs: 20 }, listen: ['message'] })
      await waitFor(async () => (await env.run(readClient, { key: `${key}-flaky` })).errors.length === 1, { what: `${key}: the 503` })
      const refused = await env.run(readClient, { key: `${key}-flaky` })
      assert.equal(refused.errors[0].status, 503, key)
      assert.ok(refused.errors[0].retryInMs >= 1000, `${key}: retries in ${refused.errors[0].retryInMs} ms, before Retry-After: 1`)
      assert.deepEqual([refused.state, refused.closes], ['connecting', []], key)
      broken = false
      await waitFor(async () => (await env.run(readClient, { key: `${key}-flaky` })).opens === 1, { what: `${key}: the retry to stream`, timeoutMs: 10_000 })
      const gets = server.requests.slice(first).filter((r) => r.method === 'GET')
      assert.equal(gets.length, 2, key)
      assert.ok(gets[1].at - gets[0].at >= 1000, `${key}: retried after ${(gets[1].at - gets[0].at).toFixed(0)} ms`)
      assert.equal(hub.publish(`flaky:${key}`, { data: 'let in' }), 1)
      await waitFor(async () => (await env.run(readClient, { key: `${key}-flaky` })).events.length === 1, { what: `${key}: the event` })
      await env.run(closeClient, { key: `${key}-flaky` })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    })
    assert.ok(refusals.includes('forbidden') && refusals.includes('authorization-failed'), String(refusals))
  } finally {
    await hub.close()
    await server.close()
  }
})

test('the fetch transport sends the Authorization header the server checks; a 401 stops it', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const server = await startServer((req, res) => {
    if (req.headers.authorization !== 'Bearer good-token') return res.writeHead(401).end()
    hub.attach(req, res)
  })
  try {
    await inEachEnvironment(server, async (env, name) => {
      const first = server.requests.length
      await env.run(openClient, { url: `${server.url}/events`, key: 'bad', options: { headers: { authorization: 'Bearer bad-token' }, retryMs: 20 } })
      await waitFor(async () => (await env.run(readClient, { key: 'bad' })).state === 'closed', { what: `${name}: the 401 to stop the client` })
      const bad = await env.run(readClient, { key: 'bad' })
      assert.deepEqual(bad.closes, [{ reason: 'status', status: 401 }])
      assert.equal(bad.opens, 0)

      const transport = await env.run(openClient, { url: `${server.url}/events`, key: 'good', options: { headers: { authorization: 'Bearer good-token' } }, listen: ['message'] })
      assert.equal(transport, 'fetch', 'headers pick the fetch transport')
      await waitFor(() => hub.size === 1, { what: `${name}: the authorized stream` })
      hub.broadcast({ data: { secret: true } })
      await waitFor(async () => (await env.run(readClient, { key: 'good' })).events.length === 1, { what: `${name}: the event` })
      assert.deepEqual((await env.run(readClient, { key: 'good' })).events[0].data, { secret: true })
      await env.run(closeClient, { key: 'good' })
      await waitFor(() => hub.size === 0, { what: `${name}: the stream to leave` })
      // Ten retry intervals later the refused client has still asked once.
      await sleep(200)
      const asked = server.requests.slice(first).map((r) => r.headers.authorization)
      assert.deepEqual(asked, ['Bearer bad-token', 'Bearer good-token'])
    })
  } finally {
    await hub.close()
    await server.close()
  }
})

test('against a refusing server, reconnect delays grow, stay under the cap, and differ between clients', async (t) => {
  const CLIENTS = 6
  const ATTEMPTS = 10
  const RETRY_MS = 50
  const CAP_MS = 800
  const server = await startServer((req, res) => res.writeHead(503).end())
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const label = `${name}-${transport}`
      const first = server.requests.length
      for (let c = 0; c < CLIENTS; c++) {
        await env.run(openClient, { url: `${server.url}/refuse?c=${c}`, key: `${label}-${c}`, options: { transport, retryMs: RETRY_MS, maxRetryMs: CAP_MS } })
      }
      const attemptsOf = (c) => server.requests.slice(first)
        .filter((r) => r.method === 'GET' && r.url.searchParams.get('c') === String(c))
        .map((r) => r.at)
      const keys = Array.from({ length: CLIENTS }, (_, c) => `${label}-${c}`)
      // Until each client made ATTEMPTS attempts (about 3 s), or one planned a delay past the
      // cap: without it the ceilings double on (1.6 s, 3.2 s, ... 25.6 s), and the clients
      // would take minutes to get there; the planned delays show it after the fifth refusal.
      let plannedNow = []
      const pastCap = () => plannedNow.flatMap((planned, c) => planned.map((ms, k) => [c, k, ms])).filter(([, , ms]) => ms > CAP_MS)
      await waitFor(async () => {
        plannedNow = await env.run(plannedDelays, { keys })
        return pastCap().length > 0 || keys.every((_, c) => attemptsOf(c).length >= ATTEMPTS)
      }, { what: () => `${label}: ${ATTEMPTS} attempts per client (made ${keys.map((_, c) => attemptsOf(c).length)})`, timeoutMs: 30_000, intervalMs: 20 })
      assert.deepEqual(pastCap().map(([c, k, ms]) => `client ${c} planned ${ms} ms after refusal ${k + 1}`), [],
        `${label}: every planned delay is within maxRetryMs (${CAP_MS} ms)`)
      for (let c = 0; c < CLIENTS; c++) await env.run(closeClient, { key: `${label}-${c}` })
      // delays[c][k]: the wait after the (k+1)-th failure in a row, whose ceiling is
      // min(cap, retry * 2^(k+1)): 100, 200, 400, 800, 800, ...
      const delays = Array.from({ length: CLIENTS }, (_, c) => {
        const at = attemptsOf(c).slice(0, ATTEMPTS)
        return at.slice(1).map((t, k) => t - at[k])
      })
      const all = delays.flat()
      // The cap: every delay the client chose is within it, and the server saw each attempt
      // no sooner than the client said it would wait, nor much later. What the server sees is
      // the planned delay plus what one refused attempt costs (for EventSource, a GET and a
      // HEAD), which a loaded machine stretches now and then: so the excess is bounded by its
      // median and its 90th percentile, which a client waiting longer than it planned (3x:
      // a median excess of twice the delays, about 500 ms) cannot meet.
      const excess = []
      for (let c = 0; c < CLIENTS; c++) {
        const planned = (await env.run(readClient, { key: `${label}-${c}` })).errors.map((e) => e.retryInMs)
        assert.ok(planned.length >= ATTEMPTS - 1 && planned.every((ms) => Number.isFinite(ms) && ms >= 0 && ms <= CAP_MS), `${label}: planned ${planned}`)
        delays[c].forEach((observed, k) => {
          assert.ok(observed >= planned[k] - 2,
            `${label}: client ${c} asked again ${observed.toFixed(0)} ms after refusal ${k + 1}, planning ${planned[k]} ms`)
          excess.push(observed - planned[k])
        })
      }
      excess.sort((a, b) => a - b)
      const excessMedian = excess[Math.floor(excess.length / 2)]
      const excessP90 = excess[Math.floor(excess.length * 0.9)]
      t.diagnostic(`${label}: observed minus planned: median ${excessMedian.toFixed(0)} ms, 90th percentile ${excessP90.toFixed(0)} ms`)
      assert.ok(excessMedian < 250, `${label}: the server saw attempts a median ${excessMedian.toFixed(0)} ms later than planned`)
      assert.ok(excessP90 < 1000, `${label}: the server saw attempts a 90th percentile ${excessP90.toFixed(0)} ms later than planned`)
      const p90 = [...all].sort((a, b) => a - b)[Math.floor(all.length * 0.9)]
      const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length
      const early = mean(delays.flatMap((d) => d.slice(0, 2)))
      const late = mean(delays.flatMap((d) => d.slice(3)))
      assert.ok(late > early + 150, `${label}: delays grow (first two ${early.toFixed(0)} ms, from the fourth ${late.toFixed(0)} ms)`)
      // Full jitter: at each capped attempt the clients' delays spread (a uniform draw
      // below 800 ms has a 231 ms standard deviation; without jitter it is timer noise).
      const spread = mean([3, 4, 5, 6, 7, 8].map((k) => {
        const column = delays.map((d) => d[k])
        const m = mean(column)
        return Math.sqrt(mean(column.map((v) => (v - m) ** 2)))
      }))
      t.diagnostic(`${label}: max ${Math.max(...all).toFixed(0)} ms, 90th percentile ${p90.toFixed(0)} ms, mean of the first two ${early.toFixed(0)} ms, ` +
        `from the fourth ${late.toFixed(0)} ms, spread between clients ${spread.toFixed(0)} ms`)
      assert.ok(spread > 80, `${label}: the clients' delays differ (standard deviation ${spread.toFixed(0)} ms)`)
    })
  } finally {
    await server.close()
  }
})

test('a 503 with Retry-After holds the next attempt back at least that long', async () => {
  const server = await startServer((req, res) => res.writeHead(503, { 'retry-after': '1' }).end())
  try {
    await inEachTransport(server, async (env, transport, name) => {
      const key = `${name}-${transport}`
      const first = server.requests.length
      await env.run(openClient, { url: `${server.url}/busy`, key, options: { transport, retryMs: 20 } })
      const gets = () => server.requests.slice(first).filter((r) => r.method === 'GET')
      await waitFor(() => gets().length >= 2, { what: `${key}: a second attempt`, timeoutMs: 10_000 })
      await env.run(closeClient, { key })
      const [a, b] = gets()
      assert.ok(b.at - a.at >= 1000, `${key}: retried after ${(b.at - a.at).toFixed(0)} ms`)
    })
  } finally {
    await server.close()
  }
})

test('HTTP 204 and a response that is not an event stream stop the client for good', async () => {
  const server = await startServer((req, res, url) => {
    if (url.pathname === '/gone') return res.writeHead(204).end()
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>not a stream</p>')
  })
  try {
    await inEachTransport(server, async (env, transport, name) => {
      for (const [pathname, status] of [['/gone', 204], ['/page', 200]]) {
        const key = `${name}-${transport}-${pathname}`
        const first = server.requests.length
        await env.run(openClient, { url: `${server.url}${pathname}`, key, options: { transport, retryMs: 20 } })
        await waitFor(async () => (await env.run(readClient, { key })).state === 'closed', { what: `${key}: the client to stop` })
        const record = await env.run(readClient, { key })
        assert.deepEqual(record.closes, [{ reason: 'status', status }], key)
        // Ten retry intervals later it has still asked once (EventSource: a GET and the HEAD that read the status).
        await sleep(200)
        const methods = server.requests.slice(first).map((r) => r.method)
        assert.deepEqual(methods, transport === 'eventsource' ? ['GET', 'HEAD'] : ['GET'], key)
      }
    })
  } finally {
    await server.close()
  }
})

test('offline and hidden pages pause the stream and resume it without loss', async () => {
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 20, history: { maxEvents: 100 } })
  const server = await startServer((req, res) => hub.attach(req, res))
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    await page.goto(`${server.url}/`)
    const run = (fn, arg) => page.evaluate(fn, { ...arg, moduleUrl: '/client/index.mjs' })
    for (const transport of ['eventsource', 'fetch']) {
      const key = `pause-${transport}`
      await run(openClient, { url: `${server.url}/events`, key, options: { transport, pauseWhenHidden: true }, listen: ['message'] })
      await waitFor(() => hub.size === 1, { what: `${key}: the stream` })
      hub.broadcast({ data: 1 })
      await waitFor(async () => (await run(readClient, { key })).events.length === 1, { what: `${key}: the first event` })

      // Offline (Chromium's network emulation fires 'offline'): the client drops the stream
      // and waits; what is published meanwhile comes back when the browser is online again.
      await context.setOffline(true)
      await waitFor(async () => (await run(readClient, { key })).state === 'paused', { what: `${key}: paused offline` })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to close while offline` })
      hub.broadcast({ data: 2 })
      await context.setOffline(false)
      await waitFor(async () => (await run(readClient, { key })).events.length === 2, { what: `${key}: the event missed offline` })

      // Hidden: headless pages are always visible, so the page's visibilityState is
      // overridden and the browser's visibilitychange event dispatched.
      const setHidden = (hidden) => run(({ hidden }) => {
        Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true })
        document.dispatchEvent(new Event('visibilitychange'))
      }, { hidden })
      await setHidden(true)
      await waitFor(async () => (await run(readClient, { key })).state === 'paused', { what: `${key}: paused while hidden` })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to close while hidden` })
      hub.broadcast({ data: 3 })
      await setHidden(false)
      await waitFor(async () => (await run(readClient, { key })).events.length === 3, { what: `${key}: the event missed while hidden` })
      const record = await run(readClient, { key })
      assert.deepEqual(record.events.map((e) => e.data), [1, 2, 3], key)
      assert.equal(record.state, 'open')
      assert.equal(record.opens, 3)
      await run(closeClient, { key })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    }
  } finally {
    await context.close()
    await hub.close()
    await server.close()
  }
})

test('bad options and handlers throw TypeErrors with codes, in the browser and in Node', async () => {
  const server = await startServer((req, res) => res.writeHead(204).end())
  try {
    await inEachEnvironment(server, async (env, name) => {
      const errors = await env.run(badCalls, { url: `${server.url}/events` })
      assert.deepEqual(errors.map((e) => e && `${e.name} ${e.code}`), [
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_UNKNOWN_OPTION',
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_INVALID_OPTION',
        'TypeError ERR_SSE_INVALID_ARGUMENT'
      ], name)
      assert.match(errors[0].message, /retryMs must be a non-negative number, got number/)
      assert.match(errors[2].message, /unknown option 'colour'/)
      assert.match(errors[3].message, /lastEventId must be a string without CR, LF or NUL/)
    })
  } finally {
    await server.close()
  }
})

test('under Node a relative URL throws at connect() and starts nothing; another scheme throws; absolute URLs stream', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const server = await startServer((req, res) => hub.attach(req, res))
  const moduleUrl = pathToFileURL(path.join(CLIENT_DIR, 'index.mjs')).href
  // A page rendered on the server: no document, no location. The process must end by itself:
  // a client left retrying (a timer, a request) would keep it alive.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { connect } from ${JSON.stringify(moduleUrl)}
    try {
      connect('/answers/1/events')
      console.log(JSON.stringify({ threw: false }))
    } catch (error) {
      console.log(JSON.stringify({ threw: true, name: error.name, code: error.code, message: error.message }))
    }
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit', 10_000)
  exited.catch(() => {})
  const clients = []
  try {
    const line = await once(readline.createInterface({ input: child.stdout }), 'line', 10_000)
    const { message, ...thrown } = JSON.parse(line)
    assert.deepEqual(thrown, { threw: true, name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.match(message, /^connect\(\): url "\/answers\/1\/events" is relative .*pass an absolute http\(s\) URL.*connect in an effect or after mount$/)
    assert.deepEqual(await exited, [0, null], 'the process ends by itself')

    const { connect } = await import(moduleUrl)
    const refused = [
      ['ws://127.0.0.1:1/events', /^connect\(\): url must be an http\(s\) URL, got "ws:\/\/127\.0\.0\.1:1\/events"$/],
      ['file:///tmp/events', /url must be an http\(s\) URL/],
      ['http://[', /url must be an http\(s\) URL, got "http:\/\/\["/],
      ['', /url "" is relative/]
    ]
    for (const [url, pattern] of refused) {
      assert.throws(() => connect(url).close(), (error) => error instanceof TypeError && error.code === 'ERR_SSE_INVALID_OPTION' && pattern.test(error.message), url)
    }
    assert.equal(server.requests.length, 0, 'no attempt was made')

    // Absolute URLs stream; where there is a location (a worker, a runtime given one), a
    // relative URL resolves against it.
    clients.push(connect(`${server.url}/absolute`), connect(new URL(`${server.url}/as-a-url`)))
    const had = Object.getOwnPropertyDescriptor(globalThis, 'location')
    Object.defineProperty(globalThis, 'location', { value: { href: `${server.url}/app/page` }, configurable: true, writable: true })
    try {
      clients.push(connect('events'))
    } finally {
      if (had) Object.defineProperty(globalThis, 'location', had)
      else delete globalThis.location
    }
    const received = []
    for (const client of clients) client.on('message', (data) => received.push(data))
    await waitFor(() => hub.size === 3, { what: 'three streams' })
    assert.deepEqual(server.requests.map((r) => r.url.pathname).sort(), ['/absolute', '/app/events', '/as-a-url'])
    hub.broadcast({ data: 'hello' })
    await waitFor(() => received.length === 3, { what: 'the event on each stream' })
    assert.deepEqual(received, ['hello', 'hello', 'hello'])
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill()
    for (const client of clients) client.close()
    await hub.close()
    await server.close()
  }
})

test('in the browser a relative URL resolves against the document base (<base href>), resumed ones too; another scheme throws', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 10 } })
  const server = await startServer((req, res) => hub.attach(req, res))
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(error))
  try {
    await page.goto(`${server.url}/`)
    const run = (fn, arg) => page.evaluate(fn, { ...arg, moduleUrl: '/client/index.mjs' })
    await run(() => document.head.append(Object.assign(document.createElement('base'), { href: '/sub/' })))
    for (const transport of ['eventsource', 'fetch']) {
      const key = `base-${transport}`
      const first = server.requests.length
      // An id to resume from: the EventSource transport carries it in the URL it builds.
      await run(openClient, { url: 'events', key, options: { transport, lastEventId: key }, listen: ['message'] })
      await waitFor(() => hub.size === 1, { what: `${key}: the stream` })
      hub.broadcast({ data: transport })
      await waitFor(async () => (await run(readClient, { key })).events.length === 1, { what: `${key}: the event` })
      const [request] = server.requests.slice(first)
      assert.equal(request.url.pathname, '/sub/events', key)
      assert.equal(request.url.searchParams.get('lastEventId') ?? request.headers['last-event-id'], key)
      await run(closeClient, { key })
      await waitFor(() => hub.size === 0, { what: `${key}: the stream to leave` })
    }
    const before = server.requests.length
    const thrown = await run(async ({ moduleUrl, url }) => {
      const { connect } = await import(moduleUrl)
      try {
        connect(url).close()
        return null
      } catch (error) {
        return { name: error.name, code: error.code, message: error.message }
      }
    }, { url: `ws://127.0.0.1:${server.port}/events` })
    assert.deepEqual(thrown, { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION', message: `connect(): url must be an http(s) URL, got "ws://127.0.0.1:${server.port}/events"` })
    assert.equal(server.requests.length, before)
    assert.deepEqual(errors, [], 'no uncaught error in the page')
  } finally {
    await page.close()
    await hub.close()
    await server.close()
  }
})

test('the page recipe of docs/CLIENT.md: the client\'s directory served by express.static, imported by a <script type="module">', async () => {
  const express = require('express')
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = express()
  app.use('/native-sse', express.static(path.dirname(require.resolve('native-sse/client'))))
  app.get('/events', (req, res) => hub.attach(req, res))
  app.get('/', (req, res) => res.type('html').send(`<!doctype html><meta charset="utf-8">
    <script type="module">
      import { connect } from '/native-sse/index.mjs'
      window.received = []
      connect('/events').on('message', (data) => window.received.push(data))
    </script>`))
  const server = await startHttp(app)
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(error))
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  try {
    await page.goto(`${server.url}/`)
    await waitFor(() => hub.size === 1 || errors.length > 0, { what: 'the page\'s stream' })
    assert.deepEqual(errors, [])
    hub.broadcast({ data: { served: true } })
    await waitFor(async () => (await page.evaluate(() => window.received.length)) === 1, { what: 'the event in the page' })
    assert.deepEqual(await page.evaluate(() => window.received), [{ served: true }])
  } finally {
    await page.close()
    await hub.close()
    await server.close()
  }
})

test('the bundled, minified client stays within its gzip budget', async (t) => {
  const { clientSize } = require('../bench/client-size')
  const { minified, gzip, brotli, inputs } = await clientSize()
  t.diagnostic(`native-sse/client: ${minified} B minified, ${gzip} B gzip, ${brotli} B brotli`)
  // Dependency-free: the bundle holds the client's own modules and nothing else.
  assert.deepEqual(inputs.map((file) => path.relative(path.join(__dirname, '..'), path.resolve(file))).sort(),
    ['lib/client/backoff.mjs', 'lib/client/index.mjs', 'lib/client/parse.mjs', 'lib/client/presence.mjs'])
  // 4 KiB until presence (members(), onPresence) took it to about 4.1 KiB; 4.25 KiB keeps the
  // headroom there was.
  assert.ok(gzip < 4352, `${gzip} B gzip: over the 4.25 KiB budget`)
})

test('the fetch transport parses like eventsource-parser, however the stream is chunked', async () => {
  const { createParser: referenceParser } = require('eventsource-parser')
  const { createParser } = await import(pathToFileURL(path.join(CLIENT_DIR, 'parse.mjs')).href)
  const stream = [
    'data: one\n\n', 'data:two\r\n\r\n', 'data: a\rdata: b\r\rid: 7\r\n', 'event: named\ndata\n\n',
    ': comment\nretry: 1500\nretry: 15x\n\n', 'id: with\0nul\ndata: keeps 7\n\n', 'id\ndata: clears\n\n',
    'field-without-colon\ndata:  two spaces\nunknown: x\n\n', 'data: ünïcödé ✓\n\n', 'data\ndata\n\n',
    'event: empty-id\nid:\ndata: x\n\n', 'data: never dispatched'
  ].join('')
  const expected = []
  const retries = []
  const reference = referenceParser({
    onEvent: (e) => expected.push({ event: e.event ?? 'message', data: e.data, id: e.id ?? null }),
    onRetry: (ms) => retries.push(ms)
  })
  reference.feed(stream)
  assert.equal(expected.length, 10)
  // eventsource-parser reports the id field of each event; the spec's last event ID carries
  // over to later events. Rebuild that from the reference output.
  let lastId = ''
  for (const e of expected) {
    if (e.id !== null) lastId = e.id
    e.id = lastId
  }
  const splits = [[...stream].map((_, i) => i + 1), [1, 5, 11, 12, 13, 40], []]
  for (let at = 1; at < stream.length; at += 3) splits.push([at])
  for (const cuts of splits) {
    const got = []
    const gotRetries = []
    const feed = createParser((event, data, id) => { if (data !== null) got.push({ event, data, id }) }, (ms) => gotRetries.push(ms))
    let from = 0
    for (const at of [...cuts, stream.length]) {
      feed(stream.slice(from, at))
      from = at
    }
    assert.deepEqual(got, expected, `cut at ${cuts.slice(0, 6).join(',')}`)
    assert.deepEqual(gotRetries, retries)
  }
})
