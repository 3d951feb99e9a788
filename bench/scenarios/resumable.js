'use strict'

// Resumable streams: hub.publishStream() against the resumable-stream library, both on one
// redis-server, run by bench/resumable.js in a process of its own (its readers are in that
// process); its table goes under the main one.

const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { SMOKE } = require('../settings')
const { RUN_LIMIT_MS } = require('../harness')
const { addFlag, addSection } = require('../results')

async function run () {
  // Its own script (two libraries on one redis-server, readers in that process).
  const started = Date.now()
  const script = spawnSync(process.execPath, [path.join(__dirname, '..', 'resumable.js'), ...(SMOKE ? ['--smoke'] : [])],
    { encoding: 'utf8', timeout: RUN_LIMIT_MS * 3, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = (script.stdout ?? '').split('\n')
  const at = lines.findIndex((line) => line.startsWith('Resumable streams'))
  if (script.status !== 0 || at < 0) {
    addFlag({ scenario: 'resumable streams', kind: 'native', text: `run failed (exit ${script.status})`, harmful: true, name: 'bench/resumable.js' })
  } else {
    const table = lines.slice(at).filter((line) => line !== '')
    addSection('resumable', [table[0], '', ...table.slice(1)])
  }
  console.log(`${'resumable streams'.padEnd(34)} ${'bench/resumable.js'.padEnd(28)} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`)
}

module.exports = { name: 'resumable', run }
