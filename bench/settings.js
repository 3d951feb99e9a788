'use strict'

// What `npm run bench` was asked (`--smoke`, `--only`, `--servers`; see bench/run.js) and the
// sizes that follow: read once from the command line, the same for every module of the run.

const { SERVERS, FETCH_KINDS, runtimeInstalled } = require('./servers')

const args = process.argv.slice(2)
const SMOKE = args.includes('--smoke')
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null
/** Servers that run only when `--servers` names them. */
const ONLY_WHEN_NAMED = ['native-traced']
const KINDS = args.includes('--servers') ? args[args.indexOf('--servers') + 1].split(',') : Object.keys(SERVERS).filter((k) => runtimeInstalled(k) && !ONLY_WHEN_NAMED.includes(k))

const SIZES = SMOKE
  ? { cross: 100, fanout: [200], latencyClients: 200, windowS: 0.5, warmMs: 300, idle: 1000, idleWindowS: 1, idleSettleMs: 0, slowEvents: 1000, tokens: 20_000, tokenRounds: 1, cost: [100], costRounds: 2, scale: 2000, scaleWindowS: [2, 1], scaleReaches: 2, wave: [500], feedIntervalsMs: [10], reaches: 3 }
  : { cross: 1000, fanout: [1000, 10_000], latencyClients: 1000, windowS: 5, warmMs: 1000, idle: 10_000, idleWindowS: 10, idleSettleMs: 5000, slowEvents: 20_000, tokens: 1_000_000, tokenRounds: 3, cost: [100, 1000, 10_000], costRounds: 6, scale: 100_000, scaleWindowS: [30, 10], scaleReaches: 5, wave: [1000, 10_000], feedIntervalsMs: [20, 10, 2], reaches: 21 }
/** Servers that differ from another only in Node's flags: run in the memory scenarios alone. */
const MEMORY_ONLY_KINDS = ['native-small-young']
/** hub.route(): measured where it differs from attach(), accepting connections (wave). */
const ROUTE_KINDS = ['native-route', 'http-backlog', 'baseline-route']
/** What no handler inside Node's request path can beat, attach() included: the wave's bounds
 *  (servers.js handlerBound). They serve no events. */
const WAVE_BOUND_KINDS = ['http-floor', 'http-drop']
/** Servers that compress: run in the compression scenario alone. */
const COMPRESSION_KINDS = ['native-gzip', 'http-gzip']
/** What fan-out and the token stream compare: every server but those and the wave's bounds. */
const UNCOMPRESSED_KINDS = KINDS.filter((k) => !COMPRESSION_KINDS.includes(k) && !WAVE_BOUND_KINDS.includes(k))
/** Every scenario but fan-out and the token stream leaves the Fetch API servers out. */
const CORE_KINDS = UNCOMPRESSED_KINDS.filter((k) => !FETCH_KINDS.includes(k) && !MEMORY_ONLY_KINDS.includes(k) && !ROUTE_KINDS.includes(k))

module.exports = { SMOKE, ONLY, KINDS, SIZES, MEMORY_ONLY_KINDS, ROUTE_KINDS, WAVE_BOUND_KINDS, COMPRESSION_KINDS, UNCOMPRESSED_KINDS, CORE_KINDS }
