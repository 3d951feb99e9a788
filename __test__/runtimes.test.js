'use strict'
// needs: bun, deno

// native-sse under Bun and Deno (their npm packages, installed by .ci/run into
// __test__/runtimes): the addon loads; hub.response() serves Bun.serve and Deno.serve with
// events, resume and the client leaving; node:http's attach() streams through the Node
// transport; and the native transport, which neither runtime can give a socket to, is refused
// with the reason (Bun: its sockets have no libuv handle; Deno: its executable does not
// export libuv's uv_backend_fd).

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { rawClient, waitFor } = require('./helpers')

const RUNTIMES = path.join(__dirname, 'runtimes', 'node_modules')
const FIXTURE = path.join(__dirname, 'fixtures', 'runtime-server.cjs')
const NATIVE_SSE = path.join(__dirname, '..', 'index.js')
const COMMANDS = {
  bun: { bin: path.join(RUNTIMES, '@oven', `bun-linux-${process.arch}`, 'bin', 'bun'), args: [FIXTURE, NATIVE_SSE], native: /no handle/ },
  // The permissions the README names, and no more: a missing one fails every test here.
  deno: { bin: path.join(RUNTIMES, '@deno', `linux-${process.arch}-glibc`, 'deno'), args: ['run', '--allow-net', '--allow-read', '--allow-ffi', FIXTURE, NATIVE_SSE], native: /uv_backend_fd/ }
}

async function startUnder (runtime) {
  const { bin, args } = COMMANDS[runtime]
  assert.ok(fs.existsSync(bin), `${runtime} not found at ${bin}: install it with \`node __test__/runtimes/install.js\` (.ci/run does)`)
  const child = spawn(bin, args, {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', resolve)
    child.kill('SIGKILL')
  })
  try {
    const [, fetchPort, nodePort] = await waitFor(() => output.match(/listening (\d+) (\d+)/), { what: () => `${runtime} to listen (output: ${output})`, timeoutMs: 20_000 })
    const get = async (port, route) => (await fetch(`http://127.0.0.1:${port}${route}`)).json()
    return { fetchPort: Number(fetchPort), nodePort: Number(nodePort), get, stop, exited, output: () => output }
  } catch (error) {
    await stop()
    throw error
  }
}

for (const runtime of Object.keys(COMMANDS)) {
  describe(runtime, () => {
    test(`${runtime}: hub.response() under the runtime's own server: events, resume, the client leaving`, async () => {
      const server = await startUnder(runtime)
      try {
        const first = rawClient(server.fetchPort, { path: '/events' })
        await waitFor(() => first.events.length === 1, { what: () => `hello (${server.output()})` })
        assert.match(first.head, /^HTTP\/1\.1 200/)
        assert.match(first.head, /content-type: text\/event-stream/i)
        assert.deepEqual(JSON.parse(first.events[0].data), { transport: 'fetch' })
        for (const id of ['e1', 'e2', 'e3']) assert.equal((await server.get(server.fetchPort, `/publish?data=${id}&id=${id}`)).recipients, 1)
        await waitFor(() => first.events.length === 4, { what: 'three events' })
        assert.deepEqual(first.events.slice(1).map((e) => e.id), ['e1', 'e2', 'e3'])
        first.reset()
        await waitFor(async () => (await server.get(server.fetchPort, '/stats')).size === 0, { what: 'the client to leave' })
        assert.deepEqual((await server.get(server.fetchPort, '/stats')).closes, ['client'])

        const resumed = rawClient(server.fetchPort, { path: '/events', headers: { 'last-event-id': 'e1' } })
        await waitFor(() => resumed.events.length === 3, { what: 'the replay after e1' })
        assert.deepEqual(resumed.events.filter((e) => e.event !== 'hello').map((e) => e.data), ['e2', 'e3'])
        // Deno prints a warning the first time a handler touches request.signal.
        assert.doesNotMatch(server.output(), /warning|legacy/i)
      } finally {
        await server.stop()
      }
    })

    test(`${runtime}: a quiet stream from a hub with every default stays open 30 s under the server's defaults`, async () => {
      // Bun.serve closes a response that wrote nothing for 10 s (idleTimeout); the hub's
      // heartbeat is 15 s, so a Fetch body there gets its own, under 10 s. Heartbeats are the
      // clock: the opening comment, then one per period, until 30 s have passed.
      const comments = { bun: 5, deno: 3 }[runtime]
      const server = await startUnder(runtime)
      try {
        const client = rawClient(server.fetchPort, { path: '/quiet' })
        await waitFor(() => client.ended || client.comments.length >= comments, { what: () => `${comments} comments (got ${client.comments.length})`, timeoutMs: 60_000 })
        assert.equal(client.ended, false, `the stream was cut after ${client.comments.length} comments`)
        assert.equal((await server.get(server.fetchPort, '/stats')).quiet, 1)
      } finally {
        await server.stop()
      }
    })

    test(`${runtime}: after await hub.close() and the server's own stop, exiting loses nothing: the final event arrives whole`, async () => {
      const server = await startUnder(runtime)
      try {
        const client = rawClient(server.fetchPort, { path: '/events' })
        await waitFor(() => client.events.length === 1, { what: () => `hello (${server.output()})` })
        assert.deepEqual(await server.get(server.fetchPort, '/exit'), { exiting: true })
        assert.equal(await server.exited, 0, server.output())
        await waitFor(() => client.ended, { what: 'the stream to end' })
        const bye = client.events.find((e) => e.event === 'bye')
        assert.ok(bye, `the final event arrived (got ${client.events.map((e) => e.event)})`)
        assert.equal(bye.data.length, 100_000)
      } finally {
        await server.stop()
      }
    })

    test(`${runtime}: node:http attach() streams through the Node transport; the native one is refused with its reason`, async () => {
      const server = await startUnder(runtime)
      try {
        const client = rawClient(server.nodePort, { path: '/events' })
        await waitFor(() => client.events.length === 1, { what: () => `hello (${server.output()})` })
        assert.deepEqual(JSON.parse(client.events[0].data), { transport: 'node' })
        await server.get(server.nodePort, '/publish?data=over-node&id=n1')
        await waitFor(() => client.events.length === 2, { what: 'the published event' })
        assert.equal(client.events[1].data, 'over-node')
        const refused = await fetch(`http://127.0.0.1:${server.nodePort}/native`)
        assert.equal(refused.status, 500)
        const { nativeRefusal } = await server.get(server.nodePort, '/stats')
        assert.equal(nativeRefusal.code, 'ERR_SSE_TRANSPORT_UNAVAILABLE')
        assert.match(nativeRefusal.message, COMMANDS[runtime].native)
      } finally {
        await server.stop()
      }
    })
  })
}
