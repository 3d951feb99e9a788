'use strict'

// What the memory tests share: a process of raw clients (fixtures/churn-clients.js) driven one
// command at a time, and this process's memory in use after full collections.

const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const fs = require('node:fs')
const { fork } = require('node:child_process')

const HOOKS_ADDON = path.join(__dirname, '..', 'target', 'test-hooks', 'native-sse.node')
if (!fs.existsSync(HOOKS_ADDON)) throw new Error(`${HOOKS_ADDON} is missing: run npm run build:test-hooks`)
// Loaded beside the release addon the hub runs on, only for its allocator counter.
const { allocatorInUse } = require(HOOKS_ADDON)

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

/** The churn client process, driven one command at a time. */
function churnClients () {
  const child = fork(path.join(__dirname, 'fixtures', 'churn-clients.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ask = (message, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`churn clients: no answer to ${message.command} in ${timeoutMs} ms`)), timeoutMs)
    child.once('message', (answer) => { clearTimeout(timer); resolve(answer) })
    child.send(message)
  })
  return {
    ask,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', resolve)
      child.send({ command: 'exit' })
    })
  }
}

/** Native memory and JS heap in use (and RSS, for the record), after full collections. */
async function settledMemory () {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const native = allocatorInUse()
  const { rss, heapUsed } = process.memoryUsage()
  return { native, rss, heapUsed }
}

module.exports = { churnClients, settledMemory }
