'use strict'
// needs: test-hooks

// What a channel's settings cost and how long they last: settings given with hub.channel()
// and the history a resumable stream holds live on the channel and go with it, so one-off
// channels (the README's `answer:${randomUUID()}`) cost nothing once done, in channels and in
// native memory; settings given to createHub({ channels }) stay for good.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { randomUUID } = require('node:crypto')
const { createHub } = require('..')
const { startHttp, rawClient, waitFor } = require('./helpers')
const { settledMemory } = require('./memory')

const MB = 1024 * 1024

/** Runs `count` one-off streams of two tokens, each in a channel of its own, one after another. */
async function oneOffStreams (hub, count) {
  for (let i = 0; i < count; i++) {
    const { done } = hub.publishStream(`answer:${randomUUID()}`, ['to', 'ken'], { history: { maxAgeMs: 100 } })
    const result = await done
    if (!result.completed) throw result.error
  }
}

function describeMemory (before, after) {
  const mb = (bytes) => (bytes / MB).toFixed(1)
  return `native ${mb(before.native)} -> ${mb(after.native)} MB, JS heap ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB, RSS ${mb(before.rss)} -> ${mb(after.rss)} MB`
}

test('100,000 one-off resumable streams leave no channel and no native memory behind', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  try {
    const channelsGone = (what) => waitFor(() => hub.metrics().channels === 0,
      { timeoutMs: 30_000, intervalMs: 50, what: () => `${what} (${hub.metrics().channels} channels left)` })
    await oneOffStreams(hub, 10_000)
    await channelsGone('the warm-up streams\' channels to go')
    const before = await settledMemory()
    await oneOffStreams(hub, 100_000)
    await channelsGone('the channels of 100,000 ended streams to go')
    const after = await settledMemory()
    // A settings entry kept per stream, as before, is 100+ B each: 10 MB and more here.
    assert.ok(after.native - before.native < 3 * MB, `memory kept by 100,000 ended streams: ${describeMemory(before, after)}`)
  } finally {
    await hub.close()
  }
})

test('a live stream holds no JS memory per item it published: 20,000 items of a running stream cost under 40 B each', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const controller = new AbortController()
  let produced = 0
  async function * endless () {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve))
      produced++
      yield 'x'
    }
  }
  try {
    const { done } = hub.publishStream('answer:endless', endless(), { id: 'endless', signal: controller.signal, history: { maxEvents: 10 } })
    await waitFor(() => produced >= 5_000, { timeoutMs: 30_000, what: () => `5,000 items (${produced})` })
    const before = await settledMemory()
    const from = produced
    await waitFor(() => produced >= from + 20_000, { timeoutMs: 60_000, what: () => `20,000 more items (${produced - from})` })
    const after = await settledMemory()
    const items = produced - from
    // Racing each wait against one promise that lives as long as the stream left a reaction
    // on it per item: about 400 B each, 8 MB here.
    assert.ok((after.heapUsed - before.heapUsed) / items < 40,
      `JS heap per item: ${((after.heapUsed - before.heapUsed) / items).toFixed(0)} B over ${items} items (${describeMemory(before, after)})`)
    controller.abort()
    const result = await done
    assert.equal(result.completed, false)
  } finally {
    await hub.close()
  }
})

test('hub.channel() settings go with the channel: 100,000 capped channels nobody used are gone after the grace, createHub({ channels }) stays', async () => {
  const hub = createHub({ heartbeatMs: 60_000, channels: { lobby: { maxClients: 1 } } })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: [new URL(req.url, 'http://x').searchParams.get('c')] }))
  const open = []
  const status = async (channel) => {
    const client = rawClient(http.port, { path: `/?c=${channel}` })
    open.push(client)
    await waitFor(() => client.head !== null, { what: `an answer for ${channel}` })
    return Number(client.head.split(' ')[1])
  }
  try {
    const before = await settledMemory()
    const configured = performance.now()
    for (let i = 0; i < 100_000; i++) hub.channel(`room:${i}`, { maxClients: 5 })
    hub.channel('room', { maxClients: 1 })
    assert.equal(hub.metrics().channels, 100_001, 'each exists while its settings keep it')
    // Within the grace the cap holds for the first attaches.
    assert.equal(await status('room'), 200)
    assert.equal(await status('room'), 503)
    for (const client of open.splice(0)) client.end()
    await waitFor(() => hub.size === 0, { what: 'the room to empty' })
    await waitFor(() => hub.metrics().channels === 0,
      { timeoutMs: 30_000, intervalMs: 100, what: () => `the unused channels to go (${hub.metrics().channels} left)` })
    const gone = performance.now() - configured
    assert.ok(gone >= 10_000, `kept for the 10 s grace (gone after ${Math.round(gone)} ms)`)
    const after = await settledMemory()
    assert.ok(after.native - before.native < 3 * MB, `memory kept by 100,000 expired settings: ${describeMemory(before, after)}`)
    // The room's cap went with it; the lobby's, given to createHub, stays.
    assert.equal(await status('room'), 200)
    assert.equal(await status('room'), 200)
    assert.equal(await status('lobby'), 200)
    assert.equal(await status('lobby'), 503)
  } finally {
    for (const client of open) client.end()
    await hub.close()
    await http.close()
  }
})

test('createHub({ channels }): a channel keeps its own history for good, used or not, and rejects bad settings', async () => {
  const hub = createHub({
    heartbeatMs: 60_000,
    history: true,
    channels: { typing: { history: false }, orders: { history: { maxEvents: 3 } } }
  })
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    hub.attach(req, res, { channels: [url.searchParams.get('c')], lastEventId: url.searchParams.get('from') ?? undefined })
  })
  try {
    for (const id of ['t1', 't2']) hub.publish('typing', { id, data: id })
    for (const id of ['o1', 'o2', 'o3', 'o4']) hub.publish('orders', { id, data: id })
    const typing = rawClient(http.port, { path: '/?c=typing&from=t1' })
    const kept = rawClient(http.port, { path: '/?c=orders&from=o2' })
    const trimmed = rawClient(http.port, { path: '/?c=orders&from=o1' })
    await waitFor(() => typing.events.length === 1 && kept.events.length === 2 && trimmed.events.length === 1,
      { what: () => `the replays (${typing.events.length}, ${kept.events.length}, ${trimmed.events.length})` })
    assert.equal(typing.events[0].event, 'sse-reset', 'typing keeps nothing')
    assert.deepEqual(kept.events.map((e) => e.id), ['o3', 'o4'])
    assert.equal(trimmed.events[0].event, 'sse-reset', 'orders keeps its last three only')
  } finally {
    await hub.close()
    await http.close()
  }
  assert.throws(() => createHub({ channels: { '': {} } }), { code: 'ERR_SSE_INVALID_CHANNEL' })
  assert.throws(() => createHub({ channels: { a: { maxClient: 1 } } }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
  assert.throws(() => createHub({ channels: { a: { maxClients: -1 } } }), { code: 'ERR_SSE_INVALID_OPTION' })
  assert.throws(() => createHub({ channels: ['a'] }), { name: 'TypeError' })
})
