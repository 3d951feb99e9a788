'use strict'

// A token stream: one client fed 1,000,000 events of 20 B (20,000 at smoke sizes) through each
// server's per-client stream; tokens/s. The send() loop scenario (loop.js) measures the same
// way, one call per event.

const { SIZES, UNCOMPRESSED_KINDS } = require('../settings')
const { withServer, until, damage, each } = require('../harness')
const { addRow, addTargets, pick, si, times, against, fetchComparison } = require('../results')

/** One client fed `tokens` events of 20 B through the per-client API (`loop`: one call each). */
async function token (kind, { loop = false } = {}) {
  const events = SIZES.tokens
  const rates = []
  let last
  for (let round = 0; round < SIZES.tokenRounds; round++) {
    last = await withServer(kind, { heartbeatMs: 60_000, tokens: events, loop }, async (server, load) => {
      const client = load(1)
      const first = await until('the token stream to start', async () => {
        const r = await client.report()
        return r.connected > 0 ? r : null
      }, 30_000)
      const r = await until(`${events} tokens`, async () => {
        const r = await client.report()
        return r.events >= events || r.closed > 0 ? r : null
      })
      rates.push((r.events - first.events) / ((r.wallMs - first.wallMs) / 1000))
      // A server may end the response once its stream is done; only an early close counts.
      return { ...r, closed: r.events >= events ? 0 : r.closed }
    })
  }
  rates.sort((a, b) => a - b)
  return { tokensPerS: rates[rates.length >> 1], ...damage(last), gotAll: last.events >= events }
}

function tokenTargets (scenario, r, what = "the node:http loop awaiting 'drain'") {
  const vsHttp = times(r.native?.tokensPerS, r.http?.tokensPerS)
  return [`${scenario}: ${vsHttp.toFixed(1)}x ${what} (target 3x: ${against(vsHttp, vsHttp >= 3)})`]
}

async function run () {
  const scenario = `token stream: 1 client, ${SIZES.tokens.toLocaleString('en')} x 20 B`
  // hub.route() answers its path before the server's handler runs, so it has no per-client
  // token stream to measure (it waited out the run's limit for tokens that never came).
  const results = await each(scenario, token, UNCOMPRESSED_KINDS.filter((kind) => kind !== 'native-route'))
  addTargets(...tokenTargets(scenario, results), ...fetchComparison(scenario, results, 'tokensPerS'))
  addRow(scenario, `tokens/s${SIZES.tokenRounds > 1 ? ` (median of ${SIZES.tokenRounds})` : ''}`, pick(results, 'tokensPerS'), { format: si })
}

module.exports = { name: 'token', run, token, tokenTargets }
