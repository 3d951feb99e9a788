'use strict'
// needs: redis-server, curl, openssl

// The examples of the README and docs/ are files in examples/, shown there verbatim, and each one is
// run here with a real client: what users copy is what is tested.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const http2 = require('node:http2')
const { spawn } = require('node:child_process')
const { EventSource } = require('eventsource')
const { selfSignedCert, curl, parseSse, waitFor, rawClient, startExample } = require('./helpers')
const { startRedis } = require('../test-support/redis')

const ROOT = path.join(__dirname, '..')
/** Where each example is shown: the README (the quick start) or the docs it links to. */
const SHOWN_IN = {
  'http.js': 'README.md',
  'express.js': 'README.md',
  'fastify.js': 'README.md',
  'https.js': 'docs/DEPLOYMENT.md',
  'http2.js': 'docs/DEPLOYMENT.md',
  'operations.js': 'docs/OPERATIONS.md',
  'shutdown-express.js': 'docs/OPERATIONS.md',
  'shutdown-fastify.js': 'docs/OPERATIONS.md',
  'cluster.js': 'docs/SCALING.md',
  'hono.js': 'README.md'
}
const shownIn = (file) => fs.readFileSync(path.join(ROOT, SHOWN_IN[file]), 'utf8')

/** Runs an example for the length of `check(url)`, stopping it however `check` ends. */
async function withExample (file, env, check) {
  const { url, stop } = await startExample(file, env)
  try {
    await check(url)
  } finally {
    await stop()
  }
}

/** Connects with the eventsource package and waits for hello and one tick. */
async function helloAndTick (url) {
  const source = new EventSource(url)
  const got = { hello: null, ticks: 0 }
  source.addEventListener('hello', (e) => { got.hello = JSON.parse(e.data) })
  source.addEventListener('tick', () => { got.ticks++ })
  try {
    await waitFor(() => got.hello !== null && got.ticks >= 1, { what: 'hello and a tick', timeoutMs: 5000 })
  } finally {
    source.close()
  }
  return got.hello
}

for (const file of ['http.js', 'express.js', 'fastify.js', 'hono.js', 'https.js', 'http2.js', 'operations.js', 'shutdown-express.js', 'shutdown-fastify.js']) {
  test(`${SHOWN_IN[file]} shows examples/${file} verbatim`, () => {
    const source = fs.readFileSync(path.join(ROOT, 'examples', file), 'utf8')
    assert.ok(shownIn(file).includes('```js\n' + source + '```'), `${SHOWN_IN[file]} must contain examples/${file} as a js block`)
  })
}

test('README.md shows examples/nextjs (next.config.js, lib/hub.js, app/events/route.js) verbatim, as nextjs.test.js runs it', () => {
  const files = ['next.config.js', 'lib/hub.js', 'app/events/route.js'].map((file) => fs.readFileSync(path.join(ROOT, 'examples', 'nextjs', file), 'utf8'))
  assert.ok(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').includes('```js\n' + files.join('\n') + '```'), 'README.md must contain the three files as one js block')
})

test('docs/AUTHORIZATION.md shows the page of examples/who-is-online.html verbatim (who-is-online.test.js runs it in Chromium)', () => {
  const html = fs.readFileSync(path.join(ROOT, 'examples', 'who-is-online.html'), 'utf8')
  const page = html.slice(html.indexOf('<ul id="online"></ul>'))
  assert.ok(fs.readFileSync(path.join(ROOT, 'docs', 'AUTHORIZATION.md'), 'utf8').includes('```html\n' + page + '```'), 'docs/AUTHORIZATION.md must contain the page as an html block')
})

test('examples/http.js streams natively', () => withExample('http.js', {}, async (url) => {
  assert.equal((await helloAndTick(url)).transport, 'native')
}))

test('examples/express.js streams to subscribers', () => withExample('express.js', {}, async (url) => {
  assert.equal(typeof (await helloAndTick(url)).id, 'number')
}))

test('examples/hono.js streams through hub.response(c), natively on Node', () => withExample('hono.js', {}, async (url) => {
  assert.equal((await helloAndTick(url)).transport, 'native')
}))

test('examples/fastify.js streams through reply.sse()', () => withExample('fastify.js', {}, async (url) => {
  assert.equal(typeof (await helloAndTick(url)).id, 'number')
}))

test('examples/https.js streams over TLS through the Node transport', () => {
  const tls = selfSignedCert()
  return withExample('https.js', { TLS_KEY: tls.keyPath, TLS_CERT: tls.certPath }, async (url) => {
    const { stdout } = await curl(['-sN', '--cacert', tls.certPath, '--max-time', '2', url])
    const { events } = parseSse(stdout.toString())
    assert.equal(JSON.parse(events.find((e) => e.event === 'hello').data).transport, 'node')
    assert.ok(events.some((e) => e.event === 'tick'))
  })
})

test('examples/http2.js streams over HTTP/2 to raw streams', () => {
  const tls = selfSignedCert()
  return withExample('http2.js', { TLS_KEY: tls.keyPath, TLS_CERT: tls.certPath }, async (url) => {
    const session = http2.connect(url, { ca: tls.cert })
    try {
      const stream = session.request({ ':path': '/events' })
      let body = ''
      stream.setEncoding('utf8')
      stream.on('data', (d) => { body += d })
      await waitFor(() => parseSse(body).events.some((e) => e.event === 'tick'), { what: 'a tick over HTTP/2', timeoutMs: 5000 })
      const hello = parseSse(body).events.find((e) => e.event === 'hello')
      assert.equal(JSON.parse(hello.data).transport, 'node')
    } finally {
      session.destroy()
    }
  })
})

/**
 * The SIGTERM recipes: a connected client gets its retry: and the final event, an attach
 * meanwhile is answered 503, and the process then exits by itself (nothing left running).
 */
for (const file of ['operations.js', 'shutdown-express.js', 'shutdown-fastify.js']) {
  test(`examples/${file}: SIGTERM closes the streams in stages and the process exits`, async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'examples', file)], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let output = ''
    child.stdout.on('data', (d) => { output += d })
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    try {
      const url = new URL(await waitFor(() => output.match(/listening on (\S+)/)?.[1], { what: `${file} to listen`, timeoutMs: 10_000 }))
      const port = Number(url.port)
      const client = rawClient(port, { path: '/events' })
      await waitFor(() => client.events.some((e) => e.event === 'hello'), { what: 'hello' })
      child.kill('SIGTERM')
      await waitFor(() => client.finishedAt !== null, { what: 'the stream to end', timeoutMs: 10_000 })
      assert.equal(client.events.at(-1).event, 'shutdown')
      assert.equal(client.retries.length, file === 'operations.js' ? 2 : 1, 'the jittered retry: (after the opening one, if any)')
      const { code, signal } = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve({ code: 'still running' }), 15_000))])
      assert.deepEqual({ code, signal }, { code: 0, signal: null })
      if (file === 'operations.js') {
        const logged = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
        assert.deepEqual(logged.map((l) => l.msg), ['sse connect', 'sse disconnect'])
        assert.equal(logged[1].reason, 'server')
        assert.equal(logged[1].events, 2, 'hello and shutdown')
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
}

test('examples/operations.js serves Prometheus metrics', () => withExample('operations.js', {}, async (url) => {
  const metrics = await curl(['-s', url.replace('/events', '/metrics')])
  const text = metrics.stdout.toString()
  assert.match(text, /^# TYPE sse_connections gauge$/m)
  assert.match(text, /^sse_connections_opened_total 0$/m)
}))

test('docs/SCALING.md shows examples/cluster.js verbatim', () => {
  const source = fs.readFileSync(path.join(ROOT, 'examples', 'cluster.js'), 'utf8')
  assert.ok(shownIn('cluster.js').includes('```js\n' + source + '```'), 'docs/SCALING.md must contain examples/cluster.js as a js block')
})

test('examples/cluster.js: three workers, one Redis; a note posted to any worker reaches the clients of every worker with the same id', { timeout: 60_000 }, async () => {
  const redis = await startRedis()
  try {
    await withExample('cluster.js', { WORKERS: '3', REDIS_URL: redis.url }, async (url) => {
      // The primary hands connections to the listening workers in turn; workers listen once
      // their hub is ready, so streams are opened until all three have some.
      const sources = []
      const seen = []
      try {
        const workersSeen = new Set()
        for (let i = 0; i < 30 && (workersSeen.size < 3 || sources.length < 6); i++) {
          const source = new EventSource(url)
          const got = { worker: null, notes: [] }
          source.addEventListener('hello', (e) => { got.worker = JSON.parse(e.data).worker })
          source.addEventListener('note', (e) => got.notes.push({ id: e.lastEventId, data: JSON.parse(e.data) }))
          sources.push(source)
          seen.push(got)
          await waitFor(() => got.worker !== null, { what: 'hello', timeoutMs: 10_000 })
          workersSeen.add(got.worker)
        }
        assert.equal(workersSeen.size, 3, 'streams on all three workers')
        const posters = new Set()
        for (let i = 0; i < 6; i++) {
          const response = await fetch(url.replace('/events', '/publish'), { method: 'POST', body: `note ${i}` })
          assert.equal(response.status, 202)
        }
        await waitFor(() => seen.every((got) => got.notes.length === 6), { what: 'six notes on every stream', timeoutMs: 10_000 })
        assert.ok(seen.every((got) => got.notes.length === 6))
        // Notes posted through different workers are ordered by when Redis numbered them, not
        // by when each POST was answered (a worker answers once the note is in its buffer):
        // every stream gets each note once, and all streams the same sequence.
        for (const got of seen) {
          assert.deepEqual(got.notes.map((n) => n.data.text).sort(), ['note 0', 'note 1', 'note 2', 'note 3', 'note 4', 'note 5'])
          assert.deepEqual(got.notes.map((n) => `${n.id} ${n.data.text}`), seen[0].notes.map((n) => `${n.id} ${n.data.text}`), 'the same sequence and ids on every worker')
          for (const note of got.notes) posters.add(note.data.from)
        }
        assert.ok(posters.size >= 2, `notes posted through ${posters.size} workers reached everyone`)
      } finally {
        for (const source of sources) source.close()
      }
    })
  } finally {
    await redis.close()
  }
})
