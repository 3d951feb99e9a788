'use strict'

// Pins a process (all its threads) to one core, so the server and the load client of a
// benchmark do not compete for the same core on a small machine; compare figures within one
// run only, as absolute ones drift between runs.

const os = require('node:os')
const { execFileSync } = require('node:child_process')

const PIN = os.availableParallelism() >= 2 && process.platform === 'linux'

function pin (pid, core) {
  if (!PIN) return
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' })
  } catch {
    // taskset missing: the figures are then less stable, not wrong.
  }
}

module.exports = { PIN, pin }
