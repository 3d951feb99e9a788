'use strict'

// `npm run bench`: native-sse against the libraries people use, each server in a fresh process
// pinned to core 0, the Rust load client (crates/loadgen, `sse-load`) pinned to core 1.
//
//   npm run bench                   full run (about 20 minutes); writes bench/RESULTS.md
//   npm run bench -- --smoke        small sizes, under a minute (CI)
//   npm run bench -- --only fanout,token   some scenarios (fanout, latency, idle, scale, wave, slow, token, loop, cost, compression, cross, resumable)
//   npm run bench -- --servers native,node-transport   some servers (see bench/servers.js)
//   NATIVE_SSE_BASELINE=/other/checkout npm run bench -- --servers native,baseline   two builds, one run
//     (also baseline-hono-fetch, baseline-bun-hono-native, baseline-deno-hono-native: its Fetch body)
//   BENCH_NODE_FLAGS="--perf-basic-prof" npm run bench ...   extra flags for the Node servers (profiling)
//
// Every run is bounded in time and checks each client's sequence (loss, repeats, order). The
// table gives each server's figures and, in brackets, how many times better native-sse is.
// Fan-out runs publish as fast as each server takes events, so their latency is the depth of
// the kernel's socket buffers; latency is measured on its own, under a steady feed.
//
// This file is the runner: it takes the scenarios (bench/scenarios/, one file each) in the
// order below and prints the report. bench/settings.js reads the command line and sets the
// sizes, bench/harness.js starts the servers and the load client and measures them,
// bench/results.js keeps the figures and writes bench/RESULTS.md.

const os = require('node:os')
const { PIN } = require('./pin')
const { SMOKE, ONLY } = require('./settings')
const { ensureLoadgen } = require('./harness')
const { report, writeResults, nativeHarmed } = require('./results')

/** Every scenario, in the order a run takes them; `--only` names some of them. */
const SCENARIOS = [
  require('./scenarios/fanout'),
  require('./scenarios/latency'),
  require('./scenarios/idle'),
  require('./scenarios/scale'),
  require('./scenarios/wave'),
  require('./scenarios/slow'),
  require('./scenarios/token'),
  require('./scenarios/loop'),
  require('./scenarios/cost'),
  require('./scenarios/compression'),
  require('./scenarios/resumable'),
  require('./scenarios/cross')
]

async function main () {
  ensureLoadgen()
  const wanted = (name) => !ONLY || ONLY.includes(name)
  const began = Date.now()
  console.log(`native-sse bench${SMOKE ? ' (smoke)' : ''}: Node ${process.version}, ${os.availableParallelism()} cores${PIN ? ', servers on core 0, load client on core 1' : ' (not pinned)'}`)
  for (const scenario of SCENARIOS) {
    if (wanted(scenario.name)) await scenario.run()
  }
  const minutes = ((Date.now() - began) / 60_000).toFixed(1)
  const output = report()
  console.log(`\n${output.join('\n')}\n\n${minutes} min`)
  if (!SMOKE && !ONLY) writeResults(output.join('\n'), minutes)
  // native-sse itself must never lose, repeat, reorder or cut; the peers' problems are reported.
  if (nativeHarmed()) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
