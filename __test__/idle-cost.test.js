'use strict'
// needs: test-hooks

// What an idle native client costs this process once attached, measured from outside the
// core: the JS heap it keeps (its Client and its share of the hub's map) and the native memory
// in use (the core's state for it, napi's, and whatever Node keeps of the connection), per
// client over a wave of 8,000 (6,000 stay), after full GCs and a warm-up wave. The JS heap is
// counted from heap snapshots (liveHeapBytes): process.memoryUsage().heapUsed also counts the
// JIT code compiled during the wave and pages not swept yet, which moved it 265-337 B per
// client between runs of one build and failed this test on a bound set from 278-296.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createHub } = require('..')
const { startHttp, waitFor } = require('./helpers')
const { churnClients, memoryOnceNativeSettles, liveHeapBytes } = require('./memory')

const WARM_UP = 4_000
const WAVE = 8_000
// Measured 264-280 B of live objects on Node 20, 22 and 24: the Client (208 B, with
// EventEmitter's fields) and the hub's map, grown to 16,384 entries. Each client keeping its
// own copy of its peer's address and its attach time as a fraction made it 369 B;
// EventEmitter's empty listener table would add 180 B.
const MAX_JS_BYTES_PER_CLIENT = 310
// Measured 836-889 B on Node 20 and 22, 1,041-1,104 B on Node 24 (Node keeps more of each
// connection): the core's 707 B (crates/core/tests/idle_memory.rs) and malloc's own headers.
// Idle clients that kept their writer tasks (PARK_AFTER of an hour) measured 1,723 B.
const MAX_NATIVE_BYTES_PER_CLIENT = 1_400
// Native memory is read once it falls by less than this in 250 ms: between two reads it moves
// by 10-20 KB once the writers have parked, by about 1 MB while they park.
const STILL_BYTES = 256 * 1024

test('an idle native client keeps at most 310 B of JS heap and 1,400 B of native memory', { timeout: 120_000 }, async (t) => {
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
    // The first heap snapshot leaves V8's map of object ids in native memory for good, so
    // native memory is read after it, and before the second.
    const liveBefore = await liveHeapBytes()
    const before = await memoryOnceNativeSettles(STILL_BYTES)
    const sizeBefore = hub.size
    // fixtures/churn-clients.js rotates kinds by index: the 'early' ones leave at once, the
    // others stay, holding their connection open without reading more.
    opened = await clients.ask({ command: 'open', port: http.port, count: WAVE, firstIndex: WARM_UP })
    assert.equal(opened.failed, 0, `${opened.failed} clients never got their first event`)
    await waitFor(() => hub.size === sizeBefore + opened.connected, { what: `${opened.connected} more clients attached (at ${hub.size})` })
    const after = await memoryOnceNativeSettles(STILL_BYTES)
    const liveAfter = await liveHeapBytes()
    const added = hub.size - sizeBefore
    const js = (liveAfter - liveBefore) / added
    const native = (after.native - before.native) / added
    const heapUsed = (after.heapUsed - before.heapUsed) / added
    t.diagnostic(`${added} idle clients: ${js.toFixed(0)} B of JS heap (heapUsed: ${heapUsed.toFixed(0)} B) and ${native.toFixed(0)} B of native memory each`)
    assert.ok(js <= MAX_JS_BYTES_PER_CLIENT, `${js.toFixed(0)} B of JS heap per idle client`)
    assert.ok(native <= MAX_NATIVE_BYTES_PER_CLIENT, `${native.toFixed(0)} B of native memory per idle client`)
  } finally {
    await clients.stop()
    await hub.close()
    await http.close()
  }
})
