'use strict'
// needs: nothing

// Each client reads several sources (the broadcast log, its channels' logs, its own mailbox);
// whatever the mix of calls, it must receive exactly the events addressed to it, in the order
// the calls were made.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, rawClient, waitFor } = require('./helpers')

const CALLS = 100_000

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function random (seed) {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    return state / 0x7fffffff
  }
}

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test(`per-client order holds across ${CALLS.toLocaleString('en')} interleaved broadcast, publish and send calls`, async () => {
      const hub = createHub({ heartbeatMs: 60_000, maxLagEvents: 2 * CALLS, maxLagBytes: 64 << 20 })
      const subscriptions = { '/a': ['x'], '/b': ['x', 'y'], '/c': [] }
      const clients = {}
      const http = await startHttp((req, res) => {
        clients[req.url] = hub.attach(req, res, { transport, channels: subscriptions[req.url] })
      })
      const raws = {}
      try {
        for (const path of Object.keys(subscriptions)) {
          raws[path] = rawClient(http.port, { path })
          await waitFor(() => clients[path] !== undefined && raws[path].comments.length === 1, { what: `client ${path}` })
        }
        const expected = { '/a': [], '/b': [], '/c': [] }
        const next = random(42)
        for (let i = 0; i < CALLS; i++) {
          const pick = next()
          const data = String(i)
          if (pick < 0.25) {
            hub.broadcast({ data })
            for (const path of Object.keys(expected)) expected[path].push(i)
          } else if (pick < 0.5) {
            hub.publish('x', { data })
            expected['/a'].push(i)
            expected['/b'].push(i)
          } else if (pick < 0.6) {
            hub.publish('y', { data })
            expected['/b'].push(i)
          } else {
            const path = ['/a', '/b', '/c'][Math.floor((pick - 0.6) / 0.4 * 3)]
            clients[path].send({ data })
            expected[path].push(i)
          }
          // Let the writers run now and then, so reading and publishing overlap.
          if (i % 5000 === 4999) await new Promise((resolve) => setImmediate(resolve))
        }
        for (const path of Object.keys(expected)) {
          await waitFor(() => raws[path].events.length === expected[path].length,
            { what: `${expected[path].length} events at ${path}`, timeoutMs: 30_000 })
          const got = raws[path].events.map((e) => Number(e.data))
          assert.ok(got.every((value, k) => value === expected[path][k]), `${path} received its events out of order or wrong`)
        }
        assert.equal(hub.metrics().dropped, 0)
        assert.equal(hub.metrics().closes.slow, 0)
      } finally {
        await hub.close()
        await http.close()
      }
    })
  })
}
