'use strict'
// needs: next

// examples/nextjs (an App Router route handler that returns hub.response(request), and a POST
// that publishes, on one hub from sharedHub()) built with `next build` and served by `next
// start`, and served by `next dev` while its hub module is edited: Next.js 16 from
// __test__/runtimes (installed by .ci/run). native-sse goes into that node_modules as an
// installed package would be (its files, and this build's addon), because Next.js loads
// packages named in serverExternalPackages from node_modules at run time, and bundles anything
// else.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { rawClient, waitFor } = require('./helpers')

const ROOT = path.join(__dirname, '..')
const RUNTIMES = path.join(__dirname, 'runtimes')
const NEXT = path.join(RUNTIMES, 'node_modules', 'next', 'dist', 'bin', 'next')
const APP = path.join(RUNTIMES, 'app-next')

/** native-sse as npm would install it: the package's files and the addon for this platform. */
function installPackage () {
  const target = path.join(RUNTIMES, 'node_modules', 'native-sse')
  fs.rmSync(target, { recursive: true, force: true })
  fs.mkdirSync(target, { recursive: true })
  const addon = fs.readdirSync(ROOT).find((f) => /^native-sse\..+\.node$/.test(f))
  assert.ok(addon, 'the addon is built (npm install)')
  for (const file of ['package.json', 'index.js', 'binding.js', 'lib', addon]) {
    fs.cpSync(path.join(ROOT, file), path.join(target, file), { recursive: true })
  }
}

/** The example app, fresh, in APP, with native-sse installed beside it. */
function prepareApp () {
  assert.ok(fs.existsSync(NEXT), `Next.js not found at ${NEXT}: install it with \`node __test__/runtimes/install.js\` (.ci/run does)`)
  installPackage()
  fs.rmSync(APP, { recursive: true, force: true })
  fs.cpSync(path.join(ROOT, 'examples', 'nextjs'), APP, { recursive: true })
}

function freePort () {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function run (args, { timeoutMs, until }) {
  const child = spawn(process.execPath, [NEXT, ...args], { cwd: APP, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  }
  let timer
  const ready = until === undefined
    ? Promise.race([exited, new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`next ${args[0]} took over ${timeoutMs} ms: ${output}`)), timeoutMs)
    })]).finally(() => clearTimeout(timer))
    : waitFor(() => until.test(output) || child.exitCode !== null, { what: () => `next ${args[0]} (${output})`, timeoutMs })
  return { ready, stop, output: () => output, child }
}

/** POST /events: publishes the body as a `news` event; resolves with the status and the JSON. */
async function publish (port, data) {
  const response = await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', body: data })
  const text = await response.text()
  let body
  try { body = JSON.parse(text) } catch { body = text }
  return { status: response.status, body }
}

const newsOf = (client) => client.events.filter((e) => e.event === 'news').map((e) => e.data)

test('Next.js: a route handler returning hub.response() streams under next start, and a POST route publishes to it', { timeout: 600_000 }, async () => {
  prepareApp()
  const build = run(['build'], { timeoutMs: 300_000 })
  const code = await build.ready
  assert.equal(code, 0, `next build failed:\n${build.output()}`)
  assert.match(build.output(), /ƒ \/events/, 'the route is dynamic (server-rendered on demand)')

  const port = await freePort()
  const server = run(['start', '-p', String(port), '-H', '127.0.0.1'], { timeoutMs: 30_000, until: /Ready in/ })
  try {
    await server.ready
    assert.equal(server.child.exitCode, null, server.output())
    const client = rawClient(port, { path: '/events' })
    await waitFor(() => client.events.length >= 1, { what: () => `the hello (${server.output()})`, timeoutMs: 15_000 })
    assert.match(client.head, /^HTTP\/1\.1 200/)
    assert.match(client.head, /content-type: text\/event-stream; charset=utf-8/i)
    assert.match(client.head, /cache-control: no-cache, no-transform/i)
    assert.equal(client.events[0].event, 'hello')
    assert.equal(JSON.parse(client.events[0].data).transport, 'fetch')
    for (const data of ['one', 'two']) {
      assert.deepEqual(await publish(port, data), { status: 200, body: { delivered: 1 } })
    }
    await waitFor(() => newsOf(client).length >= 2, { what: () => `two news events (${client.raw})`, timeoutMs: 15_000 })
    assert.deepEqual(newsOf(client), ['one', 'two'], 'published events arrive in order, live')
    client.end()
  } finally {
    await server.stop()
  }
})

// Under `next dev` an edit evaluates the edited module (and those importing it) again in the
// same process: a module-level createHub() there made a second hub, and a publish after the
// edit reached nobody (delivered 0) while the stream open on the first hub heard nothing.
// Next.js 16's `next dev` bundles with Turbopack; `--webpack` is the other one apps use.
for (const [bundler, flags] of [['Turbopack', []], ['webpack', ['--webpack']]]) {
  test(`Next.js: under next dev (${bundler}), a publish after the hub module is edited reaches the stream opened before the edit; an edit to its options is refused loudly`, { timeout: 600_000 }, async () => {
    prepareApp()
    const hubFile = path.join(APP, 'lib', 'hub.js')
    const port = await freePort()
    const server = run(['dev', ...flags, '-p', String(port), '-H', '127.0.0.1'], { timeoutMs: 120_000, until: /Ready in/ })
    try {
      await server.ready
      assert.equal(server.child.exitCode, null, server.output())
      assert.match(server.output(), new RegExp(`Next\\.js [\\d.]+ \\(${bundler}\\)`), 'the bundler asked for')
      const client = rawClient(port, { path: '/events' })
      // The first request compiles the route: tens of seconds on a small machine.
      await waitFor(() => client.events.length >= 1, { what: () => `the hello (${server.output()})`, timeoutMs: 180_000 })
      assert.equal(client.events[0].event, 'hello')
      assert.deepEqual(await publish(port, 'before the edit'), { status: 200, body: { delivered: 1 } })

      // An edit that changes no option: the module is evaluated again, lazily, by the next
      // request once the watcher saw the change, and says so on the server's output. Each
      // request until then may still run the modules from before.
      const marker = 'lib/hub.js evaluated again (edit 1)'
      fs.appendFileSync(hubFile, `console.log(${JSON.stringify(marker)})\n`)
      let probes = 0
      await waitFor(async () => {
        const probe = await publish(port, `probe ${++probes}`)
        assert.equal(probe.status, 200, JSON.stringify(probe.body))
        return server.output().includes(marker)
      }, { what: () => `next dev to evaluate the edited lib/hub.js (${probes} requests; ${server.output()})`, timeoutMs: 120_000, intervalMs: 200 })

      const after = await publish(port, 'after the edit')
      assert.deepEqual(after, { status: 200, body: { delivered: 1 } }, 'the hub after the edit is the one the open stream is on')
      await waitFor(() => newsOf(client).includes('after the edit'), { what: () => `the publish after the edit on the open stream (${JSON.stringify(newsOf(client))})`, timeoutMs: 15_000 })
      assert.equal(client.events.filter((e) => e.event === 'hello').length, 1, 'one connection throughout, never reopened')
      assert.equal(client.ended, false)

      // An edit of the options: the hub keeps running with the old ones, and the module that
      // asks for other ones fails with a message that says to restart.
      fs.writeFileSync(hubFile, fs.readFileSync(hubFile, 'utf8').replace('heartbeatMs: 15_000', 'heartbeatMs: 10_000'))
      await waitFor(async () => (await publish(port, 'with other options')).status === 500 && server.output().includes('ERR_SSE_HUB_OPTIONS_CHANGED'),
        { what: () => `the edited options to be refused (${server.output()})`, timeoutMs: 120_000, intervalMs: 200 })
      assert.match(server.output(), /the hub named 'events' already exists in this process with other options \(changed: heartbeatMs\)/)
      assert.equal(client.ended, false, 'the open stream stays')
      client.end()
    } finally {
      await server.stop()
    }
  })
}
