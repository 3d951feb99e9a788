'use strict'

// Idle clients with 1 s heartbeats: RSS per client (right after the connect burst, and
// settled) and the heartbeats' CPU.

const { SIZES, CORE_KINDS, MEMORY_ONLY_KINDS } = require('../settings')
const { sleep, withServer, connected, measureWindow, damage, each } = require('../harness')
const { addRow, addTargets, pick, fixed, percent, times, ratioText, verdict, against } = require('../results')

/** Idle clients with 1 s heartbeats: server CPU over a window, then RSS per client. */
async function idle (kind) {
  const clients = SIZES.idle
  return withServer(kind, { heartbeatMs: 1000 }, async (server, load) => {
    const warm = load(1)
    await connected(server, warm, 1)
    const before = await server.call('memory', { settleMs: SIZES.idleSettleMs ? 1000 : 0 })
    const client = load(clients)
    await connected(server, client, clients, clients + 1)
    await sleep(SIZES.warmMs * 3)
    const burst = await server.call('memory', { gc: false })
    const { r0, r1, seconds, cpuMs, kernelShare } = await measureWindow(server, client, SIZES.idleWindowS)
    const after = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    return {
      burstRssPerClientKB: (burst.rss - before.rss) / clients / 1024,
      youngGenerationKBPerClient: (burst.youngGeneration - before.youngGeneration) / clients / 1024,
      rssPerClientKB: (after.rss - before.rss) / clients / 1024,
      heartbeatCpuPct: (cpuMs / 1000 / seconds) * 100,
      heartbeatKernelShare: kernelShare,
      heartbeatsPerClientPerS: (r1.comments - r0.comments) / clients / seconds,
      ...damage(r1)
    }
  })
}

function idleTargets (scenario, r) {
  const rss = r.native?.rssPerClientKB
  const burst = r.native?.burstRssPerClientKB
  const young = r.native?.youngGenerationKBPerClient
  const small = r['native-small-young']?.burstRssPerClientKB
  const cpu = times(r.native?.heartbeatCpuPct, r['better-sse']?.heartbeatCpuPct)
  return [
    `${scenario}: ${rss?.toFixed(1)} KB RSS per idle client (target at most 3 KB: ${verdict(rss <= 3)})`,
    `${scenario}: ${burst?.toFixed(1)} KB RSS per client 3 s after the connect burst, no GC (target at most 4 KB: ${verdict(burst <= 4)}` +
      `${small ? `; ${small.toFixed(1)} KB under node --max-semi-space-size=1, of which ${young?.toFixed(1)} KB without it is V8's young generation` : ''})`,
    `${scenario}: heartbeat CPU ${ratioText(cpu, 2)} better-sse's (target at most 0.4x: ${against(cpu, cpu <= 0.4)})`
  ]
}

async function run () {
  const scenario = `${SIZES.idle.toLocaleString('en')} idle clients, 1 s heartbeat`
  const results = await each(scenario, idle, [...CORE_KINDS, ...MEMORY_ONLY_KINDS, 'hono-native', 'hono-fetch', 'hono-sse'])
  addTargets(...idleTargets(scenario, results))
  addRow(scenario, 'RSS per client 3 s after connecting, no GC (KB)', pick(results, 'burstRssPerClientKB'), { better: 'lower', format: fixed(1) })
  addRow(scenario, 'of which V8\'s young generation grew (KB)', pick(results, 'youngGenerationKBPerClient'), { better: 'none', format: fixed(1) })
  addRow(scenario, 'RSS per client settled (KB)', pick(results, 'rssPerClientKB'), { better: 'lower', format: fixed(1) })
  addRow(scenario, 'heartbeat CPU (% of a core)', pick(results, 'heartbeatCpuPct'), { better: 'lower', format: fixed(1) })
  addRow(scenario, 'share of that CPU in the kernel', pick(results, 'heartbeatKernelShare'), { better: 'none', format: percent })
}

module.exports = { name: 'idle', run }
