'use strict'

// What one broadcast costs the JS thread with 100, 1,000 and 10,000 clients connected (100 at
// smoke sizes).

const { SIZES } = require('../settings')
const { withServer, connected, until, damage, each } = require('../harness')
const { addRow, pick, fixed } = require('../results')

/** JS-thread time of one broadcast with `clients` connected (median over rounds). */
async function cost (kind, clients) {
  // Fewer per round at 10,000, where a per-client loop takes 100 ms a broadcast.
  const count = clients > 1000 ? 50 : 200
  return withServer(kind, { heartbeatMs: 60_000 }, async (server, load) => {
    const client = load(clients)
    await connected(server, client, clients)
    const samples = []
    let sent = 0
    for (let round = 0; round < SIZES.costRounds; round++) {
      const { nsPerBroadcast } = await server.call('broadcastCost', { count, bytes: 100, firstSeq: sent })
      sent += count
      if (round > 0) samples.push(nsPerBroadcast)
      await until('the broadcasts to arrive', async () => (await client.report()).readingMinEvents >= sent)
    }
    samples.sort((a, b) => a - b)
    const r = await client.report()
    return { usPerBroadcast: samples[samples.length >> 1] / 1000, ...damage(r) }
  })
}

async function run () {
  for (const clients of SIZES.cost) {
    const scenario = `JS thread per broadcast, ${clients.toLocaleString('en')} clients`
    const results = await each(scenario, (kind) => cost(kind, clients))
    addRow(scenario, 'µs per broadcast', pick(results, 'usPerBroadcast'), { better: 'lower', format: fixed(1) })
  }
}

module.exports = { name: 'cost', run }
