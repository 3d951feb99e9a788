'use strict'

// Latency under a steady feed: 1,000 clients (200 at smoke sizes), one 100 B event every 20 or
// 10 ms; publish-to-receive percentiles, then the time one broadcast takes to reach them all.

const { SIZES, CORE_KINDS } = require('../settings')
const { sleep, withServer, connected, measureWindow, latencyMs, damage, until, reachTime, each } = require('../harness')
const { addRow, addTargets, pick, fixed, verdict } = require('../results')

/**
 * Latency of a steady feed: 1,000 clients, one 100 B event every `intervalMs`; then, with the
 * feed stopped, the time one broadcast takes to reach all of them (what a p99 is judged by).
 */
async function latency (kind, intervalMs) {
  const clients = SIZES.latencyClients
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    await server.call('steady', { intervalMs, bytes: 100 })
    await sleep(SIZES.warmMs)
    const { r0, r1, seconds } = await measureWindow(server, client, SIZES.windowS)
    const { published } = await server.call('stop')
    await until('the feed to arrive', async () => (await client.report()).readingMinEvents >= published)
    const reach = await reachTime(server, client, SIZES.reaches, published)
    return {
      ...latencyMs(r1),
      fanoutMs: reach.ms,
      deliveredPerS: (r1.events - r0.events) / seconds,
      ...damage(await client.report())
    }
  })
}

function latencyTargets (scenario, r) {
  const n = r.native
  const t = r['node-transport']
  const h = r.http
  const lines = []
  if (n) lines.push(`${scenario}: native p99 ${n.p99Ms.toFixed(2)} ms, ${(n.p99Ms / n.fanoutMs).toFixed(1)}x one fan-out (${n.fanoutMs.toFixed(2)} ms; target at most 2x: ${verdict(n.p99Ms <= 2 * n.fanoutMs)})`)
  if (t && h) lines.push(`${scenario}: Node transport p99 ${(t.p99Ms / h.p99Ms).toFixed(2)}x node:http's (target at most 2x: ${verdict(t.p99Ms <= 2 * h.p99Ms)})`)
  return lines
}

async function run () {
  for (const intervalMs of SIZES.feedIntervalsMs) {
    const scenario = `latency, ${SIZES.latencyClients.toLocaleString('en')} clients, ${1000 / intervalMs} events/s`
    const results = await each(scenario, (kind) => latency(kind, intervalMs), [...CORE_KINDS, 'hono-native', 'hono-fetch', 'hono-sse'])
    addTargets(...latencyTargets(scenario, results))
    addRow(scenario, 'publish to receive p50 (ms)', pick(results, 'p50Ms'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'p99 (ms)', pick(results, 'p99Ms'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'max (ms)', pick(results, 'maxMs'), { better: 'lower', format: fixed(2) })
    addRow(scenario, 'one broadcast reaches all, no feed (ms)', pick(results, 'fanoutMs'), { better: 'lower', format: fixed(2) })
  }
}

module.exports = { name: 'latency', run }
