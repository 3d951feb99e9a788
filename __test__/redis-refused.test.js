'use strict'
// needs: redis-server

// Redis refusing a publish (a command of the publish script fails): an ACL user that may not
// run XADD or PUBLISH, a channel's stream key or the lasts hash holding a string. Such a
// publish must change nothing in Redis, stay in the publishing hub's buffer (never counted as
// sent) ahead of what was published after it, keep the backend reported down for as long as
// Redis refuses, and go through once, in order, when the cause is removed. Two hubs on one
// real redis-server (Debian's), real clients over 127.0.0.1.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { openStream } = require('../lib/testing')
const { waitFor, sleep, linkedHub } = require('./helpers')
const { startRedis } = require('../test-support/redis')

let redis
before(async () => { redis = await startRedis() })
after(async () => { await redis?.close() })

let prefixes = 0
const freshPrefix = () => `r${process.pid}-${++prefixes}`

const data = (client) => client.events.filter((e) => e.event === 'message').map((e) => e.data)
const positionOf = (id) => parseInt(id.split('-')[1], 16)
const redisMetrics = (hub) => {
  const { redis } = hub.metrics()
  return { connected: redis.connected, sent: redis.sent, buffered: redis.buffered.events }
}

/** Every key of the namespace with its type and value (DUMP), to tell that nothing changed. */
async function snapshot (prefix) {
  const keys = (await redis.cli('--scan', '--pattern', `{${prefix}}:*`)).split('\n').filter(Boolean).sort()
  const values = []
  for (const key of keys) values.push(`${key} ${await redis.cli('TYPE', key)} ${await redis.cli('DUMP', key)}`)
  return values
}

/**
 * Two hubs on one namespace: `publisher` connects as `publisherUrl`, `watcher` as the default
 * user; both attach with `attach`. The watcher publishes `before` first, so every client has
 * one event and a resume has an id to start from.
 */
async function twoHubs (publisherUrl, attach, { channel = null } = {}) {
  const prefix = freshPrefix()
  const options = { history: true, attach }
  const watcher = await linkedHub({ url: redis.url, prefix }, options)
  const publisher = await linkedHub({ url: publisherUrl, prefix, reconnectMinMs: 50, reconnectMaxMs: 200 }, options)
  if (channel === null) watcher.hub.broadcast({ data: 'before' })
  else watcher.hub.publish(channel, { data: 'before' })
  await waitFor(() => data(watcher.raw).length === 1 && data(publisher.raw).length === 1, { what: "both clients to get 'before'" })
  return { prefix, watcher, publisher, close: async () => { await publisher.close(); await watcher.close() } }
}

/**
 * While Redis refuses: nothing reaches any client, the events wait in the publisher's buffer,
 * the backend is reported down (once, with Redis's reason) and stays down over several retries,
 * and nothing in Redis changed since `before` (a snapshot).
 */
async function assertHeld (t, { prefix, watcher, publisher }, { held, delivered, before, reason }) {
  await waitFor(() => publisher.backend.some((e) => e.state === 'down'), { what: () => `the publisher to report the backend down (${JSON.stringify(publisher.backend)})` })
  // Several retries (every 25-200 ms) while Redis still refuses.
  await sleep(1000)
  assert.deepEqual(redisMetrics(publisher.hub), { connected: false, sent: delivered.length - 1, buffered: held },
    'the refused events stay buffered and are not counted as sent')
  assert.deepEqual(publisher.backend.map((e) => e.state), ['up', 'down'], 'down while Redis refuses, not back up')
  assert.deepEqual(await snapshot(prefix), before, 'nothing changed in Redis')
  assert.deepEqual(data(watcher.raw), delivered, "the other hub's client got nothing refused")
  assert.deepEqual(data(publisher.raw), delivered, "the publisher's own client neither")
  const down = publisher.backend[1]
  t.diagnostic(`down: ${down.detail}`)
  assert.match(down.detail, reason, 'the detail gives Redis\'s answer')
}

/**
 * Once Redis takes them: every client gets the held events once, in order, with the next
 * positions; a client resuming from `before` gets them too (no reset signal); the metrics count
 * them sent; the backend is up.
 */
async function assertDelivered ({ watcher, publisher }, { expected }) {
  for (const { raw } of [watcher, publisher]) {
    await waitFor(() => data(raw).length >= expected.length, { what: () => `the held events (got ${JSON.stringify(data(raw))})` })
  }
  await sleep(300)
  for (const { raw } of [watcher, publisher]) {
    assert.deepEqual(data(raw), expected, 'each once, in order')
    assert.ok(raw.events.every((e) => e.event === 'message'), 'no reset signal')
    const positions = raw.events.map((e) => positionOf(e.id))
    assert.deepEqual(positions, positions.map((_, i) => positions[0] + i), 'consecutive positions: none was given to a refused attempt')
  }
  const beforeId = watcher.raw.events[0].id
  for (const hub of [watcher, publisher]) {
    const resumed = await openStream(hub.http.server, { lastEventId: beforeId })
    try {
      await resumed.waitFor((e) => e.data === expected.at(-1), { timeoutMs: 10_000 })
      await sleep(100)
      assert.deepEqual(resumed.events.map((e) => e.data), expected.slice(1), 'a resume from before gets them, without a reset')
      assert.deepEqual(resumed.events.map((e) => e.id), watcher.raw.events.slice(1).map((e) => e.id))
    } finally {
      await resumed.close()
    }
  }
  assert.deepEqual(redisMetrics(publisher.hub), { connected: true, sent: expected.length - 1, buffered: 0 })
  assert.equal(publisher.backend.at(-1).state, 'up')
  assert.deepEqual(publisher.backend.map((e) => e.state), ['up', 'down', 'up'])
}

// Without XADD the script fails at its first write; without PUBLISH, at its last one, which the
// script must find out (Redis 7's ACL check) before the first.
for (const command of ['XADD', 'PUBLISH']) {
  test(`an ACL user without ${command}: the publish changes nothing in Redis, stays buffered with the backend down, and goes through once ${command} is granted`, { timeout: 60_000 }, async (t) => {
    const user = `no${command.toLowerCase()}${++prefixes}`
    assert.equal(await redis.cli('ACL', 'SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', `-${command.toLowerCase()}`), 'OK')
    const url = redis.url.replace('redis://', `redis://${user}:secret@`)
    const hubs = await twoHubs(url, {})
    try {
      const seq = Number(await redis.cli('HGET', `{${hubs.prefix}}:meta`, 'seq'))
      const before = await snapshot(hubs.prefix)
      hubs.publisher.hub.broadcast({ data: 'one' })
      hubs.publisher.hub.broadcast({ data: 'two' })
      await assertHeld(t, hubs, { held: 2, delivered: ['before'], before, reason: new RegExp(`NOPERM.*${command}`) })

      assert.equal(await redis.cli('ACL', 'SETUSER', user, `+${command.toLowerCase()}`), 'OK')
      await assertDelivered(hubs, { expected: ['before', 'one', 'two'] })
      assert.equal(await redis.cli('HGET', `{${hubs.prefix}}:meta`, 'seq'), String(seq + 2))
      assert.equal(await redis.cli('XLEN', `{${hubs.prefix}}:b`), '3')
    } finally {
      await hubs.close()
      await redis.cli('ACL', 'DELUSER', user)
    }
  })
}

// The stream is the script's first write (XADD); the lasts hash is written after it.
for (const { what, key } of [{ what: "a channel's stream key", key: 'c:jobs' }, { what: 'the lasts hash', key: 'lasts' }]) {
  test(`${what} holding a string: the publish changes nothing in Redis, stays buffered with the backend down, and goes through once the key is deleted`, { timeout: 60_000 }, async (t) => {
    const attach = { channels: ['jobs'] }
    const hubs = await twoHubs(redis.url, attach, { channel: 'jobs' })
    try {
      const wrong = `{${hubs.prefix}}:${key}`
      const seq = Number(await redis.cli('HGET', `{${hubs.prefix}}:meta`, 'seq'))
      assert.equal(await redis.cli('SET', wrong, 'not of its type'), 'OK')
      const before = await snapshot(hubs.prefix)
      hubs.publisher.hub.publish('jobs', { data: 'one' })
      hubs.publisher.hub.publish('jobs', { data: 'two' })
      await assertHeld(t, hubs, { held: 2, delivered: ['before'], before, reason: new RegExp(`WRONGTYPE.*${key}`) })

      assert.equal(await redis.cli('DEL', wrong), '1')
      await assertDelivered(hubs, { expected: ['before', 'one', 'two'] })
      assert.equal(await redis.cli('HGET', `{${hubs.prefix}}:meta`, 'seq'), String(seq + 2))
      assert.equal(await redis.cli('XLEN', `{${hubs.prefix}}:c:jobs`), key === 'lasts' ? '3' : '2')
    } finally {
      await hubs.close()
    }
  })
}

test('an event behind a refused one waits for it, even on a channel Redis would take: the order holds, and nothing is reported applied twice', { timeout: 60_000 }, async (t) => {
  const attach = { channels: ['jobs', 'news'] }
  const hubs = await twoHubs(redis.url, attach, { channel: 'news' })
  try {
    const stream = `{${hubs.prefix}}:c:jobs`
    assert.equal(await redis.cli('SET', stream, 'not a stream'), 'OK')
    // 'news 1' is taken, 'jobs 1' refused, and 'news 2' (a stream Redis would append to) must
    // not overtake it: in the batch that follows a refusal, it comes right after it.
    hubs.publisher.hub.publish('news', { data: 'news 1' })
    await waitFor(() => data(hubs.watcher.raw).length === 2, { what: () => `'news 1' (got ${JSON.stringify(data(hubs.watcher.raw))})` })
    const before = await snapshot(hubs.prefix)
    hubs.publisher.hub.publish('jobs', { data: 'jobs 1' })
    hubs.publisher.hub.publish('news', { data: 'news 2' })
    await assertHeld(t, hubs, { held: 2, delivered: ['before', 'news 1'], before, reason: /WRONGTYPE/ })

    assert.equal(await redis.cli('DEL', stream), '1')
    await assertDelivered(hubs, { expected: ['before', 'news 1', 'jobs 1', 'news 2'] })
  } finally {
    await hubs.close()
  }
})
