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

/**
 * settledMemory() once native memory stops falling: read every 250 ms until it falls by less
 * than `stillBytes` between two reads (at most 40 reads). A wave's native writers end their
 * tasks about a second after their last write (crates/core/src/writer.rs, PARK_AFTER), about
 * 650 B each; read before that, a wave of 6,000 idle clients counts 2-4 MB of tasks that are
 * on their way out.
 */
async function memoryOnceNativeSettles (stillBytes) {
  let last = await settledMemory()
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const now = await settledMemory()
    if (last.native - now.native < stillBytes) return now
    last = now
  }
  return last
}

/**
 * The JS heap's live objects in bytes, code left out, from a heap snapshot. `heapUsed` counts,
 * besides them, JIT code compiled meanwhile and pages not swept yet: 10-40 B per client each over
 * a wave of 6,000, both ways, which hides a field added to every Client.
 */
async function liveHeapBytes () {
  const chunks = []
  for await (const chunk of v8.getHeapSnapshot()) chunks.push(chunk)
  const { snapshot: { meta }, nodes } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const fields = meta.node_fields.length
  const typeAt = meta.node_fields.indexOf('type')
  const sizeAt = meta.node_fields.indexOf('self_size')
  // 'code' holds bytecode, feedback and machine code: what V8 makes of the functions that ran.
  const code = meta.node_types[0].indexOf('code')
  let bytes = 0
  for (let i = 0; i < nodes.length; i += fields) if (nodes[i + typeAt] !== code) bytes += nodes[i + sizeAt]
  return bytes
}

module.exports = { churnClients, settledMemory, memoryOnceNativeSettles, liveHeapBytes }
