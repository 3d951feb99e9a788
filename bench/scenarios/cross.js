'use strict'

// Cross-process fan-out: three processes with their own clients, publishing each to its own,
// or one publishing for all three through one namespace in a real redis-server; its table goes
// under the main one.

const { PIN } = require('../pin')
const { startRedis } = require('../../test-support/redis')
const { SIZES } = require('../settings')
const { CREDIT_BYTES_PER_CLIENT, RUN_LIMIT_MS, sleep, startServer, startLoad, connected, damage, brief } = require('../harness')
const { addFlag, addSection, si, fixed } = require('../results')

/**
 * Three processes with `clients` each. `viaRedis`: one namespace in Redis, one process
 * publishes and all three deliver; otherwise the same three hubs on their own, each publishing
 * to its own clients. `feed`: 'paced' (as fast as taken, bursts of 64) or 'steady' (100/s).
 */
async function crossProcess (viaRedis, feed) {
  const clients = SIZES.cross
  const redis = viaRedis ? await startRedis({ durable: false, core: PIN ? 0 : null }) : null
  const servers = []
  const loads = []
  const stopAll = async () => {
    for (const load of loads) await load.stop()
    for (const server of servers) await server.stop()
    await redis?.close()
  }
  const timer = setTimeout(stopAll, RUN_LIMIT_MS)
  try {
    const config = { heartbeatMs: 60_000, redisUrl: redis?.url, prefix: `bench-${process.pid}` }
    for (let i = 0; i < 3; i++) servers.push(await startServer(viaRedis ? 'native-redis' : 'native', config))
    for (const server of servers) loads.push(startLoad(server.port, clients))
    for (let i = 0; i < 3; i++) await connected(servers[i], loads[i], clients)
    const feeders = viaRedis ? servers.slice(0, 1) : servers
    for (const feeder of feeders) {
      if (feed === 'paced') await feeder.call('start', { burst: 64, bytes: 100, creditBytes: CREDIT_BYTES_PER_CLIENT })
      else await feeder.call('steady', { intervalMs: 10, bytes: 100 })
    }
    await sleep(SIZES.warmMs)
    for (const load of loads) load.reset()
    const r0 = await Promise.all(loads.map((load) => load.report()))
    await sleep(SIZES.windowS * 1000)
    const r1 = await Promise.all(loads.map((load) => load.report()))
    for (const feeder of feeders) await feeder.call('stop')
    const sum = (f) => r1.reduce((total, r, i) => total + f(r, r0[i]), 0)
    const worst = (f) => Math.max(...r1.map(f))
    return {
      deliveredPerS: sum((r, before) => r.events - before.events) / ((r1[0].wallMs - r0[0].wallMs) / 1000),
      p50Ms: worst((r) => r.latency.p50Us) / 1000,
      p99Ms: worst((r) => r.latency.p99Us) / 1000,
      clientBusy: worst((r) => r.cpuMs / r.wallMs),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      reordered: sum((r) => r.reordered),
      closed: sum((r) => r.closed),
      withoutSequence: sum((r) => r.withoutSequence)
    }
  } finally {
    clearTimeout(timer)
    await stopAll()
  }
}

async function run () {
  const label = { local: '3 hubs on their own', redis: '3 hubs through Redis' }
  const results = {}
  for (const [feed, viaRedis] of [['paced', false], ['paced', true], ['steady', false], ['steady', true]]) {
    const key = `${feed}-${viaRedis ? 'redis' : 'local'}`
    const started = Date.now()
    try {
      results[key] = await crossProcess(viaRedis, feed)
      const problems = Object.entries(damage(results[key])).filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}`)
      if (problems.length) addFlag({ scenario: `cross-process, ${feed}`, kind: 'native', text: problems.join('; '), harmful: true, name: label[viaRedis ? 'redis' : 'local'] })
      console.log(`${`cross-process, ${feed}`.padEnd(34)} ${label[viaRedis ? 'redis' : 'local'].padEnd(28)} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${brief(results[key])}`)
    } catch (error) {
      addFlag({ scenario: `cross-process, ${feed}`, kind: 'native', text: `run failed: ${error.message}`, harmful: true, name: label[viaRedis ? 'redis' : 'local'] })
      console.log(`cross-process, ${feed}: FAILED: ${error.message}`)
    }
  }
  const value = (key, field, format) => results[key] ? format(results[key][field]) : 'failed'
  addSection('cross', [
    `Cross-process fan-out: 3 processes x ${SIZES.cross.toLocaleString('en')} clients, 100 B events (all on core 0 with redis-server; three load clients on core 1).`,
    'On their own, each hub publishes to its own clients; through Redis, one process publishes and all three deliver.',
    '',
    `| figure | ${label.local} | ${label.redis} |`,
    '| --- | --- | --- |',
    `| delivered/s, as fast as taken (bursts of 64) | ${value('paced-local', 'deliveredPerS', si)} | ${value('paced-redis', 'deliveredPerS', si)} |`,
    `| publish to receive p50 / p99 (ms), 100 events/s | ${value('steady-local', 'p50Ms', fixed(2))} / ${value('steady-local', 'p99Ms', fixed(2))} | ${value('steady-redis', 'p50Ms', fixed(2))} / ${value('steady-redis', 'p99Ms', fixed(2))} |`
  ])
}

module.exports = { name: 'cross', run }
