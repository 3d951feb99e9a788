'use strict'

// A real redis-server for the suites and the bench (Debian's package; .ci/run installs it):
// started on a free port of 127.0.0.1 in a temporary directory, with the append-only file
// fsynced on every write, as a deployment that must not lose what it acknowledged runs it. It
// can be stopped and started again on the same port with its data.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFile } = require('node:child_process')
const { freePort } = require('./loopback')

/** Runs redis-cli against `port`; resolves with its trimmed output (rejects on failure). */
function redisCli (port, ...args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')}: ${stderr || error.message}`))
      else resolve(stdout.trim())
    })
  })
}

/**
 * A redis-server on its own port and directory; `{ started: false }` only reserves them.
 * `durable: false` runs it without the append-only file (as a cache); `core` pins it there;
 * `cluster: true` makes it a Redis Cluster node (see startCluster).
 */
async function startRedis ({ started = true, durable = true, core = null, cluster = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-redis-'))
  const port = await freePort()
  const redis = { port, url: `redis://127.0.0.1:${port}`, process: null, dir }
  redis.start = async () => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no',
      ...(durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] : [])
    ]
    const child = core === null
      ? spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('taskset', ['-c', String(core), 'redis-server', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    redis.process = child
    const deadline = Date.now() + 10_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`)
      try {
        if (await redisCli(port, 'PING') === 'PONG') return
      } catch {}
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  /** Stops the server (SIGTERM: it syncs its append-only file and exits). */
  redis.stop = async () => {
    const child = redis.process
    if (child === null || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
    redis.process = null
  }
  redis.cli = (...args) => redisCli(port, ...args)
  redis.close = async () => {
    await redis.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  if (started) await redis.start()
  return redis
}

/** A Redis Cluster of `size` primaries on 127.0.0.1, its slots spread by redis-cli. */
async function startCluster (size = 3) {
  const nodes = []
  for (let i = 0; i < size; i++) nodes.push(await startRedis({ durable: false, cluster: true }))
  const cluster = {
    nodes,
    close: async () => { for (const node of nodes) await node.close() }
  }
  try {
    await redisCli(nodes[0].port, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes')
    const deadline = Date.now() + 20_000
    for (;;) {
      const states = await Promise.all(nodes.map((n) => n.cli('CLUSTER', 'INFO')))
      if (states.every((info) => info.includes('cluster_state:ok'))) break
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok within 20 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } catch (error) {
    await cluster.close()
    throw error
  }
  return cluster
}

module.exports = { startRedis, startCluster }
