'use strict'

// Compression: realistic events (bench/events.js: prices, chat, LLM tokens) fanned out to
// 1,000 and 10,000 clients, one event per turn, paced as in fan-out. Three servers on the
// same events: native-sse uncompressed, native-sse with `compression: true` (gzip encoded once
// per channel, a position per client), both with V8's young generation held small so that RSS
// per connection compares the hubs, and node:http with a zlib gzip stream per response
// flushed after each event (what per-connection compression costs). The load client asks for
// gzip and decodes it. Figures: bytes on the wire per event as a share of the uncompressed
// hub's, deliveries/s, server CPU, and RSS per connection idle (connected, before any event)
// and once the feed stopped (both after a full GC and the idle settle time).

const { SIZES } = require('../settings')
const { CREDIT_BYTES_PER_CLIENT, sleep, withServer, connected, measureWindow, latencyMs, damage, each } = require('../harness')
const { addRow, addTargets, pick, si, fixed, percent, times, against } = require('../results')
const { EVENTS } = require('../events')

/** The uncompressed hub is native-small-young: the same Node flags as native-gzip. */
const KINDS = ['native-small-young', 'native-gzip', 'http-gzip']

async function compressed (kind, clients, events) {
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const warm = load(1, { acceptEncoding: 'gzip' })
    await connected(server, warm, 1)
    const before = await server.call('memory', {})
    const client = load(clients, { acceptEncoding: 'gzip' })
    await connected(server, client, clients, clients + 1)
    // Connected and idle: what a gzip stream holds per client before any event.
    const idle = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    await server.call('start', { burst: 1, events, creditBytes: CREDIT_BYTES_PER_CLIENT })
    await sleep(SIZES.warmMs)
    const { r0, r1, seconds, cpuMs } = await measureWindow(server, client, SIZES.windowS)
    await server.call('stop')
    const { compression } = await server.call('compression')
    const after = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    const deliveries = r1.events - r0.events
    return {
      deliveredPerS: deliveries / seconds,
      wireBytesPerEvent: (r1.bytes - r0.bytes) / deliveries,
      // The deflate output alone against its input, as the hub counts them (no HTTP framing).
      hubShare: compression?.plainBytes ? compression.wireBytes / compression.plainBytes : undefined,
      cpuSPerMillion: deliveries ? (cpuMs / 1000) / (deliveries / 1e6) : Infinity,
      idleRssPerClientKB: (idle.rss - before.rss) / clients / 1024,
      rssPerClientKB: (after.rss - before.rss) / clients / 1024,
      ...latencyMs(r1),
      clientBusy: (r1.cpuMs - r0.cpuMs) / (r1.wallMs - r0.wallMs),
      ...damage(r1)
    }
  })
}

function targets (scenario, events, r) {
  const plain = r['native-small-young']
  const gzip = r['native-gzip']
  const perConnection = r['http-gzip']
  const share = times(gzip?.wireBytesPerEvent, plain?.wireBytesPerEvent)
  const speed = times(gzip?.deliveredPerS, plain?.deliveredPerS)
  const memory = times(gzip?.idleRssPerClientKB, plain?.idleRssPerClientKB)
  const lines = [
    `${scenario}: gzip ${percent(share)} of the plain bytes on the wire` +
      (events === 'prices' ? ` (target at most 35 %: ${against(share, share <= 0.35)})` : '') +
      `, ${percent(speed)} of the uncompressed hub's deliveries/s (target at least 80 %: ${against(speed, speed >= 0.8)}), ` +
      `RSS per idle connection ${gzip?.idleRssPerClientKB.toFixed(2)} KB against ${plain?.idleRssPerClientKB.toFixed(2)} KB (target within 10 %: ${against(memory, memory <= 1.1)})`
  ]
  if (perConnection) {
    lines.push(`${scenario}: per-connection zlib: ${times(gzip?.deliveredPerS, perConnection.deliveredPerS).toFixed(1)}x fewer deliveries/s than the compressing hub, ` +
      `${perConnection.idleRssPerClientKB.toFixed(0)} KB per idle connection, ${percent(times(perConnection.wireBytesPerEvent, plain?.wireBytesPerEvent))} of the plain bytes`)
  }
  return lines
}

async function run () {
  for (const events of Object.keys(EVENTS)) {
    for (const clients of SIZES.fanout) {
      const scenario = `compression, ${events}, ${clients.toLocaleString('en')} clients`
      const results = await each(scenario, (kind) => compressed(kind, clients, events), KINDS)
      addTargets(...targets(scenario, events, results))
      addRow(scenario, 'bytes on the wire per event', pick(results, 'wireBytesPerEvent'), { better: 'none', format: fixed(1) })
      addRow(scenario, 'the hub\'s deflate output / input', pick(results, 'hubShare'), { better: 'none', format: percent })
      addRow(scenario, 'events delivered/s', pick(results, 'deliveredPerS'), { better: 'none', format: si })
      addRow(scenario, 'server CPU s per million deliveries', pick(results, 'cpuSPerMillion'), { better: 'none', format: fixed(2) })
      addRow(scenario, 'RSS per connection, idle (KB)', pick(results, 'idleRssPerClientKB'), { better: 'none', format: fixed(2) })
      addRow(scenario, 'RSS per connection after the feed (KB)', pick(results, 'rssPerClientKB'), { better: 'none', format: fixed(1) })
      addRow(scenario, 'p99 publish to receipt (ms)', pick(results, 'p99Ms'), { better: 'none', format: fixed(1) })
    }
  }
}

module.exports = { name: 'compression', run }
