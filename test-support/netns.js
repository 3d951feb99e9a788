'use strict'

// A network namespace of the test's own, joined to this one by a veth pair: a client in it
// reaches the server on the host end's address, and iptables rules inside it make that client
// vanish (no FIN, no RST) without touching anything outside the namespace. Traffic stays
// between the two ends of the pair, on this machine. Needs root, `ip` and `iptables`.

const { execFileSync, spawn } = require('node:child_process')

/** Runs a command to completion; its output, or an Error with what it printed. */
function run (command, args) {
  try {
    return execFileSync(command, args, { stdio: 'pipe', timeout: 10_000 }).toString()
  } catch (error) {
    throw new Error(`${command} ${args.join(' ')}: ${error.stderr ? error.stderr.toString().trim() : error.message}`)
  }
}

/** Why the namespace tests cannot run here, or null when they can. */
function netnsUnavailableReason () {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (ip netns)'
  for (const tool of ['ip', 'iptables']) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' })
    } catch {
      return `needs ${tool} (.ci/run installs it)`
    }
  }
  return null
}

let created = 0

/** Whether a process with this pid is alive. */
function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === 'EPERM'
  }
}

// A namespace's name carries its creator's pid in base 36 (`nsse<pid>x<n>`: interface names
// have 15 characters). A creator killed before its
// exit handler ran leaves its namespace and the host end's address behind; one still holding a
// /30 that a new pair gets would route the new pair's traffic into the dead namespace.
function removeAbandoned () {
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const match = /^(nsse([0-9a-z]+)x\d+)\b/.exec(line)
    if (match && !alive(parseInt(match[2], 36))) {
      try { run('ip', ['netns', 'del', match[1]]) } catch {}
    }
  }
}

/** The third octets of the 10.231.0.0/16 subnets some interface here already holds. */
function subnetsInUse () {
  const used = new Set()
  for (const match of run('ip', ['-o', '-4', 'addr', 'show']).matchAll(/inet 10\.231\.(\d+)\./g)) used.add(Number(match[1]))
  return used
}

/**
 * A namespace with one veth pair on a /30 of its own: `hostAddress` (this namespace's end)
 * and `peerAddress` (inside); no other interface here holds that /30.
 */
function createNamespace () {
  if (created === 0) removeAbandoned()
  const tag = `${process.pid.toString(36)}x${created}`
  const used = subnetsInUse()
  let subnet = (process.pid + created) % 250
  for (let tries = 0; used.has(subnet) && tries < 250; tries++) subnet = (subnet + 1) % 250
  if (used.has(subnet)) throw new Error('every 10.231.x.0/30 is in use; remove stale nsse* namespaces (ip netns del)')
  created++
  const ns = {
    name: `nsse${tag}`,
    hostLink: `nsseh${tag}`,
    peerLink: `nssep${tag}`,
    hostAddress: `10.231.${subnet}.1`,
    peerAddress: `10.231.${subnet}.2`,
    /** Runs a command inside the namespace to completion. */
    exec: (command, ...args) => run('ip', ['netns', 'exec', ns.name, command, ...args]),
    /** Starts a command inside the namespace; the caller kills it. */
    spawn: (command, args, options) => spawn('ip', ['netns', 'exec', ns.name, command, ...args], options),
    /** Drops every packet in and out of the namespace: its sockets go silent, sending nothing. */
    vanish: () => {
      ns.exec('iptables', '-A', 'INPUT', '-j', 'DROP')
      ns.exec('iptables', '-A', 'OUTPUT', '-j', 'DROP')
    },
    destroy: () => {
      process.removeListener('exit', ns.destroy)
      try { run('ip', ['netns', 'del', ns.name]) } catch {}
      // Deleting the namespace deletes the peer end, and with it the pair; this is for a
      // namespace whose setup failed half way.
      try { run('ip', ['link', 'del', ns.hostLink]) } catch {}
    }
  }
  process.on('exit', ns.destroy)
  try {
    run('ip', ['netns', 'add', ns.name])
    run('ip', ['link', 'add', ns.hostLink, 'type', 'veth', 'peer', 'name', ns.peerLink])
    run('ip', ['link', 'set', ns.peerLink, 'netns', ns.name])
    run('ip', ['addr', 'add', `${ns.hostAddress}/30`, 'dev', ns.hostLink])
    run('ip', ['link', 'set', ns.hostLink, 'up'])
    ns.exec('ip', 'addr', 'add', `${ns.peerAddress}/30`, 'dev', ns.peerLink)
    ns.exec('ip', 'link', 'set', ns.peerLink, 'up')
    ns.exec('ip', 'link', 'set', 'lo', 'up')
  } catch (error) {
    ns.destroy()
    throw error
  }
  return ns
}

module.exports = { createNamespace, netnsUnavailableReason }
