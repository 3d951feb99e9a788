'use strict'

// What a run found, and how it is told: the table (a row per figure, a column per server, in
// brackets how many times better native-sse is), the tables of scenarios that compare
// something else, the targets native-sse reports against (figures, not timed tests) and the
// flags (loss, repeats, reordering, closed clients, a saturated load client). bench/run.js
// prints the report; a full run writes it to bench/RESULTS.md.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { SERVERS } = require('./servers')
const { SMOKE, KINDS } = require('./settings')

const ROWS = []
const FLAGS = []
const TARGETS = []
/**
 * The tables of their own, in the order the report gives them: the cross-process table, when
 * that scenario ran, and the one bench/resumable.js printed.
 */
const SECTIONS = { cross: [], resumable: [] }

function addRow (scenario, metric, results, { better = 'higher', format }) {
  ROWS.push({ scenario, metric, results, better, format })
}

/** Lines under the table (`name`: a key of SECTIONS). */
function addSection (name, lines) {
  SECTIONS[name].push(...lines)
}

/** What a scenario says of the targets. */
function addTargets (...lines) {
  TARGETS.push(...lines)
}

/** `{ scenario, kind, text, harmful, name? }`: `name` stands for the server's when the flag is not a server's. */
function addFlag (f) {
  FLAGS.push(f)
}

/** Flags what went wrong in `r`, one server's figures in `scenario`. */
function flag (scenario, kind, r) {
  const problems = []
  if (r.lost || r.duplicated || r.reordered || r.withoutSequence) problems.push(`lost ${r.lost}, repeated ${r.duplicated}, reordered ${r.reordered}`)
  if (r.closed) problems.push(`${r.closed} clients closed`)
  if (r.clientBusy > 0.9) problems.push(`load client saturated its core (${(r.clientBusy * 100).toFixed(0)} %)`)
  if (r.gotAll === false) problems.push('not every event arrived')
  // Only a saturated load client leaves the figures in doubt without anything having gone wrong.
  const harmful = problems.length > (r.clientBusy > 0.9 ? 1 : 0)
  if (problems.length) FLAGS.push({ scenario, kind, text: problems.join('; '), harmful })
}

/** Whether anything flagged `kind` in `scenario`. */
const flagged = (scenario, kind) => FLAGS.some((f) => f.scenario === scenario && f.kind === kind)

/** Whether native-sse (either transport) lost, repeated, reordered or cut anything, or failed to run. */
const nativeHarmed = () => FLAGS.some((f) => ['native', 'node-transport', 'native-gzip'].includes(f.kind) && f.harmful)

const pick = (results, key) => Object.fromEntries(Object.entries(results).map(([kind, r]) => [kind, r ? r[key] : null]))

const si = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)
const fixed = (digits, unit = '') => (n) => `${n.toFixed(digits)}${unit}`
const percent = (n) => `${Math.round(n * 100)} %`

const times = (a, b) => (a != null && b != null && b > 0 ? a / b : NaN)
const verdict = (met) => (met ? 'met' : 'MISSED')
/** A ratio against its target; a server left out (`--servers`) has no ratio to judge. */
const against = (ratio, met) => (Number.isNaN(ratio) ? 'not run' : verdict(met))
/** `2.5x` (with `digits`), or `-` where a server was left out and there is no ratio. */
const ratioText = (ratio, digits = 1) => (Number.isNaN(ratio) ? '-' : `${ratio.toFixed(digits)}x`)

/** The Fetch API servers against each other (no target: a comparison where they ran). */
function fetchComparison (scenario, r, key) {
  if (!r['hono-native']) return []
  const vs = (kind) => r[kind] ? `${times(r['hono-native'][key], r[kind][key]).toFixed(1)}x ${SERVERS[kind].name}` : `${SERVERS[kind].name} not run`
  return [`${scenario}, Fetch API under Hono: hub.response() ${vs('hono-sse')}, ${vs('better-sse-fetch')}`]
}

function cell (row, kind) {
  const value = row.results[kind]
  if (value === undefined) return 'n/a'
  if (value === null) return 'failed'
  const text = row.format(value)
  if (kind === 'native' || row.better === 'none') return text
  const native = row.results.native
  if (native == null || !Number.isFinite(value) || !Number.isFinite(native) || value === 0 || native === 0) return text
  const ratio = row.better === 'higher' ? native / value : value / native
  return `${text} (${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}x)`
}

function table () {
  const header = ['scenario', 'figure', ...KINDS.map((kind) => SERVERS[kind].name)]
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`]
  for (const row of ROWS) lines.push(`| ${row.scenario} | ${row.metric} | ${KINDS.map((kind) => cell(row, kind)).join(' | ')} |`)
  return lines.join('\n')
}

/** The report's lines: the table, its notes, the tables of their own, the targets, the flags. */
function report () {
  const output = [table(), '', '(Nx): how many times better native-sse is than that server in the same run.',
    'Fan-out runs publish as fast as each server takes events (paced by the same rule for all: the',
    'most-behind client may have at most 64 KiB waiting in the server), so their latency is the depth',
    'of the kernel\'s socket buffers, not reported; the latency rows come from a steady feed.']
  for (const lines of Object.values(SECTIONS)) if (lines.length) output.push('', ...lines)
  if (TARGETS.length) output.push('', `Targets${SMOKE ? ' (at smoke sizes: the targets are for the full run)' : ''}:`, ...TARGETS.map((line) => `- ${line}`))
  if (FLAGS.length) output.push('', 'Flags:', ...FLAGS.map((f) => `- ${f.scenario}, ${f.name ?? SERVERS[f.kind].name}: ${f.text}`))
  else output.push('', 'Flags: none (nothing lost, repeated or reordered; no client closed; the load client never saturated its core).')
  return output
}

function writeResults (body, minutes) {
  const cpu = os.cpus()[0]?.model || 'unknown CPU'
  const text = `# Benchmark results

The latest full \`npm run bench\` (${new Date().toISOString().slice(0, 10)}, ${minutes} minutes).

- Machine: ${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}
- Node ${process.version}; servers pinned to core 0, the load client (\`crates/loadgen\`) to core 1
- Command: \`npm run bench\`

${body}
`
  fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), text)
}

module.exports = { addRow, addSection, addTargets, addFlag, flag, flagged, nativeHarmed, pick, si, fixed, percent, times, ratioText, verdict, against, fetchComparison, report, writeResults }
