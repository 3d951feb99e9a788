'use strict'
// needs: redis-server, nginx, chromium, bun, deno, next, promtool, curl, openssl, bash, ss

// scripts/test-prerequisites.js, which `npm test` and .ci/run run before the suite: run as a
// child process on a PATH that lacks a tool the suite drives, it must refuse to start the suite
// (exit 1) with one message naming every missing tool, its Debian package and the apt-get
// command; as root with apt-get it must ask apt-get for exactly those packages; with everything
// there it must pass without running `npm ci` again, and run it when the runtimes' lock changed.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const SCRIPT = path.join(__dirname, '..', 'scripts', 'test-prerequisites.js')
const MARKER = path.join(__dirname, 'runtimes', 'node_modules', '.native-sse-installed')
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** The executable `name` on this process's PATH, or null. */
function which (name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {}
  }
  return null
}

/**
 * A folder (readable by anyone) to use as PATH: links to every executable on this process's
 * PATH (the first of each name) but those in `leftOut`, and the shell scripts in `scripts`.
 */
function pathWithout (t, leftOut, scripts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-path-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.chmodSync(dir, 0o755)
  for (const [name, body] of Object.entries(scripts)) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 })
  }
  for (const folder of (process.env.PATH || '').split(path.delimiter)) {
    let names
    try { names = fs.readdirSync(folder) } catch { continue }
    for (const name of names) {
      if (leftOut.includes(name)) continue
      try {
        fs.symlinkSync(path.join(folder, name), path.join(dir, name))
      } catch (error) {
        if (error.code !== 'EEXIST') throw error
      }
    }
  }
  return dir
}

/** Runs the script; its exit code and what it printed. */
function run (command, args, env) {
  const result = spawnSync(command, args, { env, encoding: 'utf8', timeout: 600_000 })
  if (result.error) throw result.error
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr }
}

/**
 * How to run the script without the right to install: as this user when not root; as root,
 * as nobody through setpriv when that works here; else with --no-install.
 */
function unprivileged () {
  if (!isRoot) return { how: 'as this user (not root)', prefix: [process.execPath, SCRIPT] }
  const setpriv = which('setpriv')
  const asNobody = setpriv && [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups']
  if (asNobody) {
    const probe = spawnSync(asNobody[0], [...asNobody.slice(1), process.execPath, '-e',
      'process.exit(process.getuid() === 65534 && require("fs").readFileSync(process.argv[1]).length > 0 ? 0 : 1)', SCRIPT])
    if (probe.status === 0) return { how: 'as nobody (setpriv)', prefix: [...asNobody, process.execPath, SCRIPT] }
  }
  return { how: 'as root with --no-install', prefix: [process.execPath, SCRIPT, '--no-install'] }
}

test('a missing tool stops npm test before the suite: one message names each tool, its package and the apt-get command; exit 1', (t) => {
  // promtool is looked up on PATH; chromium at CHROMIUM_PATH, as the tests look for them.
  const dir = pathWithout(t, ['promtool'])
  const { how, prefix } = unprivileged()
  t.diagnostic(`run ${how}`)
  const { code, stdout, stderr } = run(prefix[0], prefix.slice(1), {
    ...process.env, PATH: dir, CHROMIUM_PATH: path.join(dir, 'no-chromium-here')
  })
  assert.equal(code, 1, `exit code (stdout: ${stdout}, stderr: ${stderr})`)
  assert.match(stderr, /missing chromium \(CHROMIUM_PATH=[^)]*no-chromium-here\) \(package chromium\), promtool \(package prometheus\)/)
  assert.match(stderr, /^ {2}(sudo )?apt-get update && (sudo )?apt-get install -y chromium prometheus$/m)
  if (how !== 'as root with --no-install') assert.match(stderr, /sudo apt-get install/, 'a user who is not root is told to use sudo')
  assert.doesNotMatch(stderr, /nginx|redis|curl/, 'only what is missing is named')
  assert.equal(stderr.match(/missing/g).length, 1, 'one message')
  assert.doesNotMatch(stdout, /runtimes/, 'the suite\'s other prerequisites are not touched once one is missing')
})

test('as root with apt-get: apt-get update once, then install exactly the missing packages non-interactively; still missing afterwards is exit 1', {
  skip: isRoot ? false : 'needs root (the script installs with apt-get only as root)'
}, (t) => {
  const log = path.join(os.tmpdir(), `native-sse-apt-${process.pid}.log`)
  t.after(() => fs.rmSync(log, { force: true }))
  // An apt-get that records its calls and installs nothing.
  const dir = pathWithout(t, ['promtool'], { 'apt-get': `echo "$DEBIAN_FRONTEND $*" >> '${log}'` })
  const { code, stdout, stderr } = run(process.execPath, [SCRIPT], { ...process.env, PATH: dir })
  assert.equal(code, 1, `exit code (stdout: ${stdout}, stderr: ${stderr})`)
  assert.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n'), [
    'noninteractive update -qq',
    'noninteractive install -y -qq prometheus'
  ])
  assert.match(stderr, /missing promtool \(package prometheus\); apt-get installed them, but they are still not found\./)
  assert.match(stderr, /^ {2}apt-get update && apt-get install -y prometheus$/m)
})

test('with everything there: exit 0 and the runtimes are not reinstalled; a lock that no longer matches runs npm ci in __test__/runtimes', (t) => {
  // As npm test runs it: installs the runtimes if this tree does not have them yet.
  const first = run(process.execPath, [SCRIPT], process.env)
  assert.equal(first.code, 0, first.output)
  assert.match(first.stdout, /^test prerequisites: tools: curl, openssl, chromium, promtool, nginx, redis-server, redis-cli, /m)

  // An npm that records its calls and fails: the quick path must not call it.
  const fakes = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-npm-'))
  t.after(() => fs.rmSync(fakes, { recursive: true, force: true }))
  const log = path.join(fakes, 'npm.log')
  fs.writeFileSync(path.join(fakes, 'npm'), `#!/bin/sh\necho "$PWD: npm $*" >> '${log}'\nexit 1\n`, { mode: 0o755 })
  const env = { ...process.env, PATH: `${fakes}${path.delimiter}${process.env.PATH}` }

  const started = process.hrtime.bigint()
  const quick = run(process.execPath, [SCRIPT], env)
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  assert.equal(quick.code, 0, quick.output)
  assert.match(quick.stdout, /^test prerequisites: runtimes: up to date \(bun [\d.]+, deno [\d.]+, next [\d.]+\)$/m)
  assert.equal(fs.existsSync(log), false, 'npm was not run')
  t.diagnostic(`quick path: ${ms.toFixed(0)} ms`)

  // The marker no longer holding the lock's hash (the lock changed): npm ci runs there again.
  const kept = fs.readFileSync(MARKER)
  try {
    fs.writeFileSync(MARKER, 'a lock that is not this one\n')
    const stale = run(process.execPath, [SCRIPT], env)
    assert.equal(stale.code, 1, stale.output)
    assert.equal(fs.readFileSync(log, 'utf8'), `${path.join(__dirname, 'runtimes')}: npm ci --no-audit --no-fund\n`)
    assert.match(stale.stderr, /test prerequisites: Command failed: npm ci/)
  } finally {
    fs.writeFileSync(MARKER, kept)
  }
})
