'use strict'

// Fan-out: 1,000 and 10,000 clients (200 at smoke sizes), one event per turn and bursts of 64,
// each server publishing 100 B events as fast as it takes them (paced by the same rule for all:
// the most-behind client may have at most 64 KiB waiting); delivered/s and server CPU.

const { SIZES, UNCOMPRESSED_KINDS, CORE_KINDS } = require('../settings')
const { CREDIT_BYTES_PER_CLIENT, sleep, withServer, connected, measureWindow, latencyMs, damage, each } = require('../harness')
const { addRow, addTargets, flagged, pick, si, fixed, percent, times, ratioText, verdict, against, fetchComparison } = require('../results')

async function fanout (kind, clients, burst) {
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    await server.call('start', { burst, bytes: 100, creditBytes: CREDIT_BYTES_PER_CLIENT })
    await sleep(SIZES.warmMs)
    const { r0, r1, seconds, cpuMs, kernelShare } = await measureWindow(server, client, SIZES.windowS)
    const { jsMs } = await server.call('stop')
    const deliveries = r1.events - r0.events
    return {
      deliveredPerS: deliveries / seconds,
      ...latencyMs(r1),
      cpuSPerMillion: deliveries ? (cpuMs / 1000) / (deliveries / 1e6) : Infinity,
      kernelShare,
      clientBusy: (r1.cpuMs - r0.cpuMs) / (r1.wallMs - r0.wallMs),
      jsMs,
      ...damage(r1)
    }
  })
}

function fanoutTargets (scenario, r) {
  const vsBetter = times(r.native?.deliveredPerS, r['better-sse']?.deliveredPerS)
  const vsHttp = times(r.native?.deliveredPerS, r.http?.deliveredPerS)
  const clean = r.native && !flagged(scenario, 'native')
  return [`${scenario}: ${ratioText(vsBetter)} better-sse (target 20x: ${against(vsBetter, vsBetter >= 20)}), ` +
    `${ratioText(vsHttp)} node:http (target 10x: ${against(vsHttp, vsHttp >= 10)}), nothing lost: ${verdict(clean)}`]
}

async function run () {
  for (const clients of SIZES.fanout) {
    for (const [mode, burst] of [['one event per turn', 1], ['bursts of 64', 64]]) {
      const scenario = `fan-out, ${clients.toLocaleString('en')} clients, ${mode}`
      // The Fetch API servers at 1,000 clients only: at 10,000 in bursts Hono's streamSSE
      // server falls so far behind that the run does not complete.
      const results = await each(scenario, (kind) => fanout(kind, clients, burst), clients <= 1000 ? UNCOMPRESSED_KINDS : CORE_KINDS)
      addTargets(...fanoutTargets(scenario, results), ...fetchComparison(scenario, results, 'deliveredPerS'))
      addRow(scenario, 'events delivered/s', pick(results, 'deliveredPerS'), { format: si })
      addRow(scenario, 'server CPU s per million deliveries', pick(results, 'cpuSPerMillion'), { better: 'lower', format: fixed(2) })
      addRow(scenario, 'share of that CPU in the kernel', pick(results, 'kernelShare'), { better: 'none', format: percent })
    }
  }
}

module.exports = { name: 'fanout', run }
