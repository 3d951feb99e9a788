'use strict'

// A reconnect wave: clients opened as fast as the load client can open them (as a deploy or a
// network blip makes them come back), against a server already holding one. Connects per
// second to each client's response head, the head's latency, RSS per client 3 s after (no
// forced GC), then a blip: every client drops at once and comes straight back.

const { SIZES, CORE_KINDS, ROUTE_KINDS, WAVE_BOUND_KINDS } = require('../settings')
const { FETCH_KINDS } = require('../servers')
const { sleep, withServer, connected, each } = require('../harness')
const { addRow, addTargets, pick, fixed, times, verdict, ratioText } = require('../results')

/** Handshakes the load client keeps in flight: an outside client opens this many at once. */
const AT_ONCE = 1000

async function wave (kind, clients) {
  return withServer(kind, { heartbeatMs: 15_000 }, async (server, load) => {
    const warm = load(1)
    await connected(server, warm, 1)
    const before = await server.call('memory', { settleMs: 1000 })
    const first = load(clients, { connectingAtOnce: AT_ONCE })
    await connected(server, first, clients, clients + 1, 60_000)
    const r1 = await first.report()
    await sleep(3000)
    const burst = await server.call('memory', { gc: false })
    // The blip: every client leaves at once (the load client exits, its sockets close) and
    // as many come back at once, while the server still releases the ones that left.
    await first.stop()
    const again = load(clients, { connectingAtOnce: AT_ONCE })
    await connected(server, again, clients, clients + 1, 60_000)
    const r2 = await again.report()
    return {
      connectsPerS: clients / (r1.connect.lastHeadMs / 1000),
      headP50Ms: r1.connect.p50Us / 1000,
      headP99Ms: r1.connect.p99Us / 1000,
      burstKBPerClient: (burst.rss - before.rss) / clients / 1024,
      blipConnectsPerS: clients / (r2.connect.lastHeadMs / 1000),
      blipHeadP99Ms: r2.connect.p99Us / 1000
    }
  })
}

async function run () {
  for (const clients of SIZES.wave) {
    const scenario = `reconnect wave, ${clients.toLocaleString('en')} clients`
    const results = await each(scenario, (kind) => wave(kind, clients), [...CORE_KINDS, ...ROUTE_KINDS, ...WAVE_BOUND_KINDS, ...FETCH_KINDS])
    // hub.route() is what a server expecting waves uses; attach() is measured beside it.
    for (const [kind, label] of [['native-route', 'hub.route()'], ['native', 'attach()']]) {
      const rate = times(results[kind]?.connectsPerS, results.http?.connectsPerS)
      const memory = times(results[kind]?.burstKBPerClient, results.http?.burstKBPerClient)
      addTargets(
        `${scenario}, ${label}: ${rate.toFixed(2)}x node:http's connects per second (target at least 1.5x: ${verdict(rate >= 1.5)})`,
        `${scenario}, ${label}: ${memory.toFixed(2)}x node:http's RSS per client 3 s after the wave (target at most 0.5x: ${verdict(memory <= 0.5)})`
      )
    }
    // attach() runs inside Node's request handler, after Node accepted, parsed and built req
    // and res: what the two bounds measure is what no handler can beat, attach() included.
    if (results['http-floor'] !== undefined) {
      const rate = (kind) => ratioText(times(results['http-floor'].connectsPerS, results[kind]?.connectsPerS), 2)
      addTargets(`${scenario}, bound of any node:http handler: the least one (the head in one socket write, ` +
        `attach()'s accept queue) accepts at ${rate('http')} node:http's rate, ${rate('http-backlog')} that of node:http with the same queue, ${rate('native')} attach()'s`)
    }
    if (results['http-drop'] !== undefined) {
      const rss = (kind) => ratioText(times(results['http-drop'].burstKBPerClient, results[kind]?.burstKBPerClient), 2)
      addTargets(`${scenario}, bound of any node:http handler: one that keeps nothing (the head, then close) leaves ` +
        `${rss('http')} node:http's RSS per client, ${rss('native')} attach()'s`)
    }
    addRow(scenario, 'connects per second to the response head', pick(results, 'connectsPerS'), { format: fixed(0) })
    addRow(scenario, 'response head p99 (ms)', pick(results, 'headP99Ms'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'RSS per client 3 s after, no GC (KB)', pick(results, 'burstKBPerClient'), { better: 'lower', format: fixed(1) })
    addRow(scenario, 'all drop and reconnect: connects per second', pick(results, 'blipConnectsPerS'), { format: fixed(0) })
  }
}

module.exports = { name: 'wave', run }
