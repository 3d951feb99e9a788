'use strict'

// 100,000 idle clients (2,000 at smoke sizes) on the servers that hold them: connect time,
// memory per client, the kernel's share, heartbeat CPU, one broadcast's reach.

const fs = require('node:fs')
const { execFileSync } = require('node:child_process')
const { SIZES } = require('../settings')
const { sleep, withServer, connected, measureWindow, damage, reachTime, each } = require('../harness')
const { addRow, addTargets, pick, fixed, verdict } = require('../results')

/** The servers of the 100,000-client scenario (the libraries fall over well before it). */
const SCALE_KINDS = ['native', 'native-small-young', 'node-transport', 'baseline', 'http']

/** The whole machine's TCP buffer memory (sockstat, in pages) and kernel slab (meminfo). */
function kernelMemory () {
  const sockstat = fs.readFileSync('/proc/net/sockstat', 'utf8')
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8')
  return {
    tcpBuffers: Number(sockstat.match(/TCP:.*\bmem (\d+)/)?.[1] ?? NaN) * 4096,
    slab: Number(meminfo.match(/^Slab:\s+(\d+)/m)?.[1] ?? NaN) * 1024
  }
}

/**
 * Descriptors for `wanted` connections in this process and what it starts (Node and the load
 * client raise their soft limit to the hard one). A run that may raises the hard limit; where
 * it may not (no CAP_SYS_RESOURCE, as in some containers), the scenario runs as far as the
 * hard limit allows and says so. Returns how many clients one process can hold.
 */
function fdRoomFor (wanted) {
  const limit = wanted + 4096
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}:${limit}`], { stdio: 'ignore' })
  } catch {}
  let hard
  try {
    hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim())
  } catch {}
  // Room for the process's own descriptors, and for handoffs in flight (the native transport
  // holds Node's descriptor and its duplicate for a moment).
  const room = Number.isFinite(hard) ? hard - 2048 : wanted
  return { clients: Math.min(wanted, room), hard }
}

/**
 * `SIZES.scale` idle clients from 127.0.0.1-127.0.0.8: connect time; memory per client 3 s
 * after the burst (no forced GC: what a dashboard shows in a reconnect wave) and settled
 * (after GCs); the kernel's share; heartbeat CPU at 15 s, then (a second server, connected
 * again) at 1 s; and how long one broadcast takes to reach every client.
 */
async function scale (kind, clients) {
  const [slowWindowS, fastWindowS] = SIZES.scaleWindowS
  const limitMs = 300_000
  const connectAll = async (server, load) => {
    const warm = load(1)
    await connected(server, warm, 1)
    const before = await server.call('memory', { settleMs: 1000 })
    const kernelBefore = kernelMemory()
    const started = Date.now()
    const client = load(clients)
    await connected(server, client, clients, clients + 1, limitMs / 2)
    return { client, before, kernelBefore, connectS: (Date.now() - started) / 1000 }
  }
  const heartbeat = async (server, client, seconds, periodS) => {
    const { r0, r1, cpuMs } = await measureWindow(server, client, seconds)
    const windowS = (r1.wallMs - r0.wallMs) / 1000
    return { cpuPct: (cpuMs / 1000 / windowS) * 100, perClientPerPeriod: (r1.comments - r0.comments) / clients / (windowS / periodS), r: r1 }
  }
  const slow = await withServer(kind, { heartbeatMs: 15_000 }, async (server, load) => {
    const { client, before, kernelBefore, connectS } = await connectAll(server, load)
    await sleep(3000)
    const burst = await server.call('memory', { gc: false })
    const kernel = kernelMemory()
    const beat = await heartbeat(server, client, slowWindowS, 15)
    const settled = await server.call('memory', { settleMs: SIZES.idleSettleMs })
    const reach = await reachTime(server, client, SIZES.scaleReaches, 0)
    return {
      connectS,
      burstKBPerClient: (burst.rss - before.rss) / clients / 1024,
      youngGenerationKBPerClient: (burst.youngGeneration - before.youngGeneration) / clients / 1024,
      settledKBPerClient: (settled.rss - before.rss) / clients / 1024,
      // Both ends of every connection are on this machine: per socket is half per connection.
      // Idle sockets hold no buffer pages: what is left is other sockets' traffic, noise.
      kernelBuffersBPerSocket: Math.max(0, (kernel.tcpBuffers - kernelBefore.tcpBuffers) / clients / 2),
      kernelSlabKBPerSocket: (kernel.slab - kernelBefore.slab) / clients / 2 / 1024,
      heartbeat15CpuPct: beat.cpuPct,
      heartbeats15PerClient: beat.perClientPerPeriod,
      reachMs: reach.ms,
      reachServerCpuMs: reach.cpuMs,
      ...damage(await client.report())
    }
  }, limitMs)
  const fast = await withServer(kind, { heartbeatMs: 1000 }, async (server, load) => {
    const { client } = await connectAll(server, load)
    await sleep(2000)
    const beat = await heartbeat(server, client, fastWindowS, 1)
    return { heartbeat1CpuPct: beat.cpuPct, heartbeats1PerClient: beat.perClientPerPeriod, ...damage(beat.r) }
  }, limitMs)
  const damageOfBoth = Object.keys(damage(slow)).map((key) => [key, slow[key] + fast[key]])
  return { ...slow, ...fast, ...Object.fromEntries(damageOfBoth) }
}

function scaleTargets (scenario, r, clients) {
  const n = r.native
  if (!n) return [`${scenario}: native-sse did not complete`]
  const where = clients === SIZES.scale ? '' : ` (measured at ${clients.toLocaleString('en')}: this machine's descriptor limit)`
  return [
    `${scenario}: ${n.settledKBPerClient.toFixed(2)} KB per idle native client settled (target at most 1.5 KB at ${SIZES.scale.toLocaleString('en')}${where}: ${verdict(n.settledKBPerClient <= 1.5)}); ` +
      `${n.burstKBPerClient.toFixed(2)} KB 3 s after the burst (${n.youngGenerationKBPerClient.toFixed(2)} of it V8's young generation); ` +
      `heartbeats per client per period ${n.heartbeats15PerClient.toFixed(2)} (15 s), ${n.heartbeats1PerClient.toFixed(2)} (1 s)`
  ]
}

async function run () {
  const { clients, hard } = fdRoomFor(SIZES.scale)
  const scenario = clients < SIZES.scale
    ? `${clients.toLocaleString('en')} idle clients (fd hard limit ${hard.toLocaleString('en')}, not raisable here)`
    : `${clients.toLocaleString('en')} idle clients`
  const results = await each(scenario, (kind) => scale(kind, clients), SCALE_KINDS)
  addTargets(...scaleTargets(scenario, results, clients))
  addRow(scenario, 'time to connect all (s)', pick(results, 'connectS'), { better: 'lower', format: fixed(1) })
  addRow(scenario, 'memory per client 3 s after the burst, no GC (KB)', pick(results, 'burstKBPerClient'), { better: 'lower', format: fixed(2) })
  addRow(scenario, 'of which V8\'s young generation grew (KB)', pick(results, 'youngGenerationKBPerClient'), { better: 'none', format: fixed(2) })
  addRow(scenario, 'memory per client settled (KB)', pick(results, 'settledKBPerClient'), { better: 'lower', format: fixed(2) })
  addRow(scenario, 'kernel socket buffers per socket (B)', pick(results, 'kernelBuffersBPerSocket'), { better: 'none', format: fixed(0) })
  addRow(scenario, 'kernel slab per socket (KB)', pick(results, 'kernelSlabKBPerSocket'), { better: 'none', format: fixed(2) })
  addRow(scenario, 'heartbeat CPU, 15 s heartbeat (% of a core)', pick(results, 'heartbeat15CpuPct'), { better: 'lower', format: fixed(2) })
  addRow(scenario, 'heartbeat CPU, 1 s heartbeat (% of a core)', pick(results, 'heartbeat1CpuPct'), { better: 'lower', format: fixed(1) })
  addRow(scenario, 'one broadcast reaches all (ms)', pick(results, 'reachMs'), { better: 'lower', format: fixed(0) })
  addRow(scenario, 'server CPU for that broadcast (ms)', pick(results, 'reachServerCpuMs'), { better: 'lower', format: fixed(0) })
}

module.exports = { name: 'scale', run }
