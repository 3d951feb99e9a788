'use strict'

// The send() loop: the token stream (token.js) through one call per event, on the servers that
// have such a call; tokens/s.

const { SIZES } = require('../settings')
const { each } = require('../harness')
const { addRow, addTargets, pick, si } = require('../results')
const { token, tokenTargets } = require('./token')

/** The servers whose per-client API is a call per event (the others have only their stream form). */
const LOOP_KINDS = ['native', 'node-transport', 'baseline', 'http', 'hono-native']
/** What the send() loop scenario's producers yield after (bench/servers.js). */
const LOOP_YIELD_EVERY = 1000

async function run () {
  const scenario = `send() loop: 1 client, ${SIZES.tokens.toLocaleString('en')} x 20 B`
  const results = await each(scenario, (kind) => token(kind, { loop: true }), LOOP_KINDS)
  addTargets(...tokenTargets(scenario, results, `a res.write() loop, each yielding every ${LOOP_YIELD_EVERY.toLocaleString('en')}`))
  addRow(scenario, `tokens/s${SIZES.tokenRounds > 1 ? ` (median of ${SIZES.tokenRounds})` : ''}`, pick(results, 'tokensPerS'), { format: si })
}

module.exports = { name: 'loop', run }
