'use strict'

// What a full history costs: 10,000 events of 200 B kept for resume, measured as the hub's own
// count of held bytes and as the process's RSS growth, in a fresh process. With --streams,
// the events are 500 resumable streams' tokens: ids `<stream>.<n>`, each stream in its own
// channel, taking turns (what publishStream() keeps while answers stream).
//
//   node --expose-gc bench/history-memory.js [events, default 10000] [data bytes, default 200] [--streams]

const { createHub } = require('..')

const numbers = process.argv.slice(2).filter((arg) => !arg.startsWith('--'))
const EVENTS = Number(numbers[0] || 10_000)
const DATA_BYTES = Number(numbers[1] || 200)
const STREAMS = process.argv.includes('--streams') ? 500 : 0

function outsideJsHeap () {
  const { rss, heapTotal } = process.memoryUsage()
  return rss - heapTotal
}

function main () {
  const hub = createHub({ history: { maxEvents: EVENTS, maxBytes: 1 << 30 } })
  const data = 'x'.repeat(DATA_BYTES)
  global.gc()
  const before = outsideJsHeap()
  if (STREAMS === 0) {
    for (let i = 0; i < EVENTS; i++) hub.broadcast({ data })
  } else {
    for (let i = 0; i < EVENTS; i++) hub.publish(`answer:${i % STREAMS}`, { id: `s${i % STREAMS}.${Math.floor(i / STREAMS)}`, data })
  }
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
  console.log(`full history: ${EVENTS.toLocaleString('en')} events of ${DATA_BYTES} B${STREAMS ? `, ids <stream>.<n> of ${STREAMS} streams` : ''}, Node ${process.version}`, result)
  if (held.events !== EVENTS) process.exitCode = 1
  return hub.close()
}

main()
