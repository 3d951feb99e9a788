'use strict'

// Slow consumers: 100 clients, 10 of which never read, while 20,000 events of 1 KB (1,000 at
// smoke sizes) are published as fast as taken; when the fast ones complete, and peak memory.

const { SIZES } = require('../settings')
const { withServer, connected, until, damage, each } = require('../harness')
const { SERVERS } = require('../servers')
const { addRow, addTargets, pick, fixed, verdict } = require('../results')

/** 100 clients, 10 never read, while 20,000 events of 1 KB are published as fast as taken. */
async function slow (kind) {
  const events = SIZES.slowEvents
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(100, { stalled: 10 })
    await connected(server, client, 100)
    const started = Date.now()
    const { publishMs } = await server.call('flood', { events, burst: 64, bytes: 1024 })
    const r = await until('the fast clients to get every event', async () => {
      const r = await client.report()
      return r.readingMinEvents >= events ? r : null
    }, 60_000)
    const completionS = (Date.now() - started) / 1000
    const { peakRss, rss, logPeakBytes } = await server.call('peakRss')
    return {
      fastCompletionS: completionS,
      publishS: publishMs / 1000,
      peakRssMB: peakRss / 2 ** 20,
      rssMB: rss / 2 ** 20,
      logPeakMB: logPeakBytes === undefined ? undefined : logPeakBytes / 2 ** 20,
      ...damage(r)
    }
  })
}

function slowTargets (scenario, r) {
  const n = r.native
  // A run returns only once every fast client had every event (else it failed: `n` is null).
  const bound = n && n.closed === 0 && n.logPeakMB <= 32
  const others = ['http', 'better-sse', 'fastify-sse'].filter((k) => r[k]).map((k) => `${SERVERS[k].name} ${r[k].peakRssMB.toFixed(0)} MB`)
  return [`${scenario}: fast clients got every event and the log held ${n?.logPeakMB?.toFixed(1)} MB of the 32 MiB bound, ` +
    `peak RSS ${n?.peakRssMB?.toFixed(0)} MB against ${others.join(', ')} (target: ${verdict(bound)})`]
}

async function run () {
  const scenario = `slow consumers: 10 of 100 never read, ${SIZES.slowEvents.toLocaleString('en')} x 1 KB`
  const results = await each(scenario, slow)
  addTargets(...slowTargets(scenario, results))
  addRow(scenario, 'fast clients complete (s)', pick(results, 'fastCompletionS'), { better: 'lower', format: fixed(2) })
  addRow(scenario, 'server peak RSS (MB)', pick(results, 'peakRssMB'), { better: 'lower', format: fixed(0) })
  addRow(scenario, 'most a channel log held (MB; bound: maxLagBytes, 32 MiB)', pick(results, 'logPeakMB'), { better: 'none', format: fixed(1) })
}

module.exports = { name: 'slow', run }
