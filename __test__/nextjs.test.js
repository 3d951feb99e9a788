'use strict'
// needs: next

// examples/nextjs (an App Router route handler that returns hub.response(request)) built with
// `next build` and served by `next start`, Next.js 16 from __test__/runtimes (installed by
// .ci/run). native-sse goes into that node_modules as an installed package would be (its
// files, and this build's addon), because Next.js loads packages named in
// serverExternalPackages from node_modules at run time, and bundles anything else.

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

test('Next.js: a route handler returning hub.response() streams under next start', { timeout: 600_000 }, async () => {
  assert.ok(fs.existsSync(NEXT), `Next.js not found at ${NEXT}: install it with \`node __test__/runtimes/install.js\` (.ci/run does)`)
  installPackage()
  fs.rmSync(APP, { recursive: true, force: true })
  fs.cpSync(path.join(ROOT, 'examples', 'nextjs'), APP, { recursive: true })

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
    await waitFor(() => client.events.filter((e) => e.event === 'tick').length >= 2, { what: () => `hello and two ticks (${server.output()})`, timeoutMs: 15_000 })
    assert.match(client.head, /^HTTP\/1\.1 200/)
    assert.match(client.head, /content-type: text\/event-stream; charset=utf-8/i)
    assert.match(client.head, /cache-control: no-cache, no-transform/i)
    assert.equal(client.events[0].event, 'hello')
    assert.equal(JSON.parse(client.events[0].data).transport, 'fetch')
    const ticks = client.events.filter((e) => e.event === 'tick').map((e) => Number(e.data))
    assert.ok(ticks[1] > ticks[0], 'ticks arrive in order, live')
    client.end()
  } finally {
    await server.stop()
  }
})
