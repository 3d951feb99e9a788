'use strict'
// needs: redis-server

// A revoke in one process ends the grants in every process of the Redis namespace within 100 ms:
// three processes (this one and two children) linked through a real redis-server, clients on
// the children, the revoke here.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { fork } = require('node:child_process')
const { createHub } = require('..')
const { rawClient, waitFor } = require('./helpers')
const { startRedis } = require('../test-support/redis')

const FIXTURE = path.join(__dirname, 'fixtures', 'authorization-hub.js')
let redis

before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis?.close() })

async function startChild (options) {
  const child = fork(FIXTURE, [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  const port = Number((await waitFor(() => output.match(/listening (\d+)/), { what: 'the child to listen', timeoutMs: 15_000 }))[1])
  return { child, port, stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill() }) }
}

test('hub.revoke() by user and by channel reaches the clients of every process within 100 ms', async (t) => {
  const options = { url: redis.url, prefix: 'auth-revoke' }
  const hub = createHub({ heartbeatMs: 60_000, redis: options })
  await hub.ready()
  const children = [await startChild(options), await startChild(options)]
  const clients = []
  try {
    for (const { port } of children) {
      for (const user of ['ann', 'bob']) {
        const raw = rawClient(port, { path: '/?ch=room:a&ch=room:b', headers: { 'x-user': user } })
        raw.user = user
        raw.revokedAt = []
        raw.socket.on('data', () => { if (raw.events.length > raw.revokedAt.length) raw.revokedAt.push(performance.now()) })
        clients.push(raw)
      }
    }
    await waitFor(() => clients.every((c) => c.comments.length === 1), { what: 'four streams on two processes' })

    const byUser = performance.now()
    assert.equal(hub.revoke({ user: 'ann' }), 0, 'no grant of ann in this process')
    const ann = clients.filter((c) => c.user === 'ann')
    await waitFor(() => ann.every((c) => c.events.length === 2), { what: 'ann\'s two grants to end on both processes' })
    for (const c of ann) {
      assert.deepEqual(c.events.map((e) => JSON.parse(e.data)).sort((a, b) => a.channel.localeCompare(b.channel)),
        [{ channel: 'room:a', reason: 'revoked' }, { channel: 'room:b', reason: 'revoked' }])
      const late = c.revokedAt.at(-1) - byUser
      t.diagnostic(`${c.user}'s grants ended ${late.toFixed(1)} ms after hub.revoke() in another process`)
      assert.ok(late < 100, `revoked ${late.toFixed(1)} ms after hub.revoke() in another process`)
    }
    const bob = clients.filter((c) => c.user === 'bob')
    assert.ok(bob.every((c) => c.events.length === 0), 'bob keeps his grants')

    const byChannel = performance.now()
    hub.revoke({ channel: 'room:b' })
    await waitFor(() => bob.every((c) => c.events.length === 1), { what: 'bob\'s room:b grants to end' })
    for (const c of bob) {
      assert.deepEqual(JSON.parse(c.events[0].data), { channel: 'room:b', reason: 'revoked' })
      assert.ok(c.revokedAt[0] - byChannel < 100, `revoked ${(c.revokedAt[0] - byChannel).toFixed(1)} ms after`)
    }
    // Still attached, still subscribed to room:a: a publish from here reaches both of bob's.
    assert.equal(hub.publish('room:a', { data: 'still here' }), 0, 'no local subscriber')
    await waitFor(() => bob.every((c) => c.events.length === 2), { what: 'the publish through Redis' })
    assert.ok(ann.every((c) => c.events.length === 2), 'ann, revoked from room:a, got nothing more')
    // The two revokes went out as signals, and Prometheus sees them.
    assert.equal(hub.metrics().redis.signals.sent, 2)
    assert.match(hub.metricsText(), /^sse_redis_signals_sent_total 2$/m)
  } finally {
    for (const c of clients) c.end()
    for (const c of children) await c.stop()
    await hub.close()
  }
})
