'use strict'
// needs: nothing

// Authorization rules under attack: what a hostile client may send as a channel name (encoded,
// folded, look-alike, NUL and control characters, too long, prefixes) and what a careless app
// may answer from a check (thenables that never settle, non-Errors thrown, params mutated, odd
// grants); requests in bulk (1,000 held attaches decided in a random order), checks that end
// after their client left, subscribe() racing its own attach and unsubscribe(), expiry and
// revoking in bulk, HEAD and Fetch. Each test states the behaviour docs/AUTHORIZATION.md gives.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { serve } = require('@hono/node-server')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { HOST, startHttp, rawClient, waitFor, ended } = require('./helpers')

/**
 * A node:http server attaching the channels of `?ch=` (repeatable), with the `x-user` header as
 * attach's `user` when given; `clients` keeps what attach returned, in arrival order.
 */
async function channelServer (hub, { onClient = () => {} } = {}) {
  const clients = []
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    const user = req.headers['x-user']
    const client = hub.attach(req, res, { channels: url.searchParams.getAll('ch'), ...(user ? { user } : {}) })
    clients.push(client)
    onClient(client, req)
  })
  return { ...http, clients }
}

const route = (...channels) => '/?' + channels.map((ch) => `ch=${encodeURIComponent(ch)}`).join('&')

/**
 * The answer to a GET (or `method`) of `channels` on `server`, an openStream stream (status,
 * headers, body): a refusal or a HEAD read to its end, a stream closed once its head came.
 */
async function statusOf (server, channels, { method = 'GET', headers = {} } = {}) {
  const stream = await openStream(server, { path: route(...channels), method, headers })
  if (stream.status === 200 && method !== 'HEAD') await stream.close()
  else assert.equal(await ended(stream), 'end', `the answer to ${method} ${JSON.stringify(channels)} ended whole`)
  return stream
}

/** How many timers (setTimeout/setInterval) are alive in this process. */
const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/** A seeded shuffle (mulberry32), so that a failing order can be run again. */
function shuffled (items, seed) {
  let a = seed >>> 0
  const random = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

test('names compared as given: encoded, case, full-width, NFC/NFD, NUL, control, spaces and separators at the ends are other channels, denied under requireAuthorization and never folded into the guarded one', async () => {
  const asked = []
  const rule = ({ channel, params, request }) => {
    asked.push(channel)
    return params.id === (request?.headers['x-user'] ?? 'nobody')
  }
  const strict = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
  strict.authorize('user:{id}', rule)
  const open = createHub({ heartbeatMs: 60_000 })
  open.authorize('user:{id}', rule)
  const strictHttp = await channelServer(strict)
  const openHttp = await channelServer(open)
  const lookalikes = [
    'user%3A1', 'user%3a1', 'User:1', 'USER:1', 'ｕｓｅｒ:1', // full-width letters
    'user\uFF1A1', // full-width colon, which NFKC folds to ':'
    'user\uFE131', // presentation form of ':'
    'user\u22361', // ratio sign
    'user\u02D01', // modifier letter triangular colon
    'user\u2215' + '1', // division slash, for '/'
    'use\u0301r:1', // a combining accent: neither NFC nor NFD makes it 'user'
    ' user:1', '\tuser:1', '\u200Buser:1', 'user\u200B:1', '\uFEFFuser:1',
    ':user:1', 'user:1:', '/user:1', 'user:1/', 'user::1', 'user:/1'
  ]
  try {
    // Under requireAuthorization each is a channel no rule matches: 403 without asking.
    for (const channel of lookalikes) {
      const { status } = await statusOf(strictHttp.server, [channel], { headers: { 'x-user': '1' } })
      assert.equal(status, 403, JSON.stringify(channel))
    }
    assert.deepEqual(asked, [], 'no look-alike reached the user:{id} rule')

    // Names the pattern does match reach the check with the parameter exactly as sent: a
    // check comparing it to who the client is denies each.
    const matching = ['user:1\u0000', 'user:\u00001', 'user:\uFF11', 'user:1\u0301', 'user:01', 'user:1 ', 'user:1\n', 'user:1\r', 'user: 1', 'user:%31', 'user:1\u001b[2J']
    for (const channel of matching) {
      const { status } = await statusOf(strictHttp.server, [channel], { headers: { 'x-user': '1' } })
      assert.equal(status, 403, JSON.stringify(channel))
    }
    assert.deepEqual(asked, matching)
    assert.equal((await statusOf(strictHttp.server, ['user:1'], { headers: { 'x-user': '1' } })).status, 200)
    // NFC and NFD spellings of one name are two names: a rule for one is not the other's.
    strict.authorize('caf\u00e9:{id}', () => true)
    assert.equal((await statusOf(strictHttp.server, ['caf\u00e9:1'])).status, 200)
    assert.equal((await statusOf(strictHttp.server, ['cafe\u0301:1'])).status, 403)

    // Without requireAuthorization a look-alike is open, and a channel of its own: what is
    // published to user:1 never reaches it, and what is published to it never reaches user:1.
    const owner = await openStream(openHttp.server, { path: route('user:1'), headers: { 'x-user': '1' } })
    const thief = await openStream(openHttp.server, { path: route(...lookalikes) })
    assert.equal(owner.status, 200)
    assert.equal(thief.status, 200, 'look-alikes are open channels, per the docs')
    assert.equal(open.publish('user:1', { data: 'secret' }), 1, 'only the owner is subscribed to user:1')
    for (const channel of lookalikes) assert.equal(open.publish(channel, { data: 'decoy' }), 1, JSON.stringify(channel))
    open.broadcast({ event: 'end', data: '' })
    await owner.waitFor('end')
    await thief.waitFor('end')
    assert.deepEqual(owner.events.map((e) => e.data), ['secret', ''])
    assert.equal(thief.events.length, lookalikes.length + 1)
    assert.ok(thief.events.slice(0, -1).every((e) => e.data === 'decoy'))
    await owner.close()
    await thief.close()
  } finally {
    await strict.close()
    await open.close()
    await strictHttp.close()
    await openHttp.close()
  }
})

test('names at the limits: 256 characters checked, 257 and lone surrogates refused before any rule is asked; a prefix or an extension of a guarded name is another shape', async () => {
  const hub = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
  const asked = []
  hub.authorize('user:{id}', ({ channel }) => { asked.push(channel.length); return true })
  hub.authorize('user:{id}/{tab}', () => false)
  let client
  const raw = await openStream((req, res) => { client = hub.attach(req, res) })
  try {
    assert.equal(raw.status, 200)
    const longest = 'user:' + 'x'.repeat(251)
    assert.equal(longest.length, 256)
    assert.equal(client.subscribe(longest), true)
    assert.deepEqual(asked, [256])
    assert.throws(() => client.subscribe(longest + 'x'), (error) => error.code === 'ERR_SSE_INVALID_CHANNEL')
    assert.throws(() => client.subscribe('user:\uD800'), (error) => error.code === 'ERR_SSE_INVALID_CHANNEL')
    assert.throws(() => client.subscribe('user:1\uDC00x'), (error) => error.code === 'ERR_SSE_INVALID_CHANNEL')
    assert.throws(() => hub.authorize('p:' + 'x'.repeat(255), () => true), (error) => error.code === 'ERR_SSE_INVALID_OPTION')
    assert.throws(() => hub.authorize('p:{\uD800}', () => true), (error) => error.code === 'ERR_SSE_INVALID_OPTION')
    assert.deepEqual(asked, [256], 'no rule asked for a name that cannot be a channel')
    // 'user' (a prefix), 'user:1/' (a trailing separator) and 'user:1/2/3' (more segments)
    // match neither pattern; 'user:1/2' is the more specific rule's and denied.
    for (const channel of ['user', 'users:1', 'use:1', 'user:1/', 'user:1/2/3', 'user:1:2']) {
      assert.throws(() => client.subscribe(channel), (error) => error.code === 'ERR_SSE_FORBIDDEN', channel)
    }
    assert.throws(() => client.subscribe('user:1/2'), (error) => error.code === 'ERR_SSE_FORBIDDEN')
    assert.deepEqual(asked, [256])
  } finally {
    await raw.close()
    await hub.close()
  }
})

test('overlapping patterns: {a}:x and x:{b} both match x:x, and x:{b} decides (a literal first from the left) whichever was given first', async () => {
  for (const order of [['{a}:x', 'x:{b}'], ['x:{b}', '{a}:x']]) {
    const hub = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
    const decided = []
    for (const pattern of order) {
      hub.authorize(pattern, ({ channel, params }) => { decided.push([pattern, channel, params]); return pattern === 'x:{b}' })
    }
    hub.authorize('{a}:{b}', ({ channel }) => { decided.push(['{a}:{b}', channel]); return false })
    let client
    const raw = await openStream((req, res) => { client = hub.attach(req, res) })
    try {
      assert.equal(raw.status, 200)
      assert.equal(client.subscribe('x:x'), true, order.join(' then '))
      assert.throws(() => client.subscribe('y:x'), (error) => error.code === 'ERR_SSE_FORBIDDEN')
      assert.equal(client.subscribe('x:y'), true)
      assert.throws(() => client.subscribe('y:y'), (error) => error.code === 'ERR_SSE_FORBIDDEN')
      assert.deepEqual(decided, [
        ['x:{b}', 'x:x', { b: 'x' }],
        ['{a}:x', 'y:x', { a: 'y' }],
        ['x:{b}', 'x:y', { b: 'y' }],
        ['{a}:{b}', 'y:y']
      ])
    } finally {
      await raw.close()
      await hub.close()
    }
  }
})

test('requireAuthorization with no rule at all: every channel is denied (attach 403, HEAD 403, subscribe() throws); an attach without channels is let in', async () => {
  const hub = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
  const http = await channelServer(hub)
  try {
    assert.equal((await statusOf(http.server, ['news'])).status, 403)
    assert.equal((await statusOf(http.server, ['news'], { method: 'HEAD' })).status, 403)
    const bare = await openStream(http.server, { path: '/' })
    assert.equal(bare.status, 200, 'the stream without channels')
    const client = http.clients.at(-1)
    assert.throws(() => client.subscribe('news'), (error) => error.code === 'ERR_SSE_FORBIDDEN')
    assert.equal(hub.publish('news', { data: 'x' }), 0)
    assert.equal(hub.metrics().refused.forbidden, 1, 'the HEAD is not counted')
    await bare.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('1,000 attaches held at once, decided in a random order: each client gets its own channels and no one else\'s, impostors get 403, identities are their own', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const pending = []
  hub.authorize('user:{id}', ({ params, request, client }) => new Promise((resolve) => {
    pending.push({ resolve, answer: request.headers['x-claims'] === params.id ? { user: `u${params.id}` } : false, client })
  }))
  const http = await channelServer(hub)
  const COUNT = 1000
  // Every tenth client claims to be the next one.
  const impostor = (i) => i % 10 === 9
  const clients = []
  try {
    for (let i = 0; i < COUNT; i++) {
      const claims = impostor(i) ? String(i + 1) : String(i)
      clients.push(rawClient(http.port, { path: route(`user:${i}`, 'everyone'), headers: { 'x-claims': claims } }))
    }
    await waitFor(() => pending.length === COUNT, { what: () => `${COUNT} checks asked (${pending.length})`, timeoutMs: 30_000 })
    assert.equal(hub.metrics().connections.pending, COUNT)
    // A publish while every one of them is held waits for each one let in.
    hub.publish('everyone', { data: 'while held' })
    const order = shuffled(pending, 35)
    for (let at = 0; at < order.length; at += 37) {
      for (const { resolve, answer } of order.slice(at, at + 37)) resolve(answer)
      await nextTurn()
    }
    const allowed = clients.filter((_, i) => !impostor(i))
    await waitFor(() => clients.every((c) => c.head !== null) && allowed.every((c) => c.comments.length === 1),
      { what: 'every answer', timeoutMs: 30_000 })
    clients.forEach((c, i) => assert.match(c.head, impostor(i) ? /^HTTP\/1\.1 403 / : /^HTTP\/1\.1 200 /, `client ${i}`))
    assert.equal(hub.size, allowed.length)
    assert.equal(hub.metrics().refused.forbidden, COUNT - allowed.length)
    for (let i = 0; i < COUNT; i++) assert.equal(hub.publish(`user:${i}`, { data: `for ${i}` }), impostor(i) ? 0 : 1)
    hub.publish('everyone', { data: 'after' })
    await waitFor(() => allowed.every((c) => c.events.length === 3), { what: 'three events each', timeoutMs: 30_000 })
    clients.forEach((c, i) => {
      if (impostor(i)) assert.deepEqual(c.events, [])
      else assert.deepEqual(c.events.map((e) => e.data).sort(), ['after', `for ${i}`, 'while held'].sort(), `client ${i}`)
    })
    // The identity each grant gave is its own client's.
    for (const { client, answer } of pending) {
      if (answer) assert.equal(client.user, answer.user)
      else assert.equal(client.refusal, 'forbidden')
    }
  } finally {
    for (const c of clients) c.end()
    await hub.close()
    await http.close()
  }
})

test('checks that answer after their client left: nothing leaks (hub.size 0, no connection counted, no timer left) and the departure is a client close', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const pending = []
  hub.authorize('doc:{id}', () => new Promise((resolve) => pending.push(resolve)))
  const departures = []
  hub.on('disconnect', (info) => departures.push(info.reason))
  const sockets = new Set()
  const http = await channelServer(hub)
  http.server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
  const before = timers()
  try {
    const COUNT = 50
    const clients = Array.from({ length: COUNT }, (_, i) => rawClient(http.port, { path: route(`doc:${i}`) }))
    await waitFor(() => pending.length === COUNT, { what: 'the checks' })
    assert.equal(hub.size, COUNT)
    // Half leave with a FIN, half with a reset; the server sees every socket close.
    clients.forEach((c, i) => (i % 2 ? c.end() : c.reset()))
    await waitFor(() => sockets.size === 0, { what: 'the server to see every socket close' })
    // They are allowed with grants that expire: no grant's timer may outlive its client.
    for (const resolve of pending) resolve({ expiresAt: Date.now() + 60_000, user: 'ann' })
    // hub.size is the registry's at once; each 'disconnect' comes from Rust's side a moment later.
    await waitFor(() => hub.size === 0 && departures.length === COUNT, { what: () => `hub.size 0 (${hub.size}) and ${COUNT} departures (${departures.length})` })
    const { connections } = hub.metrics()
    assert.deepEqual(connections, { native: 0, node: 0, fetch: 0, pending: 0 })
    assert.ok(departures.every((reason) => reason === 'client'), departures.join())
    assert.equal(hub.revoke({ user: 'ann' }), 0, 'no grant kept for a client that left')
    await waitFor(() => timers() <= before, { what: () => `the timers to end (${timers()} alive, ${before} before)` })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a thenable that never settles fails within authorizeTimeoutMs (503), and leaves no timer', async () => {
  const hub = createHub({ heartbeatMs: 60_000, authorizeTimeoutMs: 150 })
  hub.authorize('stuck:{x}', () => ({ then () {} }))
  const refusals = []
  hub.on('refuse', (info) => refusals.push(info))
  const http = await channelServer(hub)
  const before = timers()
  try {
    const started = Date.now()
    const { status, headers } = await statusOf(http.server, ['stuck:1'])
    const took = Date.now() - started
    assert.equal(status, 503)
    assert.equal(headers['retry-after'], '5')
    assert.ok(took >= 140 && took < 2000, `answered after ${took} ms`)
    assert.match(refusals[0].error.message, /did not answer within 150 ms/)
    assert.equal(hub.size, 0)
    await waitFor(() => timers() <= before, { what: 'the timeout timer to end' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a check that throws or rejects with something that is not an Error fails closed (503), and the refusal carries it as its cause', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const thrown = { string: 'nope', null: null, number: 42, object: { why: 'quota' } }
  hub.authorize('sync:{kind}', ({ params }) => { throw thrown[params.kind] })
  hub.authorize('async:{kind}', ({ params }) => Promise.reject(thrown[params.kind]))
  hub.authorize('never:{x}', () => Promise.reject()) // eslint-disable-line prefer-promise-reject-errors
  const refusals = []
  hub.on('refuse', (info) => refusals.push(info))
  const http = await channelServer(hub)
  try {
    for (const kind of Object.keys(thrown)) {
      for (const where of ['sync', 'async']) {
        assert.equal((await statusOf(http.server, [`${where}:${kind}`])).status, 503, `${where}:${kind}`)
        const { error } = refusals.at(-1)
        assert.equal(error.code, 'ERR_SSE_AUTHORIZATION_FAILED')
        assert.equal(error.cause, thrown[kind], `${where}:${kind}`)
      }
    }
    assert.equal((await statusOf(http.server, ['never:1'])).status, 503)
    assert.equal(hub.metrics().refused.authorizationFailed, 9)
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a check that mutates what it is given changes nothing: the channel subscribed is the one asked, and the next check gets its own params', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const seen = []
  hub.authorize('room:{id}', (context) => {
    seen.push({ ...context.params })
    context.params.id = 'hijacked'
    context.params.extra = 'x'
    context.channel = 'room:hijacked'
    return true
  })
  const http = await channelServer(hub)
  try {
    const a = await openStream(http.server, { path: route('room:1') })
    const b = await openStream(http.server, { path: route('room:2') })
    assert.deepEqual(seen.sort((x, y) => x.id.localeCompare(y.id)), [{ id: '1' }, { id: '2' }])
    assert.equal(hub.publish('room:hijacked', { data: 'x' }), 0)
    assert.equal(hub.publish('room:1', { data: 'one' }), 1)
    assert.equal(hub.publish('room:2', { data: 'two' }), 1)
    assert.equal((await a.next()).data, 'one')
    assert.equal((await b.next()).data, 'two')
    assert.equal(a.events.length, 1)
    await a.close()
    await b.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('odd grants: an expiry already past denies (403), NaN or Infinity fails (503), user \'\' or a number fails (503), an invalid Date fails (503)', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const answers = {
    past: () => ({ expiresAt: Date.now() - 1 }),
    pastDate: () => ({ expiresAt: new Date(Date.now() - 1000) }),
    nan: () => ({ expiresAt: NaN }),
    infinity: () => ({ expiresAt: Infinity }),
    invalidDate: () => ({ expiresAt: new Date('not a date') }),
    text: () => ({ expiresAt: '2999-01-01' }),
    emptyUser: () => ({ user: '' }),
    numberUser: () => ({ allow: true, user: 1 }),
    array: () => [true],
    number: () => 1,
    string: () => 'true'
  }
  hub.authorize('g:{kind}', ({ params }) => answers[params.kind]())
  const http = await channelServer(hub)
  hub.on('refuse', () => {})
  const expected = { past: 403, pastDate: 403, nan: 503, infinity: 503, invalidDate: 503, text: 503, emptyUser: 503, numberUser: 503, array: 503, number: 503, string: 503 }
  try {
    for (const kind of Object.keys(answers)) {
      assert.equal((await statusOf(http.server, [`g:${kind}`])).status, expected[kind], kind)
    }
    assert.equal(hub.size, 0)
    assert.equal(hub.metrics().connectionsOpened, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('subscribe() while the attach is held: allowed at once or async, what is published to it meanwhile arrives once the client is let in', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let letIn
  hub.authorize('room:{id}', () => new Promise((resolve) => { letIn = resolve }))
  hub.authorize('side:{id}', async () => true)
  hub.authorize('now:{id}', () => true)
  const results = []
  const http = await channelServer(hub, {
    onClient: (client) => {
      results.push(client.subscribe('now:1'))
      results.push(client.subscribe('side:1'))
    }
  })
  try {
    // openStream resolves once the head came: it must not while the attach is held.
    let headCame = false
    const opening = openStream(http.server, { path: route('room:1') }).then((stream) => { headCame = true; return stream })
    await waitFor(() => letIn !== undefined && results.length === 2, { what: 'the held attach' })
    assert.equal(results[0], true)
    assert.equal(await results[1], true, 'an async subscribe of a held client resolves')
    assert.equal(hub.publish('side:1', { data: 'meanwhile' }), 1)
    assert.equal(hub.publish('now:1', { data: 'meanwhile too' }), 1)
    assert.equal(headCame, false, 'nothing written while held')
    letIn(true)
    const raw = await opening
    assert.deepEqual([(await raw.next()).data, (await raw.next()).data].sort(), ['meanwhile', 'meanwhile too'])
    assert.equal(hub.revoke({ channel: 'side:1' }), 1)
    await raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('subscribe() twice to one channel at once (async rule): one true, one false, one grant, one copy of each event', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let asked = 0
  hub.authorize('vip:{id}', async () => { asked++; return { expiresAt: Date.now() + 60_000 } })
  const http = await channelServer(hub)
  const before = timers()
  try {
    const raw = await openStream(http.server, { path: '/' })
    const client = http.clients[0]
    const both = await Promise.all([client.subscribe('vip:1'), client.subscribe('vip:1')])
    assert.deepEqual(both.sort(), [false, true])
    assert.equal(asked, 2)
    assert.equal(hub.publish('vip:1', { data: 'once' }), 1)
    assert.equal((await raw.next()).data, 'once')
    assert.equal(hub.revoke({ channel: 'vip:1' }), 1, 'one grant')
    assert.equal((await raw.next()).event, 'sse-revoked')
    assert.equal(raw.events.length, 2, 'one copy of each')
    await raw.close()
    await waitFor(() => hub.size === 0 && timers() <= before, { what: 'the client and its timers to go' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('subscribe() after the client left returns false and asks nothing; a check pending when it leaves keeps nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let asked = 0
  let answer
  hub.authorize('vip:{id}', () => { asked++; return new Promise((resolve) => { answer = resolve }) })
  const http = await channelServer(hub)
  const before = timers()
  try {
    const raw = await openStream(http.server, { path: '/' })
    const client = http.clients[0]
    const pending = client.subscribe('vip:1')
    await raw.close()
    await waitFor(() => client.closed, { what: 'the client to leave' })
    answer({ expiresAt: Date.now() + 60_000, user: 'ann' })
    assert.equal(await pending, false)
    assert.equal(client.subscribe('vip:2'), false)
    assert.equal(asked, 1)
    assert.equal(hub.revoke({ user: 'ann' }), 0)
    await waitFor(() => timers() <= before, { what: 'no timer left' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('revoke while a renewal check is in flight: revoked once, the late renewal does not bring the grant back, no timer left', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const renewals = new Map()
  hub.authorize('live:{id}', (context) => context.renewal
    ? new Promise((resolve) => renewals.set(context.channel, resolve))
    : { expiresAt: Date.now() + 400 }, { renew: true })
  const http = await channelServer(hub)
  const before = timers()
  try {
    const raw = await openStream(http.server, { path: route('live:1', 'live:2') })
    // Renewals are asked 100 ms before the expiry (a quarter of a 400 ms life).
    await waitFor(() => renewals.size === 2, { what: 'both renewals to be asked' })
    assert.equal(hub.revoke({ channel: 'live:1' }), 1)
    renewals.get('live:1')({ expiresAt: Date.now() + 60_000 })
    // live:2's renewal was in flight too; it renews, and live:2 stays.
    renewals.get('live:2')({ expiresAt: Date.now() + 60_000 })
    await raw.waitFor('sse-revoked')
    assert.deepEqual(raw.events.map((e) => JSON.parse(e.data)), [{ channel: 'live:1', reason: 'revoked' }])
    assert.equal(hub.publish('live:1', { data: 'x' }), 0, 'the late renewal did not bring it back')
    assert.equal(hub.publish('live:2', { data: 'still' }), 1)
    assert.equal(hub.revoke({ channel: 'live:1' }), 0)
    assert.equal((await raw.next()).data, 'still')
    await raw.close()
    await waitFor(() => hub.size === 0 && timers() <= before, { what: 'no timer left' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a grant expiring on a channel the client already unsubscribed sends nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let expiresAt
  hub.authorize('doc:{id}', () => ({ expiresAt }))
  const http = await channelServer(hub)
  try {
    expiresAt = Date.now() + 300
    const raw = await openStream(http.server, { path: route('doc:1', 'doc:2') })
    assert.equal(http.clients[0].unsubscribe('doc:1'), true)
    // doc:2 expires at the same moment: once its event is in, doc:1's would have been too.
    await raw.waitFor('sse-revoked', { timeoutMs: 5000 })
    assert.deepEqual(raw.events.map((e) => JSON.parse(e.data)), [{ channel: 'doc:2', reason: 'expired' }])
    assert.equal(hub.publish('doc:1', { data: 'x' }), 0)
    await raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('10,000 grants expiring in the same millisecond (2,000 clients x 5 channels): each ends, once, within a second of its time', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  let expiresAt = 0
  hub.authorize('doc:{id}', () => ({ expiresAt }))
  const http = await channelServer(hub, { onClient: (client, req) => { client.tag = req.headers['x-tag'] } })
  const CLIENTS = 2000
  const PER_CLIENT = 5
  const clients = []
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push(rawClient(http.port, { path: '/', headers: { 'x-tag': String(i) } }))
    await waitFor(() => http.clients.length === CLIENTS && clients.every((c) => c.comments.length === 1), { what: 'every stream', timeoutMs: 60_000 })
    expiresAt = Date.now() + 500
    for (const client of http.clients) {
      for (let k = 0; k < PER_CLIENT; k++) assert.equal(client.subscribe(`doc:${client.tag}x${k}`), true)
    }
    assert.ok(Date.now() < expiresAt, 'every grant was given before its expiry')
    const ended = new Array(CLIENTS).fill(null)
    await waitFor(() => {
      const now = Date.now()
      clients.forEach((c, i) => { if (ended[i] === null && c.events.length === PER_CLIENT) ended[i] = now })
      return ended.every((at) => at !== null)
    }, { what: () => `every client's ${PER_CLIENT} revoked events (${ended.filter((at) => at !== null).length} of ${CLIENTS})`, timeoutMs: 30_000, intervalMs: 20 })
    const late = Math.max(...ended) - expiresAt
    assert.ok(late < 1000, `the last grant ended ${late} ms after its expiry`)
    clients.forEach((c, i) => {
      const channels = c.events.map((e) => JSON.parse(e.data)).filter((d) => d.reason === 'expired').map((d) => d.channel).sort()
      assert.deepEqual(channels, Array.from({ length: PER_CLIENT }, (_, k) => `doc:${i}x${k}`), `client ${i}`)
    })
    for (let i = 0; i < CLIENTS; i += 97) assert.equal(hub.publish(`doc:${i}x0`, { data: 'late' }), 0)
  } finally {
    for (const c of clients) c.end()
    await hub.close()
    await http.close()
  }
})

test('revoke({ user }) of a user with 1,000 connections ends each of them and no one else\'s, in one call', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.authorize('room:{id}', () => true)
  const http = await channelServer(hub)
  const anns = []
  const bobs = []
  try {
    for (let i = 0; i < 1000; i++) anns.push(rawClient(http.port, { path: route(`room:${i}`, 'lobby'), headers: { 'x-user': 'ann' } }))
    for (let i = 0; i < 10; i++) bobs.push(rawClient(http.port, { path: route(`room:${i}`), headers: { 'x-user': 'bob' } }))
    await waitFor(() => [...anns, ...bobs].every((c) => c.comments.length === 1), { what: 'every stream', timeoutMs: 30_000 })
    const started = performance.now()
    assert.equal(hub.revoke({ user: 'ann' }), 1000, 'lobby is no rule\'s: not a grant')
    const tookMs = performance.now() - started
    assert.ok(tookMs < 1000, `revoke took ${tookMs.toFixed(1)} ms`)
    assert.equal(hub.publish('lobby', { data: 'still here' }), 1000)
    for (let i = 0; i < 10; i++) assert.equal(hub.publish(`room:${i}`, { data: 'bob' }), 1)
    await waitFor(() => anns.every((c) => c.events.length === 2) && bobs.every((c) => c.events.length === 1), { what: 'the events', timeoutMs: 30_000 })
    anns.forEach((c, i) => assert.deepEqual(c.events.map((e) => e.data), [JSON.stringify({ channel: `room:${i}`, reason: 'revoked' }), 'still here']))
    assert.equal(hub.revoke({ user: 'ann' }), 0)
  } finally {
    for (const c of [...anns, ...bobs]) c.end()
    await hub.close()
    await http.close()
  }
})

test('HEAD on guarded channels: the head a GET would get (403, 503 or 200 with no body), sync or async, never a connection; the check gets client null', async () => {
  const hub = createHub({ heartbeatMs: 60_000, authorizeTimeoutMs: 200 })
  const clients = []
  hub.authorize('sync:{id}', ({ params, client }) => { clients.push(client); return params.id === 'ok' })
  hub.authorize('async:{id}', async ({ params, client }) => { clients.push(client); return params.id === 'ok' })
  hub.authorize('broken:{id}', async () => { throw new Error('down') })
  const http = await channelServer(hub)
  try {
    for (const kind of ['sync', 'async']) {
      const denied = await statusOf(http.server, [`${kind}:no`], { method: 'HEAD' })
      assert.equal(denied.status, 403, kind)
      const allowed = await statusOf(http.server, [`${kind}:ok`], { method: 'HEAD' })
      assert.equal(allowed.status, 200, kind)
      assert.match(allowed.headers['content-type'], /^text\/event-stream/)
      assert.equal(allowed.body, '', 'the HEAD answer ended with no body')
    }
    assert.equal((await statusOf(http.server, ['broken:1'], { method: 'HEAD' })).status, 503)
    assert.deepEqual(clients, [null, null, null, null])
    const metrics = hub.metrics()
    assert.equal(metrics.connectionsOpened, 0)
    assert.equal(metrics.refused.forbidden + metrics.refused.authorizationFailed, 0, 'a HEAD is not counted')
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Fetch response() with an async check: a Promise of the Response, 403 with its body on a denial, the stream on an allow, 503 on a failure; HEAD too', async () => {
  const hub = createHub({ heartbeatMs: 60_000, authorizeTimeoutMs: 200 })
  hub.authorize('user:{id}', async ({ params, request }) => request instanceof Request && request.headers.get('x-user') === params.id)
  hub.authorize('broken:{id}', async () => { throw new Error('down') })
  hub.on('refuse', () => {})
  const returned = []
  const server = await new Promise((resolve) => {
    const s = serve({
      fetch: (request) => {
        const answer = hub.response(request, { channels: new URL(request.url).searchParams.getAll('ch') })
        returned.push(answer instanceof Promise)
        return answer
      },
      port: 0,
      hostname: HOST
    }, () => resolve(s))
  })
  try {
    const denied = await statusOf(server, ['user:2'], { headers: { 'x-user': '1' } })
    assert.equal(denied.status, 403)
    assert.equal(denied.body, 'event stream forbidden\n')
    assert.doesNotMatch(denied.headers['content-type'], /text\/event-stream/)
    const failed = await statusOf(server, ['broken:1'])
    assert.equal(failed.status, 503)
    assert.equal(failed.headers['retry-after'], '5')
    assert.equal((await statusOf(server, ['user:2'], { method: 'HEAD', headers: { 'x-user': '1' } })).status, 403)
    const headOk = await statusOf(server, ['user:1'], { method: 'HEAD', headers: { 'x-user': '1' } })
    assert.equal(headOk.status, 200)
    assert.match(headOk.headers['content-type'], /^text\/event-stream/)

    const allowed = await openStream(server, { path: route('user:1'), headers: { 'x-user': '1' } })
    await waitFor(() => hub.size === 1, { what: 'the Fetch stream' })
    assert.equal(allowed.status, 200)
    assert.match(allowed.headers['content-type'], /^text\/event-stream/)
    assert.equal(hub.publish('user:1', { data: 'hi' }), 1)
    assert.equal((await allowed.next()).data, 'hi')
    assert.deepEqual(returned, [true, true, true, true, true], 'every answer of a hub with an async rule is a Promise of the Response')
    await allowed.close()
    await waitFor(() => hub.size === 0, { what: 'the Fetch client to leave' })
    const { refused } = hub.metrics()
    assert.equal(refused.forbidden, 1, 'the HEAD 403 is not counted')
    assert.equal(refused.authorizationFailed, 1)
  } finally {
    await hub.close()
    await new Promise((resolve) => { server.close(resolve); server.closeAllConnections?.() })
  }
})
