'use strict'
// needs: nothing

// A producer streaming to one client waits for it instead of overflowing it: the LLM-token
// case. 1,000,000 events of 20 B go to a client that reads slowly in bursts (another process,
// which checks the sequence for loss, repeats and order); all arrive, in order, while what the
// hub holds for that client stays near the high-water mark.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { Readable, pipeline } = require('node:stream')
const { createHub, defaults } = require('..')
const { TRANSPORTS, startHttp, rawClient, waitFor, sleep, loadClients } = require('./helpers')

const EVENTS = 1_000_000
const token = (seq) => `${seq} `.padEnd(20, '.')

function* tokens () {
  for (let seq = 0; seq < EVENTS; seq++) yield token(seq)
}

/** One client in another process, reading 128 KiB every 20 ms (about 6 MB/s), in bursts. */
const slowReader = (port) => loadClients(port, 1, { pace: `${128 * 1024}:20` })

async function streamThrough (transport, start) {
  const hub = createHub({ heartbeatMs: 60_000 })
  let done = null
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res, { transport })
    done = start(client)
  })
  const reader = slowReader(http.port)
  let maxHeld = 0
  const sampler = setInterval(() => { maxHeld = Math.max(maxHeld, hub.stats().maxClientQueuedBytes) }, 20)
  try {
    await waitFor(() => done !== null, { what: 'the client' })
    const outcome = await done
    await waitFor(async () => (await reader.report()).delivered === EVENTS,
      { what: `${EVENTS} events at the reader`, timeoutMs: 90_000, intervalMs: 100 })
    const report = await reader.report()
    assert.equal(report.lost, 0)
    assert.equal(report.disorder, 0)
    assert.equal(hub.metrics().closes.slow, 0)
    // The producer waited: what the hub held for the client stayed near the high-water mark,
    // not the 20+ MB the stream amounts to.
    assert.ok(maxHeld <= defaults.highWaterMark + 64 * 1024, `held ${maxHeld} bytes for one client`)
    return outcome
  } finally {
    clearInterval(sampler)
    await reader.stop()
    await hub.close()
    await http.close()
  }
}

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test(`client.stream() delivers ${EVENTS.toLocaleString('en')} events to a slow reader, complete and in order`, async () => {
      const outcome = await streamThrough(transport, (client) => client.stream(tokens()))
      assert.deepEqual(outcome, { sent: EVENTS, completed: true })
    })

    test('pipeline(readable, client.writable()) does the same and closes the client at the end', async () => {
      const closes = []
      await streamThrough(transport, (client) => {
        client.on('close', (reason) => closes.push(reason))
        return new Promise((resolve, reject) => pipeline(Readable.from(tokens()), client.writable(), (error) => (error ? reject(error) : resolve())))
      })
      await waitFor(() => closes.length === 1, { what: 'the close' })
      assert.deepEqual(closes, ['server'])
    })
  })
}

test('a client that leaves stops stream() and destroys its writable, closing the source', async () => {
  const hub = createHub({ heartbeatMs: 60_000, highWaterMark: 1024 })
  const outcomes = []
  let sourceClosed = 0
  function * endless () {
    try {
      for (let i = 0; ; i++) yield token(i)
    } finally {
      sourceClosed++
    }
  }
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res)
    if (req.url === '/stream') client.stream(endless()).then((o) => outcomes.push(o))
    else pipeline(Readable.from(endless()), client.writable(), (error) => outcomes.push(error.code))
  })
  try {
    for (const path of ['/stream', '/pipeline']) {
      const raw = rawClient(http.port, { path, paced: true })
      await waitFor(() => hub.stats().queuedBytes > 1024, { what: `${path}: the producer to be waiting` })
      raw.socket.destroy()
      await waitFor(() => outcomes.length === (path === '/stream' ? 1 : 2), { what: `${path}: the producer to stop` })
    }
    assert.equal(outcomes[0].completed, false)
    assert.ok(outcomes[0].sent > 0)
    assert.equal(outcomes[1], 'ERR_SSE_CLIENT_CLOSED')
    await waitFor(() => sourceClosed === 2, { what: 'both sources to be closed' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('send() returns false above the high-water mark, and drain() resolves or rejects', async () => {
  const hub = createHub({ heartbeatMs: 60_000, highWaterMark: 100 })
  let client
  // On the Node transport a batch leaves the hub's accounting only when JS acknowledges it,
  // which cannot happen inside one synchronous loop: the count below is exact.
  const http = await startHttp((req, res) => { client = hub.attach(req, res, { transport: 'node' }) })
  try {
    const raw = rawClient(http.port, { paced: true })
    await waitFor(() => client !== undefined, { what: 'the client' })
    const results = []
    for (let i = 0; i < 5; i++) results.push(client.send({ data: 'x'.repeat(30) }))
    // 38-byte frames: the third takes the mailbox past 100 bytes. Every one was queued.
    assert.deepEqual(results, [true, true, false, false, false])
    assert.equal(client.needDrain, true)
    const drained = client.drain()
    raw.readAll()
    await drained
    assert.equal(client.needDrain, false)
    await waitFor(() => raw.events.length === 5, { what: 'all five events' })
    await assert.rejects(client.stream(42), (error) => error instanceof TypeError && error.code === 'ERR_SSE_INVALID_ARGUMENT')
  } finally {
    await hub.close()
    await http.close()
  }
})

test('drain() rejects with ERR_SSE_CLIENT_CLOSED when the client leaves before draining', async () => {
  const hub = createHub({ heartbeatMs: 60_000, highWaterMark: 1024 })
  let client
  const http = await startHttp((req, res) => { client = hub.attach(req, res) })
  try {
    const raw = rawClient(http.port, { paced: true }) // reads nothing: the backlog cannot drain
    await waitFor(() => client !== undefined, { what: 'the client' })
    // Sends until no drain comes for 200 ms: the kernel's buffers are full, the backlog stuck.
    let stuck = false
    for (let i = 0; i < 100_000 && !stuck; i++) {
      if (client.send({ data: 'z'.repeat(1024) })) continue
      stuck = !(await Promise.race([client.drain().then(() => true, () => false), sleep(200).then(() => false)]))
    }
    assert.equal(stuck, true)
    assert.equal(client.needDrain, true)
    const pending = client.drain()
    raw.socket.destroy()
    await assert.rejects(pending, (error) => error.code === 'ERR_SSE_CLIENT_CLOSED')
    await assert.rejects(client.drain(), (error) => error.code === 'ERR_SSE_CLIENT_CLOSED')
    assert.equal(client.send({ data: 'late' }), false)
  } finally {
    await hub.close()
    await http.close()
  }
})

for (const transport of TRANSPORTS) {
  test(`${transport}: stream() of a synchronous source sends each item as send() would, and stops at an invalid one`, async () => {
    const hub = createHub({ heartbeatMs: 60_000 })
    const clients = []
    const http = await startHttp((req, res) => clients.push(hub.attach(req, res, { transport })))
    try {
      // Text that a joined string must not blur: multi-byte characters, line breaks, empty
      // items, and surrogate halves that only the joining would pair (each alone is U+FFFD).
      const texts = ['a', '', 'héllo\nwörld', '日本', '😀', '\uD83D', '\uDE00', 'x\r\ny\rz', 'é'.repeat(5000)]
      const mixed = ['plain', { event: 'tick', data: { n: 1 }, id: 7 }, Buffer.from('bytes'), { data: 'retry', retry: 500 }]
      const expected = [
        ...texts.map((t) => ({ data: t.replace(/\uD83D$/, '\uFFFD').replace(/^\uDE00$/, '\uFFFD').replace(/\r\n|\r/g, '\n') })),
        { data: 'plain' }, { event: 'tick', data: '{"n":1}', id: '7' }, { data: 'bytes' }, { data: 'retry' }
      ]
      const raw = rawClient(http.port)
      await waitFor(() => clients.length === 1, { what: 'the client' })
      const outcome = await clients[0].stream(texts.concat(mixed))
      assert.deepEqual(outcome, { sent: texts.length + mixed.length, completed: true })
      await waitFor(() => raw.events.length === expected.length, { what: `${expected.length} events` })
      assert.deepEqual(raw.events.map((e) => ({ ...(e.event ? { event: e.event } : {}), data: e.data, ...(e.id ? { id: e.id } : {}) })), expected)

      // The items before an invalid one are sent, it throws, and nothing after it is sent.
      const before = raw.events.length
      await assert.rejects(clients[0].stream(['one', 'two', { data: 'x', event: 'bad\nname' }, 'never']),
        { name: 'TypeError', code: 'ERR_SSE_INVALID_FIELD' })
      clients[0].send({ data: 'after' })
      await waitFor(() => raw.events.length === before + 3, { what: 'the two items and a marker' })
      assert.deepEqual(raw.events.slice(before).map((e) => e.data), ['one', 'two', 'after'])
      raw.end()
    } finally {
      await hub.close()
      await http.close()
    }
  })
}
