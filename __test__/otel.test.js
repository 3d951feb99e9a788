'use strict'
// needs: redis-server

// native-sse/otel with the real OpenTelemetry SDK (an in-memory exporter, AsyncLocalStorage
// context): a publish made inside an app span is a PRODUCER child of it, and this process's
// delivery to the clients (real ones, native-sse/testing on 127.0.0.1) one CONSUMER span
// linked to it with the count; a rejected publish is an ERROR span with no delivery; after
// stop() nothing more. Across two processes and a real redis-server: one trace from the
// publish to each process's delivery.

const path = require('node:path')
const { fork } = require('node:child_process')
const { test } = require('node:test')
const assert = require('node:assert/strict')
const api = require('@opentelemetry/api')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { createHub } = require('..')
const { instrument } = require('../lib/otel')
const { openStream } = require('../lib/testing')
const { waitFor } = require('./helpers')
const { startRedis } = require('../test-support/redis')
const { spanSummary } = require('../test-support/spans')

/** The other process (fixtures/otel-hub.js): `request(op)` resolves its reply. */
async function otherProcess (redis, clients) {
  const child = fork(path.join(__dirname, 'fixtures', 'otel-hub.js'), [JSON.stringify({ redis, clients })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const next = () => new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`the other process exited (${code})`)))
  })
  const ready = await next()
  assert.equal(ready.op, 'ready')
  return {
    spans: async () => { const reply = next(); child.send({ op: 'spans' }); return (await reply).spans },
    close: async () => { const exited = new Promise((resolve) => child.once('exit', resolve)); child.send({ op: 'close' }); await exited }
  }
}

test('a publish is a PRODUCER span under the app\'s, its delivery here one CONSUMER span linked to it with the recipients; an error is recorded; stop() ends it', async () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  api.context.setGlobalContextManager(contextManager)
  const stop = instrument({ tracerProvider: provider })
  const hub = createHub({ heartbeatMs: 60_000 })
  const app = (req, res) => hub.attach(req, res, { channels: ['prices'] })
  const streams = await Promise.all([openStream(app), openStream(app), openStream(app)])
  try {
    await waitFor(() => hub.channel('prices').size === 3, { what: 'three subscribers' })
    const tracer = provider.getTracer('app')
    const request = tracer.startSpan('POST /prices')
    api.context.with(api.trace.setSpan(api.context.active(), request), () => {
      assert.equal(hub.publish('prices', { event: 'price', id: 'p1', data: { price: 1 } }), 3)
    })
    request.end()
    for (const stream of streams) await stream.waitFor('price')
    await waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'deliver prices'), { what: 'the deliver span' })

    const spans = exporter.getFinishedSpans()
    const publish = spans.find((s) => s.name === 'publish prices')
    const deliver = spans.find((s) => s.name === 'deliver prices')
    const parentOf = (span) => span.parentSpanContext?.spanId ?? span.parentSpanId
    assert.equal(publish.kind, api.SpanKind.PRODUCER)
    assert.equal(publish.spanContext().traceId, request.spanContext().traceId, 'one trace from the app\'s span')
    assert.equal(parentOf(publish), request.spanContext().spanId)
    assert.equal(publish.attributes['messaging.system'], 'native-sse')
    assert.equal(publish.attributes['messaging.destination.name'], 'prices')
    assert.equal(publish.attributes['messaging.message.id'], 'p1')
    assert.equal(publish.attributes['native_sse.recipients'], 3)

    assert.equal(deliver.kind, api.SpanKind.CONSUMER)
    assert.equal(deliver.spanContext().traceId, publish.spanContext().traceId)
    assert.equal(parentOf(deliver), publish.spanContext().spanId)
    assert.deepEqual(deliver.links.map((l) => l.context.spanId), [publish.spanContext().spanId])
    assert.equal(deliver.attributes['messaging.batch.message_count'], 3)
    assert.equal(deliver.attributes['native_sse.delivery.complete'], true)
    assert.equal(spans.filter((s) => s.name.startsWith('deliver')).length, 1, 'one delivery span for three clients')

    // Rejected: an ERROR span with the exception, and no delivery.
    exporter.reset()
    assert.throws(() => hub.broadcast({ data: 'x', event: 'a\nb' }), { code: 'ERR_SSE_INVALID_FIELD' })
    const [failed] = exporter.getFinishedSpans()
    assert.equal(failed.name, 'publish (broadcast)')
    assert.equal(failed.status.code, api.SpanStatusCode.ERROR)
    assert.equal(failed.events[0].name, 'exception')

    // Stopped: no more spans (a publish still delivers).
    stop()
    exporter.reset()
    hub.publish('prices', { event: 'price', id: 'p2', data: { price: 2 } })
    for (const stream of streams) assert.equal((await stream.waitFor('price')).id, 'p2')
    assert.deepEqual(exporter.getFinishedSpans(), [])
  } finally {
    stop()
    await Promise.all(streams.map((stream) => stream.close()))
    await hub.close()
    contextManager.disable()
    api.context.disable()
  }
})

test('without @opentelemetry/api given or installed, instrument() throws ERR_SSE_MISSING_DEPENDENCY saying what to install', () => {
  const Module = require('node:module')
  const original = Module._resolveFilename
  Module._resolveFilename = function (request, ...rest) {
    if (request === '@opentelemetry/api') throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' })
    return original.call(this, request, ...rest)
  }
  try {
    assert.throws(() => instrument(), { code: 'ERR_SSE_MISSING_DEPENDENCY', message: /npm install @opentelemetry\/api/ })
  } finally {
    Module._resolveFilename = original
  }
})

test('across two processes through a real redis-server: one trace, from the publish to each process\'s delivery span with its own count', async () => {
  const redis = await startRedis({ durable: false })
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const stop = instrument({ tracerProvider: provider })
  const options = { url: redis.url, prefix: 'otel' }
  const hub = createHub({ heartbeatMs: 60_000, redis: options })
  let other = null
  let streams = []
  try {
    await hub.ready()
    other = await otherProcess(options, 3)
    const app = (req, res) => hub.attach(req, res, { channels: ['prices'] })
    streams = await Promise.all([openStream(app), openStream(app)])
    await waitFor(() => hub.channel('prices').size === 2, { what: 'two subscribers here' })
    hub.publish('prices', { event: 'price', id: 'p1', data: { price: 1 } })
    for (const stream of streams) assert.equal((await stream.waitFor('price', { timeoutMs: 10_000 })).id, 'p1')
    await waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'deliver prices'), { what: 'this process\'s deliver span', timeoutMs: 10_000 })
    let theirs = []
    await waitFor(async () => { theirs = await other.spans(); return theirs.some((s) => s.name === 'deliver prices') }, { what: 'the other process\'s deliver span', timeoutMs: 10_000 })

    const ours = exporter.getFinishedSpans().map(spanSummary)
    const publish = ours.find((s) => s.name === 'publish prices')
    const delivers = [...ours, ...theirs].filter((s) => s.name === 'deliver prices')
    assert.equal(publish.kind, api.SpanKind.PRODUCER)
    assert.match(publish.traceId, /^[0-9a-f]{32}$/)
    assert.equal(delivers.length, 2, 'one delivery span per process')
    for (const deliver of delivers) {
      assert.equal(deliver.kind, api.SpanKind.CONSUMER)
      assert.equal(deliver.traceId, publish.traceId, 'the same trace')
      assert.equal(deliver.parentSpanId, publish.spanId)
      assert.deepEqual(deliver.links, [publish.spanId])
      assert.equal(deliver.attributes['native_sse.delivery.complete'], true)
    }
    assert.deepEqual(delivers.map((s) => s.attributes['messaging.batch.message_count']).sort(), [2, 3], 'each process counts its own clients')
    assert.equal(theirs.filter((s) => s.name.startsWith('publish')).length, 0, 'the other process published nothing')
  } finally {
    stop()
    await Promise.all(streams.map((stream) => stream.close()))
    await other?.close()
    await hub.close()
    await redis.stop()
  }
})
