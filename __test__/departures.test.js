'use strict'
// needs: nothing

// What each way of leaving is called, on both transports. A peer that leaves has left, whether
// it sent FIN or reset the connection (RST), idle or with data pending to it: 'client'. The
// server closing a client is 'server'; a reader that stopped, past writeTimeoutMs, 'timeout';
// one lagging past the window under overflow 'disconnect', 'slow'. 'error' is a failure on
// our side (hooks.test.js makes a writer panic), so none of these is one. The 'close' event,
// client.closeReason, the 'disconnect' info and metrics().closes all agree.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { createHub, defaults } = require('..')
const { TRANSPORTS, startHttp, rawClient, waitFor } = require('./helpers')

const WRITE_TIMEOUT_MS = 2000
const CHUNK = 'q'.repeat(64 * 1024)
/** Sends `bytes` of 64 KB events to `client`. */
const flood = (client, bytes) => {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) client.send({ data: CHUNK })
}

for (const transport of TRANSPORTS) {
  describe(`departures, ${transport} transport`, () => {
    test("FIN and RST are 'client', a close by the server 'server', a stopped reader 'timeout', a lagging one 'slow'; metrics count each", async () => {
      assert.equal(defaults.overflow, 'disconnect')
      const lagWindow = defaults.maxLagBytes
      const hub = createHub({ heartbeatMs: 60_000, writeTimeoutMs: WRITE_TIMEOUT_MS })
      /** name -> { client, reasons ('close' events), socketErrors (codes Node's socket saw) } */
      const seen = new Map()
      const departures = new Map()
      hub.on('disconnect', (info) => departures.set(info.id, info))
      const http = await startHttp((req, res) => {
        const name = new URL(req.url, 'http://x').searchParams.get('name')
        const entry = { client: null, reasons: [], socketErrors: [] }
        // Only the Node transport keeps Node's socket: there it shows what the kernel said.
        req.socket.on('error', (error) => entry.socketErrors.push(error.code))
        entry.client = hub.attach(req, res, { transport })
        entry.client.on('close', (reason) => entry.reasons.push(reason))
        seen.set(name, entry)
        entry.client.send({ data: name })
      })
      const raws = []
      /** Opens a stream as `name`; resolves once its first event arrived. */
      const open = async (name) => {
        const raw = rawClient(http.port, { path: `/?name=${name}` })
        raws.push(raw)
        await waitFor(() => raw.events.length === 1, { what: `${name}: its first event` })
        return raw
      }
      const closed = (name, timeoutMs = 10_000) => waitFor(() => seen.get(name).reasons.length > 0,
        { what: () => `${name} to be closed (hub.size ${hub.size}, queued ${hub.stats().queuedBytes} bytes)`, timeoutMs })
      try {
        // A FIN.
        const fin = await open('fin')
        fin.end()
        await closed('fin')

        // A RST while idle (a native writer is parked by now, or about to be).
        const reset = await open('reset')
        reset.reset()
        await closed('reset')
        if (transport === 'node') assert.deepEqual(seen.get('reset').socketErrors, ['ECONNRESET'], 'the server saw a reset')

        // A RST with megabytes pending to it: the writer's next write or wait sees it.
        const resetBusy = await open('reset-busy')
        resetBusy.socket.pause()
        flood(seen.get('reset-busy').client, 16e6)
        assert.ok(hub.stats().queuedBytes > 0, 'data is pending to it as it resets')
        resetBusy.reset()
        await closed('reset-busy')
        if (transport === 'node') {
          const errors = seen.get('reset-busy').socketErrors
          assert.ok(errors.length > 0 && errors.every((code) => code === 'ECONNRESET' || code === 'EPIPE'), `the server saw a reset: ${errors}`)
        }

        // The server closes it.
        const byServer = await open('by-server')
        seen.get('by-server').client.close()
        await closed('by-server')
        await waitFor(() => byServer.finishedAt !== null, { what: 'the server-closed stream to end' })

        // A reader that stopped with 16 MB (within the lag window) queued to it.
        const stalled = await open('stalled')
        stalled.socket.pause()
        flood(seen.get('stalled').client, 16e6)
        await closed('stalled', WRITE_TIMEOUT_MS + 15_000)

        // A reader that stopped while more than the lag window was queued to it.
        const lagging = await open('lagging')
        lagging.socket.pause()
        flood(seen.get('lagging').client, lagWindow + 16e6)
        await closed('lagging')

        const expected = { fin: 'client', reset: 'client', 'reset-busy': 'client', 'by-server': 'server', stalled: 'timeout', lagging: 'slow' }
        const reasons = Object.fromEntries([...seen].map(([name, { reasons }]) => [name, reasons.join(',')]))
        assert.deepEqual(reasons, expected, "each 'close' event, once")
        for (const [name, { client }] of seen) {
          assert.equal(client.closeReason, expected[name], `${name}: closeReason`)
          assert.equal(departures.get(client.id)?.reason, expected[name], `${name}: the 'disconnect' info`)
        }
        assert.equal(hub.size, 0)
        assert.deepEqual(hub.metrics().closes, { client: 3, error: 0, timeout: 1, slow: 1, server: 1 })
      } finally {
        for (const raw of raws) raw.socket.destroy()
        await hub.close()
        await http.close()
      }
    })
  })
}
