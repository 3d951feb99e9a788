'use strict'
// needs: nothing

// A publisher burst must not cost the clients that keep reading anything, with the default
// lag window: 100 clients read at full speed (in another process, which checks every client's
// sequence for loss, repeats and order) while 10 never read, and 20,000 events of 1 KB are
// published one per event-loop turn. The 10 are cut by the write deadline (5 s here, timed
// from when their sockets filled, against the default 8 s; at 2 s, with another test suite
// running beside, the reading process, busy with megabytes from each of its 100 sockets per
// turn, left some sockets unread that long, and the cut was right); memory held stays within
// the window, once, not per client.

const { test } = require('node:test')
const { performance } = require('node:perf_hooks')
const assert = require('node:assert/strict')
const { createHub, defaults } = require('..')
const { startHttp, rawClient, waitFor, loadClients } = require('./helpers')

const FAST = 100
const STALLED = 10
const EVENTS = 20_000
const payload = (seq) => `${seq} `.padEnd(1000, 'x')
const WRITE_TIMEOUT_MS = 5000
// The close travels to JS through an event loop that publishes one event per turn meanwhile.
const CUT_MARGIN_MS = 2000
const PREFILL_MB = 12
const MEGABYTE = 'm'.repeat(1 << 20)

test(`a burst of ${EVENTS.toLocaleString('en')} x 1 KB reaches ${FAST} reading clients whole while ${STALLED} stalled ones are cut`, async () => {
  const hub = createHub({ heartbeatMs: 60_000, writeTimeoutMs: WRITE_TIMEOUT_MS })
  const closes = []
  const prefilled = new Map()
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res)
    client.on('close', (reason) => closes.push({ id: client.id, path: req.url, reason, at: performance.now() }))
    if (req.url === '/stalled') {
      // More than the kernel's buffers take: the stalled client's socket accepts nothing from
      // here on, so its cut is due writeTimeoutMs after this, whatever the burst does.
      for (let i = 0; i < PREFILL_MB; i++) client.send({ data: MEGABYTE })
      prefilled.set(client.id, performance.now())
    }
  })
  const stalled = []
  const fast = loadClients(http.port, FAST)
  try {
    for (let i = 0; i < STALLED; i++) {
      const raw = rawClient(http.port, { path: '/stalled', paced: true })
      stalled.push(raw)
    }
    await waitFor(async () => hub.size === FAST + STALLED && (await fast.report()).connected === FAST,
      { what: 'every client to connect', timeoutMs: 20_000 })
    let maxHeld = 0
    let maxRss = 0
    const rssBefore = process.memoryUsage.rss()
    for (let seq = 0; seq < EVENTS; seq++) {
      hub.broadcast({ data: payload(seq) })
      if (seq % 100 === 0) {
        maxHeld = Math.max(maxHeld, hub.metrics().held.bytes)
        maxRss = Math.max(maxRss, process.memoryUsage.rss())
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    let report = await fast.report()
    await waitFor(async () => (report = await fast.report()).delivered === FAST * EVENTS, {
      what: () => `${FAST * EVENTS} deliveries (got ${report.delivered}, lost ${report.lost}, closed ${report.closed}; ` +
        `the server closed ${JSON.stringify(closes)}; ${hub.size} clients, ${hub.metrics().held.bytes} B held)`,
      timeoutMs: 120_000,
      intervalMs: 100
    })
    assert.equal(report.lost, 0)
    assert.equal(report.disorder, 0)
    assert.equal(report.closed, 0, 'no reading client was cut')
    await waitFor(() => closes.filter((c) => c.path === '/stalled').length === STALLED,
      { what: 'the stalled clients to be cut', timeoutMs: 30_000 })
    assert.deepEqual([...new Set(closes.map((c) => c.reason))], ['timeout'])
    // Each cut came writeTimeoutMs after its socket stopped taking bytes, not at some other
    // deadline (the default is 8 s): timed from its prefill, with room for a loaded machine.
    for (const close of closes.filter((c) => c.path === '/stalled')) {
      const after = close.at - prefilled.get(close.id)
      assert.ok(after >= WRITE_TIMEOUT_MS - 100 && after <= WRITE_TIMEOUT_MS + CUT_MARGIN_MS,
        `a stalled client was cut ${Math.round(after)} ms after its socket filled; writeTimeoutMs is ${WRITE_TIMEOUT_MS}`)
    }
    assert.ok(maxHeld <= defaults.maxLagBytes, `the logs held ${maxHeld} bytes, above the ${defaults.maxLagBytes}-byte window`)
    // 110 clients were sent 20 MB each: a copy per client would be gigabytes. What grows is the
    // shared window plus the JS garbage of the payload strings.
    const grown = maxRss - rssBefore
    assert.ok(grown < defaults.maxLagBytes + (64 << 20), `RSS grew by ${grown} bytes during the burst`)
    await waitFor(() => hub.metrics().held.bytes === 0, { what: 'the log to release what every reader passed' })
  } finally {
    await fast.stop()
    for (const raw of stalled) raw.socket.destroy()
    await hub.close()
    await http.close()
  }
})
