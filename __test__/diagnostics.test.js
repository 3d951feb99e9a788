'use strict'
// needs: redis-server

// node:diagnostics_channel: an observer that subscribes by name sees each kind of event with
// what it says (a publish and its recipients, a connect and how it resumed, a refusal, a
// revoke, a close and why, the Redis link going down and up), and sees nothing once it has
// unsubscribed.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const diagnostics = require('node:diagnostics_channel')
const { createHub } = require('..')
const { startHttp, rawClient, waitFor } = require('./helpers')
const { startRedis } = require('../test-support/redis')

const NAMES = ['publish', 'connect', 'refuse', 'close', 'revoke', 'backend']

function observe () {
  const seen = []
  const listeners = NAMES.map((name) => [`native-sse:${name}`, (message) => seen.push({ name, message })])
  for (const [channel, listener] of listeners) diagnostics.subscribe(channel, listener)
  return { seen, stop: () => { for (const [channel, listener] of listeners) diagnostics.unsubscribe(channel, listener) } }
}

test('each kind of event reaches a diagnostics_channel subscriber, with what it says; none after unsubscribing', async () => {
  const redis = await startRedis({ durable: false })
  const hub = createHub({ heartbeatMs: 60_000, history: true, maxClients: 1, redis: { url: redis.url, prefix: 'diag' } })
  hub.authorize('room:{id}', () => ({ expiresAt: Date.now() + 300 }))
  const observer = observe()
  const http = await startHttp((req, res) => { hub.attach(req, res, { channels: ['room:1'] }) })
  try {
    await hub.ready()
    await waitFor(() => observer.seen.some((s) => s.name === 'backend'), { what: 'the backend up' })
    const first = rawClient(http.port)
    await waitFor(() => observer.seen.some((s) => s.name === 'connect'), { what: 'the connect' })
    const refused = rawClient(http.port)
    await waitFor(() => observer.seen.some((s) => s.name === 'refuse'), { what: 'the refusal (maxClients 1)' })
    assert.equal(hub.publish('room:1', { data: 'x', id: 'e1' }), 1)
    await waitFor(() => observer.seen.some((s) => s.name === 'revoke'), { what: 'the expiry', timeoutMs: 5000 })
    first.end()
    await waitFor(() => observer.seen.some((s) => s.name === 'close'), { what: 'the close' })
    await redis.stop()
    await waitFor(() => observer.seen.filter((s) => s.name === 'backend').length === 2, { what: 'the backend down', timeoutMs: 15_000 })

    const of = (name) => observer.seen.filter((s) => s.name === name).map((s) => s.message)
    assert.equal(of('backend')[0].state, 'up')
    assert.equal(of('backend')[1].state, 'down')
    assert.equal(of('connect')[0].hub, hub)
    assert.deepEqual(of('connect')[0].channels, ['room:1'])
    assert.equal(of('connect')[0].transport, 'native')
    assert.equal(of('connect')[0].resume, 'none')
    assert.deepEqual(of('refuse').map((m) => m.reason), ['hub-full'])
    assert.deepEqual(of('publish').map((m) => [m.channel, m.recipients, m.message.id]), [['room:1', 1, 'e1']])
    assert.deepEqual(of('revoke').map((m) => [m.channel, m.reason]), [['room:1', 'expired']])
    assert.deepEqual(of('close').map((m) => [m.reason, m.client.id === of('connect')[0].client.id]), [['client', true]])
    refused.end()

    observer.stop()
    const before = observer.seen.length
    hub.broadcast({ data: 'unobserved' })
    assert.equal(observer.seen.length, before)
  } finally {
    observer.stop()
    await hub.close()
    await http.close()
    await redis.close()
  }
})
