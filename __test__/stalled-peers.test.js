'use strict'
// needs: netns, curl

// With default options, a peer that stopped is noticed within 10 s, on both transports: a
// reader that stopped reading with 16 MB queued to it (on loopback, its kernel keeps
// acknowledging nothing once its receive buffer is full), a peer whose network vanished with
// 4 MB queued, and an idle peer that vanished between heartbeats (keepalive finds it). Each is
// closed with 'timeout', while a reader alongside gets everything. The vanishing peers are
// curls in a network namespace of the test's own whose packets iptables drops.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { performance } = require('node:perf_hooks')
const { createHub, defaults } = require('..')
const { TRANSPORTS, startHttp, withUrl, rawClient, waitFor, once } = require('./helpers')
const { createNamespace, netnsUnavailableReason } = require('../test-support/netns')

// What the issue asked for: such a peer noticed within 10 s. The margin covers the close's way
// to JS and a loaded machine; the kernel's timers themselves are exact.
const NOTICED_WITHIN_MS = 10_000
const MARGIN_MS = 1500
const CHUNK = 'q'.repeat(64 * 1024)

const unavailable = netnsUnavailableReason()
if (unavailable !== null && process.env.CI) throw new Error(`stalled-peer tests cannot run: ${unavailable}`)

describe('stalled peers, default options', { skip: unavailable ?? false }, () => {
  for (const transport of TRANSPORTS) {
    test(`${transport}: a stopped reader, a vanished peer with data queued and an idle vanished peer are closed within 10 s`, async (t) => {
      const hub = createHub()
      assert.ok(defaults.heartbeatMs > NOTICED_WITHIN_MS, 'the idle peer is found by keepalive, not by a heartbeat')
      const clients = new Map()
      const closes = new Map()
      const handler = (req, res) => {
        const name = new URL(req.url, 'http://x').searchParams.get('name')
        const client = hub.attach(req, res, { transport })
        clients.set(name, client)
        client.on('close', (reason) => closes.set(name, { reason, at: performance.now() }))
        client.send({ event: 'hello', data: name })
      }
      const local = await startHttp(handler)
      const namespaces = [createNamespace(), createNamespace()]
      const servers = []
      const curls = []
      let stopped = null
      let witness = null
      try {
        // Each vanishing curl in a namespace of its own, so one can go silent before the other.
        for (const ns of namespaces) {
          const server = http.createServer(handler)
          await new Promise((resolve) => server.listen(0, ns.hostAddress, resolve))
          servers.push(withUrl(server))
        }
        const remotes = servers
        const received = {}
        for (const [index, name] of ['loaded', 'idle'].entries()) {
          const ns = namespaces[index]
          const curl = ns.spawn('curl', ['-sN', '--max-time', '60', `http://${ns.hostAddress}:${remotes[index].port}/?name=${name}`],
            { stdio: ['ignore', 'pipe', 'ignore'] })
          curls.push(curl)
          received[name] = ''
          curl.stdout.on('data', (chunk) => { received[name] += chunk })
        }
        stopped = rawClient(local.port, { path: '/?name=stopped' })
        witness = rawClient(local.port, { path: '/?name=witness' })
        await waitFor(() => received.loaded.includes('data: loaded\n\n') && received.idle.includes('data: idle\n\n') &&
          stopped.events.length === 1 && witness.events.length === 1, { what: () => `four clients to connect: ${JSON.stringify([received, stopped.events.length, witness.events.length])}`, timeoutMs: 10_000 })

        // The reader stops; 16 MB is queued to it.
        stopped.socket.pause()
        for (let i = 0; i < 256; i++) clients.get('stopped').send({ data: CHUNK })
        const stoppedAt = performance.now()
        // Both namespaced peers vanish; 4 MB is queued to one, nothing to the other.
        for (const ns of namespaces) ns.vanish()
        const vanishedAt = performance.now()
        for (let i = 0; i < 64; i++) clients.get('loaded').send({ data: CHUNK })

        let ticks = 0
        await waitFor(() => {
          if (ticks < 200) clients.get('witness').send({ data: String(ticks++) })
          return ['stopped', 'loaded', 'idle'].every((name) => closes.has(name))
        }, { what: () => `the three stalled peers to be closed (closed so far: ${JSON.stringify([...closes].map(([name, c]) => [name, c.reason, Math.round(c.at - vanishedAt)]))})`, timeoutMs: NOTICED_WITHIN_MS + MARGIN_MS + 20_000, intervalMs: 50 })

        const since = { stopped: stoppedAt, loaded: vanishedAt, idle: vanishedAt }
        for (const name of ['stopped', 'loaded', 'idle']) {
          const { reason, at } = closes.get(name)
          const elapsed = Math.round(at - since[name])
          t.diagnostic(`${transport}: ${name} closed with '${reason}' ${elapsed} ms after it stalled`)
          assert.equal(reason, 'timeout', name)
          assert.ok(elapsed <= NOTICED_WITHIN_MS + MARGIN_MS, `${name}: closed ${elapsed} ms after it stalled`)
        }

        // The reader alongside got every event, in order, and is still connected.
        await waitFor(() => witness.events.length === 1 + ticks, { what: `the witness to receive ${ticks} events` })
        assert.deepEqual(witness.events.slice(1).map((e) => e.data), Array.from({ length: ticks }, (_, i) => String(i)))
        assert.equal(closes.has('witness'), false)
        assert.equal(hub.size, 1)
        assert.equal(hub.stats().queuedBytes, 0, 'nothing is held for the closed peers')
      } finally {
        for (const curl of curls) curl.kill('SIGKILL')
        await Promise.all(curls.map((curl) => curl.exitCode === null && curl.signalCode === null ? once(curl, 'close', 10_000) : null))
        stopped?.reset()
        witness?.reset()
        await hub.close()
        await Promise.all([local.close(), ...servers.map((server) => server.close())])
        for (const ns of namespaces) ns.destroy()
      }
    })
  }
})
