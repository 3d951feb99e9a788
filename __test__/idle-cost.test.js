'use strict'
// needs: test-hooks

// What an idle native client costs this process once attached, measured from outside the
// core: the JS heap it keeps (its Client and its share of the hub's map) and the native memory
// in use (the core's state for it, napi's, and whatever Node keeps of the connection), per
// client over a wave of 8,000 (6,000 stay), after full GCs and a warm-up wave.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { startHttp, waitFor } = require('./helpers')
const { churnClients, settledMemory } = require('./memory')

const WARM_UP = 4_000
const WAVE = 8_000
// Measured 278-296 B: the Client (200 B, with EventEmitter's fields) and the hub's map,
// grown to 16,384 entries. Each client keeping its own copy of its peer's address, its resume
// word and its attach time as a fraction made it 356-391 B; EventEmitter's empty listener
// table would add 180 B more.
const MAX_JS_BYTES_PER_CLIENT = 330
// Measured 808-865 B on Node 20, 1,082 B on Node 24 (Node keeps more of each connection): the
// core's 707 B (crates/core/tests/idle_memory.rs) and malloc's own headers. An idle client
// that kept its writer task would add that task's 896 B, past this on either.
const MAX_NATIVE_BYTES_PER_CLIENT = 1_400

test('an idle native client keeps at most 330 B of JS heap and 1,400 B of native memory', { timeout: 120_000 }, async (t) => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => {
    // Its opening is the retry line and this event, written as one batch.
    hub.attach(req, res, { transport: 'native' }).send({ data: 'hello' })
  })
  const clients = churnClients()
  try {
    // A first wave fills what is made once (JIT code, pools, the runtime's slabs,
    // the hub's map growing past the size the measured wave brings it to).
    let opened = await clients.ask({ command: 'open', port: http.port, count: WARM_UP, firstIndex: 0 })
    await waitFor(() => hub.size === opened.connected, { what: `${opened.connected} warm-up clients attached (at ${hub.size})` })
    const before = await settledMemory()
    const sizeBefore = hub.size
    // fixtures/churn-clients.js rotates kinds by index: the 'early' ones leave at once, the
    // others stay, holding their connection open without reading more.
    opened = await clients.ask({ command: 'open', port: http.port, count: WAVE, firstIndex: WARM_UP })
    assert.equal(opened.failed, 0, `${opened.failed} clients never got their first event`)
    await waitFor(() => hub.size === sizeBefore + opened.connected, { what: `${opened.connected} more clients attached (at ${hub.size})` })
    const after = await settledMemory()
    const added = hub.size - sizeBefore
    const js = (after.heapUsed - before.heapUsed) / added
    const native = (after.native - before.native) / added
    t.diagnostic(`${added} idle clients: ${js.toFixed(0)} B of JS heap and ${native.toFixed(0)} B of native memory each`)
    assert.ok(js <= MAX_JS_BYTES_PER_CLIENT, `${js.toFixed(0)} B of JS heap per idle client`)
    assert.ok(native <= MAX_NATIVE_BYTES_PER_CLIENT, `${native.toFixed(0)} B of native memory per idle client`)
  } finally {
    await clients.stop()
    await hub.close()
    await http.close()
  }
})
