'use strict'

// What a full history costs: 10,000 events of 200 B kept for resume, measured as the hub's own
// count of held bytes and as the process's RSS growth, in a fresh process.
//
//   node --expose-gc bench/history-memory.js [events, default 10000] [data bytes, default 200]

const { createHub } = require('..')

const EVENTS = Number(process.argv[2] || 10_000)
const DATA_BYTES = Number(process.argv[3] || 200)

function outsideJsHeap () {
  const { rss, heapTotal } = process.memoryUsage()
  return rss - heapTotal
}

function main () {
  const hub = createHub({ history: { maxEvents: EVENTS, maxBytes: 1 << 30 } })
  const data = 'x'.repeat(DATA_BYTES)
  global.gc()
  const before = outsideJsHeap()
  for (let i = 0; i < EVENTS; i++) hub.broadcast({ data })
  global.gc()
  const held = hub.metrics().held
  // Outside the V8 heap: the publishing loop's own JS garbage grows the heap, not the hub.
  const grown = outsideJsHeap() - before
  const result = {
    events: held.events,
    heldBytes: held.bytes,
    heldBytesPerEvent: Math.round(held.bytes / held.events),
    rssOutsideJsHeapGrowthBytes: grown,
    rssOutsideJsHeapPerEventBytes: Math.round(grown / EVENTS)
  }
  console.log(`full history: ${EVENTS.toLocaleString('en')} events of ${DATA_BYTES} B, Node ${process.version}`, result)
  if (held.events !== EVENTS) process.exitCode = 1
  return hub.close()
}

main()
