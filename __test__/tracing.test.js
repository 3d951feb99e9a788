'use strict'
// needs: nothing

// The `native-sse:publish` TracingChannel (node:diagnostics_channel), as an APM agent or an
// OpenTelemetry instrumentation subscribes to it: start and end around each publish and
// broadcast, error for a rejected one, and asyncStart/asyncEnd once this process has written
// the event to every client it was for, with how many and how long it took. Real clients
// (native-sse/testing) on 127.0.0.1.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const diagnostics = require('node:diagnostics_channel')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { waitFor } = require('./helpers')

/** Subscribes to every event of the trace; `seen` lists [kind, context] in order. */
function traceObserver () {
  const seen = []
  const kinds = ['start', 'end', 'asyncStart', 'asyncEnd', 'error']
  const handlers = Object.fromEntries(kinds.map((kind) => [kind, (context) => seen.push([kind, context])]))
  const channel = diagnostics.tracingChannel('native-sse:publish')
  channel.subscribe(handlers)
  return { seen, stop: () => channel.unsubscribe(handlers) }
}

/** The kinds `seen` has for `context`, in order. */
const kindsOf = (seen, context) => seen.filter(([, c]) => c === context).map(([kind]) => kind)

test('native-sse:publish traces each publish and broadcast: start, end with the recipients, then asyncStart/asyncEnd once written to all of them; a rejected one gets error and nothing is sent', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = (req, res) => hub.attach(req, res, { channels: ['prices'] })
  const streams = await Promise.all([openStream(app), openStream(app), openStream(app)])
  const observer = traceObserver()
  try {
    await waitFor(() => hub.channel('prices').size === 3, { what: 'three subscribers' })
    assert.equal(hub.publish('prices', { event: 'price', id: 'p1', data: { price: 1 } }), 3)
    const [, context] = observer.seen.find(([kind]) => kind === 'start')
    assert.equal(context.hub, hub)
    assert.equal(context.channel, 'prices')
    assert.deepEqual(context.message, { event: 'price', id: 'p1', data: { price: 1 } })
    assert.equal(context.result, 3, 'end carries the recipients')
    await waitFor(() => kindsOf(observer.seen, context).includes('asyncEnd'), { what: 'the delivery of p1' })
    assert.deepEqual(kindsOf(observer.seen, context), ['start', 'end', 'asyncStart', 'asyncEnd'])
    assert.equal(context.delivery.recipients, 3)
    assert.equal(context.delivery.complete, true)
    assert.ok(context.delivery.elapsedMs >= 0 && context.delivery.elapsedMs < 10_000, `elapsedMs ${context.delivery.elapsedMs}`)
    for (const stream of streams) assert.equal((await stream.waitFor('price')).id, 'p1')

    // Rejected: error, and nothing reaches anyone (the next event they get is the next one).
    assert.throws(() => hub.publish('prices', { data: 'x', id: 'a\nb' }), { code: 'ERR_SSE_INVALID_FIELD' })
    const [, rejected] = observer.seen.findLast(([kind]) => kind === 'start')
    assert.deepEqual(kindsOf(observer.seen, rejected), ['start', 'error', 'end'])
    assert.equal(rejected.error.code, 'ERR_SSE_INVALID_FIELD')

    assert.equal(hub.broadcast({ event: 'note', id: 'b1', data: 'all' }), 3)
    const [, broadcast] = observer.seen.findLast(([kind]) => kind === 'start')
    assert.equal(broadcast.channel, null)
    for (const stream of streams) assert.equal((await stream.waitFor('note')).id, 'b1')
    await waitFor(() => kindsOf(observer.seen, broadcast).includes('asyncEnd'), { what: 'the delivery of b1' })
    assert.equal(broadcast.delivery.recipients, 3)
    for (const stream of streams) assert.deepEqual(stream.events.map((e) => e.id), ['p1', 'b1'])
    assert.equal(kindsOf(observer.seen, rejected).includes('asyncEnd'), false, 'a rejected publish has no delivery')

    // Unsubscribed: nothing is traced.
    observer.stop()
    const before = observer.seen.length
    hub.publish('prices', { data: 'quiet' })
    for (const stream of streams) await stream.waitFor((e) => e.data === 'quiet')
    assert.equal(observer.seen.length, before)
  } finally {
    observer.stop()
    await Promise.all(streams.map((stream) => stream.close()))
    await hub.close()
  }
})

test('the delivery is reported only once every recipient had the event written: a client that stops reading holds it until it leaves', async () => {
  // One event larger than a loopback connection's socket buffers can take (a few MiB each way).
  const big = 'x'.repeat(24 << 20)
  const hub = createHub({ heartbeatMs: 60_000, maxEventBytes: 32 << 20, maxLagBytes: 64 << 20 })
  const app = (req, res) => hub.attach(req, res)
  const reading = await openStream(app, { timeoutMs: 20_000 })
  const stalled = await openStream(app, { timeoutMs: 20_000 })
  const observer = traceObserver()
  try {
    await waitFor(() => hub.size === 2, { what: 'two clients' })
    stalled.pause()
    assert.equal(hub.broadcast({ event: 'blob', data: big }), 2)
    const [, context] = observer.seen.find(([kind]) => kind === 'start')
    // The reading client has all of it: the stalled one cannot have.
    assert.equal((await reading.waitFor('blob')).data.length, big.length)
    assert.equal(context.delivery, undefined, 'not delivered while a recipient has not had it')
    await stalled.close()
    await waitFor(() => context.delivery !== undefined, { what: 'the report once the stalled client left', timeoutMs: 20_000 })
    assert.deepEqual(kindsOf(observer.seen, context), ['start', 'end', 'asyncStart', 'asyncEnd'])
    assert.equal(context.delivery.recipients, 2)
    assert.equal(context.delivery.complete, true, 'every recipient had it written or left')
  } finally {
    observer.stop()
    await reading.close()
    await stalled.close()
    await hub.close()
  }
})
