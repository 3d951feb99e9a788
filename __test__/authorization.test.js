'use strict'
// needs: nothing

// Who may listen: rules by channel pattern, checked once per subscription with the request as
// the framework gives it (node:http and Express `req`, Fastify's `request`, a Fetch `Request`),
// sync or async and bounded; a denial at attach is a 403 with nothing of the stream written, at
// subscribe() a stable error; grants that expire end the subscription on time and tell the
// client; revoking by user or channel; and the names people try to slip past a pattern.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { Hono } = require('hono')
const { serve } = require('@hono/node-server')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { HOST, startHttp, waitFor, ended } = require('./helpers')

/** A node:http server attaching `channel` from `?ch=` (repeatable) with the `x-user` header as its user. */
async function channelServer (hub, onClient = () => {}) {
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    const client = hub.attach(req, res, { channels: url.searchParams.getAll('ch') })
    onClient(client, req)
  })
  return http
}

const path = (...channels) => '/?' + channels.map((ch) => `ch=${encodeURIComponent(ch)}`).join('&')

/** GETs `route` from `server` and reads the whole answer: a refusal ends by itself, a stream
 *  (200) is closed once its head came. Resolves with the stream: status, headers, body. */
async function answerOf (server, route, headers = {}) {
  const stream = await openStream(server, { path: route, headers })
  if (stream.status === 200) await stream.close()
  else assert.equal(await ended(stream), 'end', `${route}: the answer ended whole`)
  return stream
}

test('a rule allows or denies at attach: a denial is a 403 with nothing of the stream, counted, and the check sees the request and parameters', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const seen = []
  hub.authorize('user:{id}', ({ channel, params, request, client, user, renewal }) => {
    seen.push({ channel, params, user, renewal, hasClient: client !== null, header: request.headers['x-user'] })
    return request.headers['x-user'] === params.id
  })
  const refusals = []
  hub.on('refuse', (info) => refusals.push(info))
  const http = await channelServer(hub)
  try {
    const denied = await answerOf(http.server, path('user:1'), { 'x-user': '2' })
    assert.equal(denied.status, 403)
    assert.doesNotMatch(denied.headers['content-type'], /text\/event-stream/)
    assert.equal(denied.body, 'event stream forbidden\n')
    assert.deepEqual(seen, [{ channel: 'user:1', params: { id: '1' }, user: null, renewal: false, hasClient: true, header: '2' }])
    assert.equal(refusals.length, 1)
    assert.equal(refusals[0].reason, 'forbidden')
    assert.equal(refusals[0].error.code, 'ERR_SSE_FORBIDDEN')

    const allowed = await openStream(http.server, { path: path('user:1', 'public'), headers: { 'x-user': '1' } })
    assert.equal(allowed.status, 200)
    assert.match(allowed.headers['content-type'], /^text\/event-stream/)
    assert.equal(hub.publish('user:1', { data: 'for 1' }), 1)
    assert.equal(hub.publish('public', { data: 'for all' }), 1, 'a channel no rule matches is open')
    assert.deepEqual([(await allowed.next()).data, (await allowed.next()).data], ['for 1', 'for all'])
    const metrics = hub.metrics()
    assert.equal(metrics.refused.forbidden, 1)
    assert.equal(metrics.connectionsOpened, 1, 'the denied request never counted as a connection')
    assert.equal(hub.size, 1)
    await allowed.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('async checks hold the client: nothing is written until they allow; a denial is still a 403; Express onConnect runs only once let in', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const gates = new Map()
  hub.authorize('room:{room}', ({ params }) => new Promise((resolve) => gates.set(params.room, resolve)))
  const connected = []
  const { sse } = require('../lib/express')
  const app = express()
  app.get('/events', sse(hub, {
    channels: (req) => [`room:${req.query.room}`],
    onConnect: (client) => { connected.push(client.id); client.send({ data: 'welcome' }) }
  }))
  let waiting = null
  try {
    // openStream resolves once the head came: it must not while the check decides.
    let headCame = false
    const opening = openStream(app, { path: '/events?room=a' }).then((stream) => { headCame = true; return stream })
    await waitFor(() => gates.has('a'), { what: 'the check to be asked' })
    // Published while the check runs: the held client gets it once let in (it was registered).
    hub.publish('room:a', { data: 'meanwhile' })
    assert.equal(headCame, false, 'nothing written while the check decides')
    assert.deepEqual(connected, [])
    gates.get('a')(true)
    waiting = await opening
    assert.deepEqual([(await waiting.next()).data, (await waiting.next()).data].sort(), ['meanwhile', 'welcome'])
    assert.equal(connected.length, 1)

    const denying = openStream(app, { path: '/events?room=b' })
    await waitFor(() => gates.has('b'), { what: 'the second check' })
    gates.get('b')({ allow: false })
    const denied = await denying
    assert.equal(denied.status, 403)
    assert.equal(await ended(denied), 'end')
    assert.equal(connected.length, 1, 'onConnect never ran for the denied client')
    assert.equal(hub.metrics().refused.forbidden, 1)
    assert.equal(hub.metrics().connectionsOpened, 1)
    assert.equal(hub.size, 1)
  } finally {
    await waiting?.close()
    await hub.close()
  }
})

test('a check that throws, or never settles, fails closed: 503 with Retry-After, counted, and reported with its error', async () => {
  const hub = createHub({ heartbeatMs: 60_000, authorizeTimeoutMs: 200 })
  hub.authorize('broken:{x}', () => { throw new Error('db down') })
  hub.authorize('stuck:{x}', () => new Promise(() => {}))
  hub.authorize('rejects:{x}', async () => { throw new Error('db down later') })
  const refusals = []
  hub.on('refuse', (info) => refusals.push(info))
  const http = await channelServer(hub)
  try {
    for (const channel of ['broken:1', 'stuck:1', 'rejects:1']) {
      const answer = await answerOf(http.server, path(channel))
      assert.equal(answer.status, 503, channel)
      assert.equal(answer.headers['retry-after'], '5')
    }
    assert.deepEqual(refusals.map((r) => [r.reason, r.error.code]), [
      ['authorization-failed', 'ERR_SSE_AUTHORIZATION_FAILED'],
      ['authorization-failed', 'ERR_SSE_AUTHORIZATION_FAILED'],
      ['authorization-failed', 'ERR_SSE_AUTHORIZATION_FAILED']
    ])
    assert.match(refusals[0].error.message, /db down/)
    assert.match(refusals[1].error.message, /did not answer within 200 ms/)
    assert.equal(hub.metrics().refused.authorizationFailed, 3)
    assert.equal(hub.size, 0)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('requireAuthorization denies every channel no rule matches; attach without channels is not checked', async () => {
  const hub = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
  hub.authorize('news', () => true)
  const http = await channelServer(hub)
  try {
    assert.equal((await answerOf(http.server, path('sports'))).status, 403)
    assert.equal((await answerOf(http.server, path('news', 'sports'))).status, 403, 'one denied channel denies the attach')
    const ok = await openStream(http.server, { path: path('news') })
    const bare = await openStream(http.server, { path: '/' })
    assert.deepEqual([ok.status, bare.status], [200, 200])
    assert.deepEqual([ok.comments, bare.comments], [[''], ['']], 'both streams opened')
    await ok.close()
    await bare.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('client.subscribe(): a sync denial throws ERR_SSE_FORBIDDEN, an async check returns a promise, the request can be shown to the check', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.authorize('team:{team}', ({ params, client, request }) => params.team === (request?.headers['x-team'] ?? client.user))
  hub.authorize('vip:{x}', async ({ client }) => client.user === 'ann')
  hub.authorize('staff:{x}', async () => false)
  let client
  const raw = await openStream((req, res) => { client = hub.attach(req, res, { user: 'ann' }) })
  try {
    assert.equal(client.user, 'ann')
    assert.throws(() => client.subscribe('team:bob'), (error) => error.code === 'ERR_SSE_FORBIDDEN' && /team:bob/.test(error.message))
    assert.equal(client.subscribe('team:ann'), true)
    assert.equal(client.subscribe('team:red', { request: { headers: { 'x-team': 'red' } } }), true)
    const pending = client.subscribe('vip:1')
    assert.equal(typeof pending.then, 'function', 'an async check: a promise')
    assert.equal(await pending, true)
    await assert.rejects(client.subscribe('staff:1'), (error) => error.code === 'ERR_SSE_FORBIDDEN')
    assert.equal(hub.publish('staff:1', { data: 'no' }), 0)
    assert.throws(() => client.subscribe('team:x', { bogus: 1 }), (error) => error.code === 'ERR_SSE_UNKNOWN_OPTION')
    assert.equal(hub.publish('team:bob', { data: 'no' }), 0)
    assert.equal(hub.publish('team:ann', { data: 'yes' }), 1)
    assert.equal((await raw.next()).data, 'yes')
  } finally {
    await raw.close()
    await hub.close()
  }
})

test('an expiring grant ends the subscription within 100 ms of its time and tells the client; renew: true extends it', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const expiresAt = new Map()
  hub.authorize('doc:{id}', ({ channel }) => {
    expiresAt.set(channel, Date.now() + 400)
    return { expiresAt: expiresAt.get(channel), user: 'ann' }
  })
  let renewals = 0
  hub.authorize('live:{id}', ({ renewal }) => {
    if (renewal) renewals++
    return { expiresAt: Date.now() + 600 }
  }, { renew: true })
  const http = await channelServer(hub)
  try {
    const raw = await openStream(http.server, { path: path('doc:1', 'live:1') })
    const revoked = await raw.waitFor('sse-revoked', { timeoutMs: 5000 })
    const late = Date.now() - expiresAt.get('doc:1')
    assert.ok(late >= -5 && late <= 100, `ended ${late} ms after its expiry`)
    assert.deepEqual(JSON.parse(revoked.data), { channel: 'doc:1', reason: 'expired' })
    assert.equal(hub.publish('doc:1', { data: 'after' }), 0, 'no longer subscribed')
    // live:1 renews 150 ms before each expiry: still subscribed after three lifetimes.
    await waitFor(() => renewals >= 3, { what: 'three renewals', timeoutMs: 5000 })
    assert.equal(hub.publish('live:1', { data: 'still here' }), 1)
    assert.equal(raw.events.filter((e) => e.event === 'sse-revoked').length, 1)
    await raw.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('hub.revoke() ends grants by user, by channel, or both, and tells each client; channels no rule granted stay', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.authorize('room:{room}', ({ request }) => ({ user: request.headers['x-user'] }))
  const http = await channelServer(hub)
  try {
    const ann = await openStream(http.server, { path: path('room:a', 'room:b', 'public'), headers: { 'x-user': 'ann' } })
    const bob = await openStream(http.server, { path: path('room:a'), headers: { 'x-user': 'bob' } })
    assert.equal(hub.revoke({ user: 'ann', channel: 'room:b' }), 1)
    assert.equal(hub.publish('room:b', { data: 'x' }), 0)
    assert.equal(hub.revoke({ channel: 'room:a' }), 2)
    assert.equal(hub.publish('room:a', { data: 'x' }), 0)
    assert.equal(hub.publish('public', { data: 'still' }), 1)
    await ann.waitFor((e) => e.data === 'still')
    assert.deepEqual(await bob.next(), { event: 'sse-revoked', data: '{"channel":"room:a","reason":"revoked"}', id: '' })
    assert.equal(bob.events.length, 1)
    assert.deepEqual(ann.events.map((e) => [e.event, e.data]), [
      ['sse-revoked', '{"channel":"room:b","reason":"revoked"}'],
      ['sse-revoked', '{"channel":"room:a","reason":"revoked"}'],
      ['message', 'still']
    ])
    assert.equal(hub.revoke({ user: 'nobody' }), 0)
    assert.throws(() => hub.revoke({}), (error) => error.code === 'ERR_SSE_INVALID_ARGUMENT')
    await ann.close()
    await bob.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('Fastify checks get its request; Hono (Fetch) gets the Request, and an async check makes response() a promise of the 403 or the stream', async () => {
  const fastify = Fastify()
  fastify.register(require('../lib/fastify'), { heartbeatMs: 60_000 })
  const kinds = []
  fastify.after(() => {
    fastify.sse.authorize('f:{x}', ({ request, params }) => {
      kinds.push(typeof request.raw === 'object' && typeof request.query === 'object')
      return request.query.key === params.x
    })
  })
  fastify.get('/events', (request, reply) => { reply.sse({ channels: [`f:${request.query.ch}`] }) })
  await fastify.listen({ port: 0, host: HOST })
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.authorize('h:{x}', async ({ request, params }) => request instanceof Request && new URL(request.url).searchParams.get('key') === params.x)
  const app = new Hono()
  app.get('/events', (c) => hub.response(c.req.raw, { channels: [`h:${c.req.query('ch')}`] }))
  const hono = await new Promise((resolve) => { const s = serve({ fetch: app.fetch, port: 0, hostname: HOST }, () => resolve(s)) })
  try {
    assert.equal((await answerOf(fastify.server, '/events?ch=1&key=2')).status, 403)
    const f = await openStream(fastify.server, { path: '/events?ch=1&key=1' })
    assert.equal(f.status, 200)
    assert.deepEqual(kinds, [true, true])

    const denied = await answerOf(hono, '/events?ch=1&key=2')
    assert.equal(denied.status, 403)
    assert.equal(denied.body, 'event stream forbidden\n')
    const h = await openStream(hono, { path: '/events?ch=1&key=1' })
    assert.equal(h.status, 200)
    assert.equal(hub.publish('h:1', { data: 'hono' }), 1)
    assert.equal((await h.next()).data, 'hono')
    await f.close()
    await h.close()
  } finally {
    await fastify.close()
    await hub.close()
    await new Promise((resolve) => hono.close(resolve))
  }
})

test('names that try to slip past a pattern: encoded, case variants, trailing separators, prefixes, separators in a parameter; the most specific rule wins', async () => {
  const hub = createHub({ heartbeatMs: 60_000, requireAuthorization: true })
  const asked = []
  hub.authorize('user:{id}', ({ channel, params }) => { asked.push(['user', channel, params]); return params.id === '1' })
  hub.authorize('user:admin', ({ channel }) => { asked.push(['admin', channel]); return false })
  hub.authorize('org:{org}/room:{room}', ({ params }) => params.org === 'acme')
  const http = await channelServer(hub)
  try {
    const status = async (channel) => (await answerOf(http.server, path(channel))).status
    assert.equal(await status('user:admin'), 403, 'the literal rule beats the parameter')
    assert.deepEqual(asked, [['admin', 'user:admin']])
    for (const channel of ['user%3A1', 'User:1', 'USER:1', 'user:1:', 'user:1/', 'user::1', 'user:', 'user', 'user:1:x',
      'users:1', 'use:1', 'user:1/room:2', 'org:acme/room:', 'org:acme/room:a/b', 'org:acme:room:a', ' user:1', 'user:1 ']) {
      assert.equal(await status(channel), 403, channel)
    }
    // A parameter never takes a separator: 'user:1:x' matched no rule at all.
    assert.ok(!asked.some(([, channel]) => channel === 'user:1:x'))
    assert.equal(await status('org:acme/room:a'), 200)
    assert.equal(await status('user:1'), 200)
    assert.throws(() => hub.authorize('user:{id}', () => true), (error) => error.code === 'ERR_SSE_INVALID_OPTION' && /already/.test(error.message))
    assert.throws(() => hub.authorize('user:{other}', () => true), (error) => error.code === 'ERR_SSE_INVALID_OPTION')
    for (const bad of ['', 'a:{id', 'a:x{id}', 'a::b', 'a:', 'a:{id}:{id}', 'a:{1x}']) {
      assert.throws(() => hub.authorize(bad, () => true), (error) => error.code === 'ERR_SSE_INVALID_OPTION', JSON.stringify(bad))
    }
    assert.throws(() => hub.authorize('ok:{x}', 'not a function'), (error) => error.code === 'ERR_SSE_INVALID_ARGUMENT')
    assert.throws(() => hub.authorize('ok:{x}', () => true, { renew: 'yes' }), (error) => error.code === 'ERR_SSE_INVALID_OPTION')
    assert.throws(() => hub.authorize('ok:{x}', () => true, { ttl: 1 }), (error) => error.code === 'ERR_SSE_UNKNOWN_OPTION')
  } finally {
    await hub.close()
    await http.close()
  }
})

test('a check that answers something else, grants that disagree on who the client is, and 2,000 subscriptions checked at once', async () => {
  const hub = createHub({ heartbeatMs: 60_000, maxChannelsPerClient: 5000 })
  hub.authorize('odd:{x}', () => 'yes')
  hub.authorize('as:{user}', ({ params }) => ({ user: params.user }))
  let checks = 0
  hub.authorize('many:{n}', async ({ params }) => { checks++; return Number(params.n) % 2 === 0 })
  const http = await channelServer(hub)
  try {
    assert.equal((await answerOf(http.server, path('odd:1'))).status, 503, 'a check answering a string is a failed check')
    assert.equal((await answerOf(http.server, path('as:ann', 'as:bob'))).status, 403, 'one client is one user')
    const even = Array.from({ length: 1000 }, (_, i) => `many:${2 * i}`)
    const many = await openStream(http.server, { path: path(...even), timeoutMs: 20_000 })
    assert.equal(many.status, 200, 'a stream with 1,000 checked channels')
    assert.equal(checks, 1000)
    assert.equal((await answerOf(http.server, path(...even.slice(0, 999), 'many:1'))).status, 403)
    assert.equal(checks, 2000)
    assert.equal(hub.publish('many:1998', { data: 'last' }), 1)
    assert.equal((await many.next()).data, 'last')
    await many.close()
  } finally {
    await hub.close()
    await http.close()
  }
})

test('identity is the client\'s, never a metric label: metricsText() names no user and no channel', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.authorize('secret-room:{id}', () => ({ user: 'user-4242' }))
  let client
  const raw = await openStream((req, res) => { client = hub.attach(req, res, { channels: ['secret-room:9'] }) })
  try {
    assert.equal(raw.status, 200)
    assert.equal(client.user, 'user-4242')
    const text = hub.metricsText()
    assert.doesNotMatch(text, /user-4242|secret-room/)
    assert.match(text, /reason="forbidden"/)
  } finally {
    await raw.close()
    await hub.close()
  }
})
