'use strict'

// Real servers on 127.0.0.1, real clients. Every wait is bounded in time (the address and the
// wait come from test-support/loopback.js, which the service starters share).

const http = require('node:http')
const net = require('node:net')
const fs = require('node:fs')
const { execFile, spawn } = require('node:child_process')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const { createParser } = require('eventsource-parser')
const { HOST, sleep, waitFor } = require('../test-support/loopback')

/** Every behaviour suite runs against both transports; Windows sockets have no fd to hand
 *  over, so there only the Node transport exists (the release workflow runs suites there). */
const TRANSPORTS = process.platform === 'win32' ? ['node'] : ['native', 'node']

/** Starts a node:http server with `handler` on an ephemeral loopback port. */
async function startHttp (handler, serverOptions = {}) {
  const server = http.createServer(serverOptions, handler)
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  return withUrl(server)
}

/**
 * A node:http app server for hub.route() tests: `handler` answers what the route does not
 * (default `app <method> <url>`); counts the connections Node itself accepted ('connection'),
 * which the front door's never are. `listenOn`: listen()'s options (a Unix socket path too).
 */
async function routedApp ({ handler = (req, res) => res.end(`app ${req.method} ${req.url}`), serverOptions = {}, listenOn = { port: 0, host: HOST } } = {}) {
  const server = http.createServer(serverOptions, handler)
  let nodeConnections = 0
  server.on('connection', () => { nodeConnections++ })
  await new Promise((resolve) => server.listen(listenOn, resolve))
  const port = server.address()?.port
  return {
    server,
    port,
    url: `http://${HOST}:${port}`,
    nodeConnections: () => nodeConnections,
    close: () => new Promise((resolve) => { server.close(resolve); server.closeAllConnections() })
  }
}

function withUrl (server) {
  const { port } = server.address()
  return {
    server,
    port,
    url: `http://${HOST}:${port}`,
    close: () => new Promise((resolve) => {
      server.close(() => resolve())
      if (server.closeAllConnections) server.closeAllConnections()
    })
  }
}

/** Resolves with the first emission of `event`, or rejects after `timeoutMs`. */
function once (emitter, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs)
    emitter.once(event, (...args) => {
      clearTimeout(timer)
      resolve(args.length > 1 ? args : args[0])
    })
  })
}

/**
 * A raw TCP client speaking just enough HTTP/1.1 to open a stream. It de-chunks the body and
 * feeds it to eventsource-parser, so tests see events and comments exactly as a spec parser
 * does, plus the raw bytes. With `paced: true` it reads nothing by itself: each
 * `client.readSome(maxBytes)` takes up to that much, so a test sets how fast it reads.
 */
function rawClient (port, { path = '/', headers = {}, method = 'GET', http10 = false, paced = false } = {}) {
  const socket = net.connect(port, HOST)
  const client = {
    socket,
    raw: Buffer.alloc(0),
    head: null,
    events: [],
    comments: [],
    /** `retry:` values, in order. */
    retries: [],
    /** Body bytes after de-chunking. */
    bodyBytes: 0,
    ended: false,
    sawLastChunk: false,
    /** performance.now() when the body ended (last chunk, FIN or close), else null. */
    finishedAt: null,
    end: () => socket.end(),
    reset: () => socket.resetAndDestroy()
  }
  const parser = createParser({
    onEvent: (event) => client.events.push(event),
    onComment: (comment) => client.comments.push(comment),
    onRetry: (ms) => client.retries.push(ms)
  })
  const finished = () => { client.finishedAt ??= performance.now() }
  let body = Buffer.alloc(0)
  let chunked = false
  const decoder = new TextDecoder()
  const feed = () => {
    if (!chunked) {
      client.bodyBytes += body.length
      parser.feed(decoder.decode(body, { stream: true }))
      body = Buffer.alloc(0)
      return
    }
    for (;;) {
      const lineEnd = body.indexOf('\r\n')
      if (lineEnd < 0) return
      const size = parseInt(body.subarray(0, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        client.sawLastChunk = true
        finished()
        body = Buffer.alloc(0)
        return
      }
      if (body.length < lineEnd + 2 + size + 2) return
      client.bodyBytes += size
      parser.feed(decoder.decode(body.subarray(lineEnd + 2, lineEnd + 2 + size), { stream: true }))
      body = body.subarray(lineEnd + 2 + size + 2)
    }
  }
  const onData = (data) => {
    client.raw = Buffer.concat([client.raw, data])
    if (client.head === null) {
      const at = client.raw.indexOf('\r\n\r\n')
      if (at < 0) return
      client.head = client.raw.subarray(0, at).toString('latin1')
      chunked = /\r\ntransfer-encoding: chunked/i.test(client.head)
      body = client.raw.subarray(at + 4)
    } else {
      body = Buffer.concat([body, data])
    }
    feed()
  }
  if (paced) {
    // Non-flowing: Node stops reading from the kernel once its small buffer is full.
    client.readSome = (maxBytes) => {
      let taken = 0
      while (taken < maxBytes) {
        // read(n): exactly what is asked, where read() would take all Node holds.
        const want = Math.min(maxBytes - taken, socket.readableLength)
        const chunk = want > 0 ? socket.read(want) : null
        if (chunk === null) break
        taken += chunk.length
        onData(chunk)
      }
      return taken
    }
    client.readAll = () => socket.on('data', onData)
  } else {
    socket.on('data', onData)
  }
  socket.on('end', () => { client.ended = true; finished() })
  socket.on('close', () => { client.ended = true; finished() })
  socket.on('error', () => {})
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  socket.write(`${method} ${path} HTTP/1.${http10 ? 0 : 1}\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`)
  client.connected = once(socket, 'connect')
  return client
}

/**
 * Starts examples/`file` on an ephemeral port (PORT=0, plus `env`); resolves once it prints
 * `listening on <url>`, with that URL and a stop function (SIGTERM, resolves at its exit).
 */
async function startExample (file, env = {}, { timeoutMs = 10_000 } = {}) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file)], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', resolve)
    child.kill('SIGTERM')
  })
  try {
    const url = await waitFor(() => output.match(/listening on (\S+)/)?.[1], { what: `${file} to listen`, timeoutMs })
    return { url, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** Runs curl, resolving with its exit code and output (never rejects on a non-zero exit). */
function curl (args, timeoutMs = 10_000) {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' },
      (error, stdout, stderr) => {
        resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr: stderr.toString() })
      })
  })
}

/** `promtool check metrics` on `text`: its exit code and what it printed. */
function promtool (text) {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, output: `${stdout}${stderr}` })
    })
    child.stdin.end(text)
  })
}

/** Parses an SSE body with eventsource-parser. */
function parseSse (text) {
  const events = []
  const comments = []
  const parser = createParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c) })
  parser.feed(text)
  return { events, comments }
}

let certificate = null

/** A self-signed certificate for 127.0.0.1, made once per process with the openssl CLI. */
function selfSignedCert () {
  if (certificate !== null) return certificate
  const os = require('node:os')
  const path = require('node:path')
  const { execFileSync } = require('node:child_process')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-cert-'))
  const keyPath = path.join(dir, 'key.pem')
  const certPath = path.join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  certificate = { key: fs.readFileSync(keyPath, 'utf8'), cert: fs.readFileSync(certPath, 'utf8'), keyPath, certPath }
  return certificate
}

/** A TCP proxy in front of `port` whose connections the test can cut, with RST or FIN. */
async function cuttingProxy (port) {
  const pairs = new Set()
  let opened = 0
  const server = net.createServer((downstream) => {
    opened++
    const upstream = net.connect(port, HOST)
    const pair = { downstream, upstream }
    pairs.add(pair)
    downstream.pipe(upstream)
    upstream.pipe(downstream)
    const forget = () => {
      pairs.delete(pair)
      downstream.destroy()
      upstream.destroy()
    }
    downstream.on('error', forget)
    upstream.on('error', forget)
    downstream.on('close', forget)
    upstream.on('close', forget)
  })
  await new Promise((resolve) => server.listen(0, HOST, resolve))
  return {
    url: `http://${HOST}:${server.address().port}`,
    opened: () => opened,
    cut (how) {
      for (const { downstream, upstream } of pairs) {
        if (how === 'rst') {
          downstream.resetAndDestroy()
          upstream.resetAndDestroy()
        } else {
          downstream.end()
          upstream.end()
        }
      }
    },
    close: () => new Promise((resolve) => {
      for (const { downstream, upstream } of pairs) {
        downstream.destroy()
        upstream.destroy()
      }
      server.close(resolve)
    })
  }
}

/**
 * Clients in another process (bench/load-clients.js): `count` connections to `port` that
 * parse every stream and check each client's sequence (loss, repeats, order). `pace`
 * ('bytes:ms') makes each read slowly, in bursts, until `readAll()`.
 */
function loadClients (port, count, { pace } = {}) {
  const { fork } = require('node:child_process')
  const path = require('node:path')
  const env = pace === undefined ? process.env : { ...process.env, LOAD_PACE: pace }
  const child = fork(path.join(__dirname, '..', 'bench', 'load-clients.js'), [String(port), String(count)], { env })
  return {
    report: () => new Promise((resolve) => { child.once('message', resolve); child.send('report') }),
    readAll: () => child.send('read-all'),
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.send('exit') })
  }
}

/**
 * A hub linked to Redis (`redis` options), the 'backend' events it emits, a node:http server
 * attaching every request with `attach` options, and one client that has its stream (`raw`,
 * native-sse/testing's openStream); resolves once `hub.ready()` did. `close()` ends hub and
 * server.
 */
async function linkedHub (redis, { attach, ...options } = {}) {
  const { createHub } = require('..')
  const { openStream } = require('../lib/testing')
  const hub = createHub({ heartbeatMs: 60_000, ...options, redis })
  const backend = []
  hub.on('backend', (event) => backend.push(event))
  const http = await startHttp((req, res) => hub.attach(req, res, attach))
  await hub.ready()
  const raw = await openStream(http.server, { timeoutMs: 10_000 })
  return { hub, backend, http, raw, close: async () => { await hub.close(); await http.close() } }
}

/** A Hono app on @hono/node-server at 127.0.0.1: `{ server, port, url, close() }`. */
async function listenHono (app) {
  const { serve } = require('@hono/node-server')
  let server
  const port = await new Promise((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: HOST }, (info) => resolve(info.port))
  })
  return {
    server,
    port,
    url: `http://${HOST}:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.()
      server.close(() => resolve())
    })
  }
}

/**
 * How `stream` (native-sse/testing's openStream) ended, `'end'`, `'reset'` or `'client'`: its
 * `closed`, bounded by `timeoutMs`.
 */
function ended (stream, timeoutMs = 10_000) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the stream did not end within ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([stream.closed, timeout]).finally(() => clearTimeout(timer))
}

function openFdCount () {
  return fs.readdirSync('/proc/self/fd').length
}

/** What each of this process's fds refers to (`socket:[inode]`, a path, ...), for diagnostics. */
function openFdTargets () {
  const targets = new Map()
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try { targets.set(fd, fs.readlinkSync(`/proc/self/fd/${fd}`)) } catch {}
  }
  return targets
}

/** The fds open now that were not open (to the same thing) in `before`, as "fd -> target". */
function fdsOpenedSince (before) {
  return [...openFdTargets()].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`)
}

/**
 * What the test's code writes with console.error (the hub's word on a failed answer), kept
 * instead of printed: each call's arguments, in order. Restored when the test ends.
 */
function consoleErrors (t) {
  const errors = []
  const saved = console.error
  console.error = (...args) => errors.push(args)
  t.after(() => { console.error = saved })
  return errors
}

module.exports = { consoleErrors, routedApp, ended, listenHono, linkedHub, startExample, promtool, loadClients, cuttingProxy, selfSignedCert, HOST, TRANSPORTS, startHttp, withUrl, waitFor, sleep, once, rawClient, curl, parseSse, openFdCount, openFdTargets, fdsOpenedSince }
