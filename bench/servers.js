'use strict'

// The servers `npm run bench` compares, each written the way its README shows, behind one
// shape: `start({ heartbeatMs, tokens })` listens on 127.0.0.1 and resolves to
// `{ port, size(), broadcast(data), backlog(), close() }`.
//
// - `broadcast(data)` sends one event with `data` to every connected client;
// - `backlog()` is what the server holds for its most-behind client that the kernel has not
//   taken yet, in bytes (native-sse: its slowest reader's lag);
// - `tokens` (a count) turns each connection into a per-client token stream of that many
//   events, through the library's own per-client API, waiting for the client where it can;
//   with `loop: true`, as the obvious loop writes it: one call per token, the producer
//   yielding to the event loop every LOOP_YIELD_EVERY tokens (an LLM SDK's stream hands over
//   a few at a time), waiting only where the call says to.

const http = require('node:http')
const { once } = require('node:events')
const { frame } = require('./events')

/** Microseconds since the Unix epoch, the clock the load client reads. */
const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
/** `<sequence> <publish time µs>` padded to `bytes`: what the load client checks and times. */
const payload = (seq, bytes) => `${seq} ${nowMicros()} `.padEnd(bytes, 'x')
function * tokens (count) {
  for (let seq = 0; seq < count; seq++) yield payload(seq, 20)
}
const LOOP_YIELD_EVERY = 1000
const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve))

async function listen (server, backlog = undefined) {
  server.maxConnections = 100_000
  server.listen({ port: 0, host: '127.0.0.1', backlog })
  await once(server, 'listening')
  return server.address().port
}

function mostUnwritten (responses) {
  let bytes = 0
  for (const res of responses) if (res.writableLength > bytes) bytes = res.writableLength
  return bytes
}

/**
 * native-sse served from `from` (this checkout by default; `NATIVE_SSE_BASELINE`, a checkout
 * of another commit with its addon built, for a before/after comparison in one run).
 */
function nativeSse (transport, from = '..', hubOptions = {}, { traced = false, route = false } = {}) {
  return async ({ heartbeatMs, tokens: count, loop }) => {
    const { createHub } = require(from)
    const hub = createHub({ heartbeatMs, ...hubOptions })
    // An observer of every publish and its delivery, as an APM agent would be (publish-trace.js).
    if (traced) traceEveryPublish()
    const server = http.createServer(async (req, res) => {
      const client = hub.attach(req, res, { transport })
      if (count && !loop) client.stream(tokens(count))
      if (count && loop) {
        let seq = 0
        for (const data of tokens(count)) {
          if (!client.send({ data }) && !client.closed) await client.drain().catch(() => {})
          if (++seq % LOOP_YIELD_EVERY === 0) await yieldToEventLoop()
        }
      }
    })
    const port = await listen(server)
    // New connections for '/' served from the connection up (the route's own path).
    const served = route ? hub.route(server, '/') : null
    return {
      port,
      size: () => hub.size,
      routeCounts: () => served?.counts,
      broadcast: (data, named) => hub.broadcast({ ...named, data }),
      backlog: () => hub.metrics().lag.bytes,
      /** The most the slowest reader of a log was behind: what the log had to keep. */
      logPeakBytes: () => hub.metrics().lag.maxBytes,
      /** Plain bytes encoded for gzip clients, and what they became. */
      compression: () => hub.metrics().compression,
      /** The hub's metrics, for a run that went wrong (why its clients closed). */
      metrics: () => hub.metrics(),
      close: async () => { await hub.close(); server.close() }
    }
  }
}

/** Subscribes to the `native-sse:publish` TracingChannel, counting deliveries. */
function traceEveryPublish () {
  let delivered = 0
  const noop = () => {}
  require('node:diagnostics_channel').tracingChannel('native-sse:publish').subscribe({
    start: noop, end: noop, asyncStart: noop, error: noop, asyncEnd: () => { delivered++ }
  })
  return () => delivered
}

/**
 * native-sse with Redis (bench/scenarios/cross.js starts three of these on one namespace):
 * what one broadcasts reaches the clients of all. Backlog also counts what waits for Redis.
 */
async function nativeSseRedis ({ heartbeatMs, redisUrl, prefix }) {
  const { createHub } = require('..')
  const hub = createHub({ heartbeatMs, redis: { url: redisUrl, prefix } })
  await hub.ready()
  const server = http.createServer((req, res) => { hub.attach(req, res) })
  return {
    port: await listen(server),
    size: () => hub.size,
    broadcast: (data) => hub.broadcast({ data }),
    backlog: () => {
      const { lag, redis } = hub.metrics()
      return Math.max(lag.bytes, redis.buffered.bytes)
    },
    close: async () => { await hub.close(); server.close() }
  }
}

/** A plain `node:http` server: a `Set` of responses, one frame written to each per event. */
async function plainHttp ({ heartbeatMs, tokens: count, loop, backlog }) {
  const streams = new Set()
  const server = http.createServer(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    if (count) {
      let seq = 0
      for (const data of tokens(count)) {
        if (!res.write(`data: ${data}\n\n`)) await once(res, 'drain')
        if (loop && ++seq % LOOP_YIELD_EVERY === 0) await yieldToEventLoop()
      }
      return
    }
    streams.add(res)
    res.on('close', () => streams.delete(res))
  })
  const heartbeat = setInterval(() => { for (const res of streams) res.write(':\n\n') }, heartbeatMs)
  return {
    port: await listen(server, backlog),
    size: () => streams.size,
    broadcast: (data) => {
      const frame = `data: ${data}\n\n`
      for (const res of streams) res.write(frame)
    },
    backlog: () => mostUnwritten(streams),
    close: async () => { clearInterval(heartbeat); server.closeAllConnections(); server.close() }
  }
}

/**
 * The bounds of anything run inside a `node:http` request handler, as attach() is: Node has
 * accepted the connection, parsed the request and built `req` and `res` before any handler
 * runs. `keep: true` answers with the least a handler can do (the head and one comment in a
 * single socket write, the response kept): no handler accepts a wave faster. `keep: false`
 * writes the same and closes the connection, keeping nothing: no handler leaves less memory
 * after a burst. Both listen with the accept queue attach() gives its server, so neither loses
 * handshakes to Node's default of 511. Wave scenario only: neither serves events.
 */
function handlerBound ({ keep }) {
  const HEAD = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n' +
    'connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n3\r\n:\n\n\r\n', 'latin1')
  return async () => {
    const streams = new Set()
    let answered = 0
    const server = http.createServer((req, res) => {
      answered++
      res.socket.write(HEAD)
      if (!keep) return res.socket.destroy()
      streams.add(res)
      res.on('close', () => streams.delete(res))
    })
    return {
      port: await listen(server, 4096),
      // Kept: those open. Closed at once: those answered, for the wave to count its heads by.
      size: () => keep ? streams.size : answered,
      broadcast: () => { throw new Error('a handler bound serves no events (wave scenario only)') },
      backlog: () => 0,
      close: async () => { server.closeAllConnections(); server.close() }
    }
  }
}

/**
 * node:http with a gzip stream per response (Node's zlib at its defaults), flushed after each
 * event so the client gets it at once: what the `compression` middleware or a proxy's gzip
 * amounts to on an event stream, the way it is fixed when it stalls. A sync flush, its best
 * case: the middleware's `res.flush()` is zlib's default full flush, which forgets the window
 * after every event and leaves ~90% of the bytes.
 */
async function perConnectionGzip ({ heartbeatMs }) {
  const zlib = require('node:zlib')
  const streams = new Map()
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'content-encoding': 'gzip' })
    const gzip = zlib.createGzip()
    gzip.pipe(res)
    streams.set(res, gzip)
    res.on('close', () => { streams.delete(res); gzip.destroy() })
    gzip.write(':\n\n')
    gzip.flush(zlib.constants.Z_SYNC_FLUSH)
  })
  const write = (text) => {
    for (const gzip of streams.values()) {
      gzip.write(text)
      gzip.flush(zlib.constants.Z_SYNC_FLUSH)
    }
  }
  const heartbeat = setInterval(() => write(':\n\n'), heartbeatMs)
  return {
    port: await listen(server),
    size: () => streams.size,
    broadcast: (data, named) => write(named ? frame({ ...named, data }) : `data: ${data}\n\n`),
    // What waits in the response and in zlib ahead of it.
    backlog: () => {
      let bytes = 0
      for (const [res, gzip] of streams) bytes = Math.max(bytes, res.writableLength + gzip.writableLength)
      return bytes
    },
    close: async () => { clearInterval(heartbeat); server.closeAllConnections(); server.close() }
  }
}

/** Express 5 + better-sse: a session per request, registered on one channel. */
async function betterSse ({ heartbeatMs, tokens: count }) {
  const express = require('express')
  const { createSession, createChannel } = require('better-sse')
  const channel = createChannel()
  const responses = new Set()
  const app = express()
  app.get('/', async (req, res) => {
    const session = await createSession(req, res, { keepAlive: heartbeatMs })
    if (count) {
      // better-sse has no way to wait for a slow client: iterate() pushes as fast as it runs.
      await session.iterate(tokens(count))
      return
    }
    responses.add(res)
    res.on('close', () => responses.delete(res))
    channel.register(session)
  })
  const server = http.createServer(app)
  return {
    port: await listen(server),
    size: () => channel.sessionCount,
    broadcast: (data) => channel.broadcast(data),
    backlog: () => mostUnwritten(responses),
    close: async () => { server.closeAllConnections(); server.close() }
  }
}

/** Fastify 5 + @fastify/sse: an `sse` route kept alive, each reply in a `Set`. */
async function fastifySse ({ heartbeatMs, tokens: count }) {
  const fastify = require('fastify')({ logger: false })
  await fastify.register(require('@fastify/sse'), { heartbeatInterval: heartbeatMs })
  const replies = new Set()
  const responses = new Set()
  fastify.get('/', { sse: 'only' }, async (request, reply) => {
    if (count) {
      await reply.sse.send((async function * () { for (const data of tokens(count)) yield { data } })())
      return
    }
    reply.sse.keepAlive()
    reply.sse.sendHeaders()
    reply.raw.flushHeaders()
    replies.add(reply)
    responses.add(reply.raw)
    reply.sse.onClose(() => { replies.delete(reply); responses.delete(reply.raw) })
  })
  fastify.server.maxConnections = 100_000
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: fastify.server.address().port,
    size: () => replies.size,
    broadcast: (data) => { for (const reply of replies) reply.sse.send({ data }).catch(() => {}) },
    backlog: () => mostUnwritten(responses),
    close: async () => { fastify.server.closeAllConnections(); await fastify.close() }
  }
}

/**
 * A Hono app listening like the others: on Bun.serve and Deno.serve when the server runs under
 * Bun or Deno (SERVERS[kind].runtime), on @hono/node-server under Node. `server.stop()`.
 */
async function honoListen (app) {
  if (typeof globalThis.Bun !== 'undefined') {
    // idleTimeout 0: no cut of a quiet stream, whichever library serves it.
    const server = globalThis.Bun.serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1', idleTimeout: 0 })
    return { port: server.port, stop: () => server.stop(true) }
  }
  if (typeof globalThis.Deno !== 'undefined') {
    const server = globalThis.Deno.serve({ port: 0, hostname: '127.0.0.1', onListen () {} }, app.fetch)
    return { port: server.addr.port, stop: () => server.shutdown() }
  }
  const { serve } = require('@hono/node-server')
  let server
  const port = await new Promise((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port))
  })
  server.maxConnections = 100_000
  return { port, stop: () => { server.closeAllConnections(); server.close() } }
}

/**
 * native-sse under Hono: hub.response(c), served natively from Node's own response, or with
 * `raw` hub.response(c.req.raw), the Fetch transport's Response body (as on Bun and Deno).
 */
const honoNative = (raw, from = '..') => async ({ heartbeatMs, tokens: count, loop }) => {
  const { Hono } = require('hono')
  const { createHub } = require(from)
  const hub = createHub({ heartbeatMs })
  const app = new Hono()
  app.get('/', (c) => hub.response(raw ? c.req.raw : c, (client) => {
    if (!count) return
    if (!loop) return void client.stream(tokens(count))
    ;(async () => {
      let seq = 0
      for (const data of tokens(count)) {
        if (!client.send({ data }) && !client.closed) await client.drain().catch(() => {})
        if (++seq % LOOP_YIELD_EVERY === 0) await yieldToEventLoop()
      }
    })()
  }))
  const { stop, port } = await honoListen(app)
  return {
    port,
    size: () => hub.size,
    broadcast: (data) => hub.broadcast({ data }),
    backlog: () => hub.metrics().lag.bytes,
    close: async () => { await hub.close(); await stop() }
  }
}

/**
 * Hono's own streamSSE: a per-connection writer, each in a `Set`. Its writes are promises;
 * what is not written yet is counted per stream, in bytes, as its backlog.
 */
async function honoStreamSse ({ heartbeatMs, tokens: count }) {
  const { Hono } = require('hono')
  const { streamSSE } = require('hono/streaming')
  const streams = new Map()
  const app = new Hono()
  app.get('/', (c) => streamSSE(c, async (stream) => {
    if (count) {
      for (const data of tokens(count)) await stream.writeSSE({ data })
      return
    }
    streams.set(stream, 0)
    stream.onAbort(() => streams.delete(stream))
    // A comment first, as native-sse opens: Bun.serve sends no head before the first bytes.
    await stream.write(':\n\n')
    while (!stream.aborted && !stream.closed) {
      await stream.sleep(heartbeatMs)
      await stream.write(':\n\n')
    }
  }))
  const { stop, port } = await honoListen(app)
  return {
    port,
    size: () => streams.size,
    broadcast: (data) => {
      const bytes = data.length + 8
      for (const stream of streams.keys()) {
        streams.set(stream, streams.get(stream) + bytes)
        stream.writeSSE({ data }).then(() => streams.has(stream) && streams.set(stream, streams.get(stream) - bytes), () => {})
      }
    },
    backlog: () => Math.max(0, ...streams.values()),
    close: async () => { await stop() }
  }
}

/** better-sse's Fetch adapter under Hono: createResponse(request, callback), one channel. */
async function betterSseFetch ({ heartbeatMs, tokens: count }) {
  const { Hono } = require('hono')
  const { createResponse, createChannel } = require('better-sse')
  const channel = createChannel()
  const responses = new Set()
  const app = new Hono()
  app.get('/', (c) => createResponse(c.req.raw, { keepAlive: heartbeatMs }, async (session) => {
    if (count) return void session.iterate(tokens(count))
    const res = c.env.outgoing
    responses.add(res)
    res.on('close', () => responses.delete(res))
    channel.register(session)
  }))
  const { stop, port } = await honoListen(app)
  return {
    port,
    size: () => channel.sessionCount,
    broadcast: (data) => channel.broadcast(data),
    // What the Node responses under Hono hold; what waits in the adapter's ReadableStream
    // before them is not visible from outside, so this understates it.
    backlog: () => mostUnwritten(responses),
    close: async () => { await stop() }
  }
}

const SERVERS = {
  native: { name: 'native-sse', start: nativeSse('native') },
  'node-transport': { name: 'native-sse, Node transport', start: nativeSse('node') },
  // hub.route(server, path): new connections to the path taken before Node parses them (the
  // wave scenario's; a stream is then the same as attach()'s).
  'native-route': { name: 'native-sse, hub.route()', start: nativeSse('native', '..', {}, { route: true }) },
  // The same server with V8's young generation held to 1 MiB semi-spaces: what an operator
  // who watches memory in reconnect waves can choose (docs/OPERATIONS.md). Runs only in the
  // memory scenarios.
  'native-small-young': { name: 'native-sse, --max-semi-space-size=1', start: nativeSse('native'), nodeFlags: ['--max-semi-space-size=1'] },
  http: { name: 'node:http Set of res', start: plainHttp },
  // The same with the accept queue hub.route() gives its server (the most the system allows,
  // 4096 here, against Node's 511): what of the route's wave figures is the queue alone.
  'http-backlog': { name: 'node:http, listen backlog 4096', start: (config) => plainHttp({ ...config, backlog: 4096 }) },
  // What no handler inside Node's request path can beat, attach() included (wave scenario).
  'http-floor': { name: 'node:http, head in one socket write', start: handlerBound({ keep: true }) },
  'http-drop': { name: 'node:http, head then close', start: handlerBound({ keep: false }) },
  // The compression scenario's: a compressing hub, and per-connection gzip beside it.
  // With V8's young generation held small, as native-small-young (its uncompressed twin here):
  // a connect burst grows the young generation by a different amount from run to run (0.3 to
  // 3 KB per client at 10,000), more than a gzip stream's state.
  // The same hub with a subscriber to the publish trace: what tracing costs (bench only when
  // named: `--servers native,native-traced`).
  'native-traced': { name: 'native-sse, publish traced', start: nativeSse('native', '..', {}, { traced: true }) },
  'native-gzip': { name: 'native-sse, compression: true', start: nativeSse('native', '..', { compression: true }), nodeFlags: ['--max-semi-space-size=1'] },
  'http-gzip': { name: 'node:http + zlib gzip per response', start: perConnectionGzip },
  'better-sse': { name: 'Express 5 + better-sse', start: betterSse },
  'fastify-sse': { name: 'Fastify 5 + @fastify/sse', start: fastifySse },
  'hono-native': { name: 'Hono + native-sse (hub.response(c))', start: honoNative(false) },
  'hono-fetch': { name: 'Hono + native-sse Fetch body (c.req.raw)', start: honoNative(true) },
  'hono-sse': { name: 'Hono streamSSE', start: honoStreamSse },
  'better-sse-fetch': { name: 'Hono + better-sse Fetch adapter', start: betterSseFetch },
  // The same Hono apps on Bun.serve and Deno.serve (no Node response there: hub.response(c)
  // is the Fetch transport's body), each server in a process of that runtime.
  'bun-hono-native': { name: 'Bun + Hono + native-sse', start: honoNative(false), runtime: 'bun' },
  'bun-hono-sse': { name: 'Bun + Hono streamSSE', start: honoStreamSse, runtime: 'bun' },
  'deno-hono-native': { name: 'Deno + Hono + native-sse', start: honoNative(false), runtime: 'deno' },
  'deno-hono-sse': { name: 'Deno + Hono streamSSE', start: honoStreamSse, runtime: 'deno' }
}

/**
 * Bun's and Deno's executables, where the suite installs them (`node __test__/runtimes/install.js`,
 * which `npm test` runs); a server of a runtime not installed is left out of the run.
 */
const RUNTIME_DIR = require('node:path').join(__dirname, '..', '__test__', 'runtimes', 'node_modules')
const RUNTIMES = {
  bun: { bin: require('node:path').join(RUNTIME_DIR, '@oven', `bun-linux-${process.arch}`, 'bin', 'bun'), args: [] },
  deno: { bin: require('node:path').join(RUNTIME_DIR, '@deno', `linux-${process.arch}-glibc`, 'deno'), args: ['run', '--unstable-detect-cjs', '--allow-net', '--allow-read', '--allow-ffi', '--allow-env', '--allow-sys'] }
}
const runtimeInstalled = (kind) => !SERVERS[kind].runtime || require('node:fs').existsSync(RUNTIMES[SERVERS[kind].runtime].bin)

/** Servers of the cross-process scenario only (not a column of the main table). */
// `--servers native,baseline` with NATIVE_SSE_BASELINE=/path/to/checkout compares two builds.
if (process.env.NATIVE_SSE_BASELINE) {
  const from = process.env.NATIVE_SSE_BASELINE
  SERVERS.baseline = { name: `native-sse at ${from}`, start: nativeSse('native', from) }
  SERVERS['baseline-route'] = { name: `native-sse, hub.route() at ${from}`, start: nativeSse('native', from, {}, { route: true }) }
  // The Fetch body of the other build, under Hono on Node, Bun and Deno.
  SERVERS['baseline-hono-fetch'] = { name: `Hono + c.req.raw at ${from}`, start: honoNative(true, from) }
  // c.req.raw on Bun and Deno too: there it is what hub.response(c) serves, and a build from
  // before hub.response() took a Hono context takes only the Request.
  SERVERS['baseline-bun-hono-native'] = { name: `Bun + Hono at ${from}`, start: honoNative(true, from), runtime: 'bun' }
  SERVERS['baseline-deno-hono-native'] = { name: `Deno + Hono at ${from}`, start: honoNative(true, from), runtime: 'deno' }
}

const CROSS_PROCESS_SERVERS = {
  'native-redis': { name: 'native-sse + Redis', start: nativeSseRedis }
}

/** Fetch API servers: compared in the fan-out and token scenarios only. */
const FETCH_KINDS = ['hono-native', 'hono-fetch', 'hono-sse', 'better-sse-fetch', 'bun-hono-native', 'bun-hono-sse', 'deno-hono-native', 'deno-hono-sse']
// The other build's Fetch servers go where these go (not in the slow-consumer scenario, whose
// peak RSS Deno does not let a server read without --allow-all).
FETCH_KINDS.push(...Object.keys(SERVERS).filter((kind) => kind.startsWith('baseline-')))

module.exports = { SERVERS, CROSS_PROCESS_SERVERS, FETCH_KINDS, RUNTIMES, runtimeInstalled, payload }
