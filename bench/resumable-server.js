'use strict'

// One side of bench/resumable.js: `node bench/resumable-server.js <native|resumable> <redis url>`.
// GET /start/:id?tokens=&paceMs= starts a stream of tokens and reads it; GET /follow/:id
// follows one (native-sse: Last-Event-ID or from its start; resumable-stream: ?skip=chars);
// GET /stop ends every source running (a stream goes on when its reader leaves).
// Sends `{ port }` over IPC once listening, and its memory when asked ('gc': after a full GC),
// with its young generation's size (V8's new space).

const http = require('node:http')
const v8 = require('node:v8')
const [kind, redisUrl] = process.argv.slice(2)

/** Bumped by GET /stop: the sources started before end (their streams complete). */
let generation = 0

/**
 * `count` tokens of 20 B; paced by `paceMs` when given, else as fast as the reader takes them.
 * Ends early at GET /stop.
 */
async function * tokens (count, paceMs) {
  const born = generation
  for (let i = 0; i < count && generation === born; i++) {
    if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs))
    else if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve))
    yield `${i} `.padEnd(20, 'x')
  }
}

async function nativeSse () {
  const { createHub } = require('..')
  const hub = createHub({ heartbeatMs: 60_000, redis: { url: redisUrl, prefix: 'bench-resumable' } })
  await hub.ready()
  return (req, res, route, id, url) => {
    const channel = `answer:${id}`
    if (route === 'start') {
      hub.publishStream(channel, tokens(Number(url.searchParams.get('tokens')), Number(url.searchParams.get('paceMs') ?? 0)), { id })
    }
    hub.attach(req, res, { channels: [channel], lastEventId: `${id}.0` })
  }
}

async function resumableStream () {
  const { createClient } = require('redis')
  const { createResumableStreamContext } = require('resumable-stream')
  const publisher = createClient({ url: redisUrl })
  const subscriber = createClient({ url: redisUrl })
  await Promise.all([publisher.connect(), subscriber.connect()])
  const context = createResumableStreamContext({ waitUntil: null, publisher, subscriber })
  const sse = (source) => new ReadableStream({
    async pull (controller) {
      const { value, done } = await source.next()
      if (done) {
        controller.enqueue('event: done\ndata: \n\n')
        controller.close()
      } else {
        controller.enqueue(`data: ${value}\n\n`)
      }
    }
  })
  return async (req, res, route, id, url) => {
    const stream = route === 'start'
      ? await context.createNewResumableStream(id, () => sse(tokens(Number(url.searchParams.get('tokens')), Number(url.searchParams.get('paceMs') ?? 0))))
      : await context.resumeExistingStream(id, Number(url.searchParams.get('skip') ?? 0))
    if (!stream) return res.writeHead(422).end()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const reader = stream.getReader()
    res.on('close', () => reader.cancel().catch(() => {}))
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ done: true }))
      if (done) break
      if (!res.write(value)) await new Promise((resolve) => res.once('drain', resolve))
    }
    res.end()
  }
}

async function main () {
  const handle = kind === 'native' ? await nativeSse() : await resumableStream()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    const [, route, id] = url.pathname.split('/')
    if (route === 'stop') {
      generation++
      return res.end()
    }
    handle(req, res, route, id, url)
  })
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', (what) => {
    if (what === 'gc') globalThis.gc()
    const { rss, heapTotal, heapUsed } = process.memoryUsage()
    const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0
    process.send({ rss, heapTotal, heapUsed, young })
  })
}

main()
