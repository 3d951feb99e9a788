'use strict'
// needs: nothing

// Sends to one client made in one turn of the event loop cross to Rust together (hub.js
// `_sendTo`). What must not change with that: the order of everything the application did,
// the errors thrown at the call that was wrong (and nothing of it sent), the high-water answer
// at the send that crosses the mark, and nothing lost when the client or the hub closes in
// the same turn.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { TRANSPORTS, startHttp, rawClient, waitFor, ended } = require('./helpers')

/** A hub with one client on channel 'room', read by openStream. */
async function withClient (hubOptions, transport, body) {
  const hub = createHub({ heartbeatMs: 60_000, ...hubOptions })
  let client
  const stream = await openStream((req, res) => { client = hub.attach(req, res, { transport, channels: ['room'] }) })
  try {
    await body(hub, client, stream)
  } finally {
    await stream.close()
    await hub.close()
  }
}

/** The same with a raw client, for a test of where comments sit among the bytes. */
async function withRawClient (hubOptions, transport, body) {
  const hub = createHub({ heartbeatMs: 60_000, ...hubOptions })
  let client
  const http = await startHttp((req, res) => { client = hub.attach(req, res, { transport, channels: ['room'] }) })
  const raw = rawClient(http.port)
  try {
    await waitFor(() => client !== undefined && raw.comments.length + raw.retries.length > 0, { what: 'the stream to open' })
    await body(hub, client, raw)
  } finally {
    await hub.close()
    await http.close()
  }
}

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test('sends, broadcasts, publishes and comments made in one turn arrive in call order', async () => {
      await withRawClient({}, transport, async (hub, client, raw) => {
        const expected = []
        for (let i = 0; i < 50; i++) {
          client.send({ data: `send-${i}` })
          expected.push(`send-${i}`)
          if (i % 7 === 0) { hub.broadcast({ data: `broadcast-${i}` }); expected.push(`broadcast-${i}`) }
          if (i % 11 === 0) { hub.publish('room', { data: `publish-${i}` }); expected.push(`publish-${i}`) }
          if (i % 13 === 0) { client.send({ event: 'named', id: `id-${i}`, data: `named-${i}` }); expected.push(`named-${i}`) }
          if (i % 17 === 0) client.comment(`comment-${i}`)
        }
        await waitFor(() => raw.events.length === expected.length, { what: () => `${expected.length} events (got ${raw.events.length})` })
        assert.deepEqual(raw.events.map((e) => e.data), expected)
        assert.deepEqual(raw.comments.filter((c) => c.startsWith('comment')), ['comment-0', 'comment-17', 'comment-34'])
        // The comments sit where they were made: after send-17's turn position, before send-18.
        const text = raw.raw.toString('latin1')
        assert.ok(text.indexOf('send-17') < text.indexOf('comment-17') && text.indexOf('comment-17') < text.indexOf('send-18'))
      })
    })

    test('a bad send throws at its own call and sends nothing; the good ones around it in the turn all go', async () => {
      await withClient({ maxEventBytes: 4096 }, transport, async (hub, client, stream) => {
        assert.equal(client.send({ data: 'before' }), true)
        assert.throws(() => client.send({ id: 'a\nb', data: 'x' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_FIELD' })
        assert.throws(() => client.send({ event: 'two\rlines', data: 'x' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_FIELD' })
        assert.throws(() => client.send({ id: 'nul\0', data: 'x' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_FIELD' })
        assert.throws(() => client.send({ data: 'y'.repeat(5000) }), { name: 'RangeError', code: 'ERR_SSE_EVENT_TOO_LARGE' })
        // Just under the limit with line breaks: only the core can tell, and it takes it.
        assert.equal(client.send({ data: 'z\n'.repeat(450) }), true)
        assert.throws(() => client.send({ data: 'w', extra: 1 }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
        assert.equal(client.send({ data: 'after' }), true)
        await stream.waitFor((e) => e.data === 'after')
        assert.deepEqual(stream.events.map((e) => e.data.slice(0, 6)), ['before', 'z\nz\nz\n', 'after'])
        // Any line of the refused sends would show: an event of its own, an id, a comment.
        assert.equal(stream.events.some((e) => e.data.includes('yyyy') || e.data === 'x' || e.data === 'w'), false)
        assert.equal(stream.lastEventId, '', 'no id line of a refused send')
        assert.deepEqual(stream.comments, [''])
      })
    })

    test('client.close() and hub.close() in the same turn as sends: every send is written first', async () => {
      await withClient({}, transport, async (hub, client, stream) => {
        for (let i = 0; i < 100; i++) client.send({ data: `last-${i}` })
        client.close()
        assert.equal(await ended(stream), 'end', 'the body ended, last chunk included')
        assert.equal(stream.events.length, 100)
        assert.equal(stream.events.at(-1).data, 'last-99')
        // The peer can see the end before the hub reports the close to JS (native transport).
        await waitFor(() => client.closed, { what: 'the client\'s close' })
        assert.equal(client.closeReason, 'server')
      })
      await withClient({}, transport, async (hub, client, stream) => {
        for (let i = 0; i < 100; i++) client.send({ data: `final-${i}` })
        await hub.close()
        assert.equal(await ended(stream), 'end', 'the body ended, last chunk included')
        assert.equal(stream.events.length, 100)
        assert.equal(stream.events.at(-1).data, 'final-99')
      })
    })
  })
}

test('the high-water answer comes at the send that crosses the mark, within one turn of many sends', async () => {
  // Node transport: its batch in flight stays counted until JS acknowledges it, which cannot
  // happen inside this synchronous loop, so Rust's count is exact and the crossing is known.
  await withClient({ highWaterMark: 1000 }, 'node', async (hub, client, stream) => {
    const results = []
    for (let i = 0; i < 60; i++) results.push(client.send({ data: 'x'.repeat(40) })) // 48-byte frames
    // The first batch (the opening frame's) is in flight; sends then cross 1000 bytes at the 21st.
    const firstFalse = results.indexOf(false)
    assert.equal(firstFalse, 20, `results: ${results}`)
    assert.ok(results.slice(firstFalse).every((r) => r === false), 'false until drained')
    assert.equal(client.needDrain, true)
    await client.drain()
    assert.equal(client.send({ data: 'after drain' }), true)
    await stream.waitFor((e) => e.data === 'after drain')
    assert.equal(stream.events.length, 61)
  })
})
