'use strict'

// What `npm test` needs besides node_modules, checked (and installed where it can be) before the
// suite starts, so that a fresh clone passes `npm install && npm test` by itself:
//
// - the system tools the tests drive (below, SUITE_TOOLS, each with its Debian package). Missing
//   ones are installed with apt-get when this process is root and apt-get exists; otherwise one
//   message names them all and the command that installs them, and the exit code is 1.
// - the runtimes the suite also runs under (Bun, Deno, Next.js), installed by `npm ci` into
//   __test__/runtimes (apart from the package's own devDependencies, so `npm install` stays
//   light). A marker written after a successful install holds the hash of that folder's
//   package-lock.json: when it matches and the binaries are there, nothing is run.
//
//   node scripts/test-prerequisites.js              # what `npm test` runs first
//   node scripts/test-prerequisites.js --ci         # also what the rest of .ci/run needs
//   node scripts/test-prerequisites.js --no-install # check only: install nothing
//
// Plain Node, no dependencies: .ci/run runs it before `npm ci`.

const { execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const RUNTIMES = path.join(ROOT, '__test__', 'runtimes')
const MARKER = path.join(RUNTIMES, 'node_modules', '.native-sse-installed')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

/** The executable `name` in a folder of PATH, or null. */
function onPath (name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir === '') continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {}
  }
  return null
}

/** The first of `files` that exists, or null. */
const existing = (...files) => files.find((file) => fs.existsSync(file)) ?? null

// Each tool as the tests look for it, and the Debian package that has it.
const SUITE_TOOLS = [
  // helpers.curl: the wire, TLS, HTTP/2, examples and vanished-peer tests read streams with it.
  { tool: 'curl', pkg: 'curl', find: () => onPath('curl') },
  // helpers.selfSignedCert: the HTTPS and HTTP/2 tests' certificate.
  { tool: 'openssl', pkg: 'openssl', find: () => onPath('openssl') },
  // Headless Chromium for the demo page and browser client tests (driven by playwright-core,
  // which downloads nothing): CHROMIUM_PATH, or Debian's.
  {
    tool: 'chromium',
    pkg: 'chromium',
    find: () => existing(process.env.CHROMIUM_PATH || '/usr/bin/chromium'),
    where: () => process.env.CHROMIUM_PATH ? ` (CHROMIUM_PATH=${process.env.CHROMIUM_PATH})` : ' (/usr/bin/chromium)'
  },
  // helpers.promtool: hub.metricsText() against the Prometheus exposition format and its lints.
  { tool: 'promtool', pkg: 'prometheus', find: () => onPath('promtool') },
  // test-support/nginx.js: a real nginx in front of the hub.
  { tool: 'nginx', pkg: 'nginx', find: () => existing('/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx') ?? onPath('nginx') },
  // test-support/redis.js: the fan-out across processes through a real redis-server.
  { tool: 'redis-server', pkg: 'redis-server', find: () => onPath('redis-server') },
  { tool: 'redis-cli', pkg: 'redis-server', find: () => onPath('redis-cli') },
  // test-support/netns.js: network namespaces and iptables make peers vanish without FIN or RST.
  // Those tests need root (and are skipped without it), so the tools are needed as root only.
  { tool: 'ip', pkg: 'iproute2', find: () => onPath('ip'), needed: isRoot },
  { tool: 'iptables', pkg: 'iptables', find: () => onPath('iptables'), needed: isRoot },
  // route.test.js reads the listen queue hub.route() gives the server's socket with ss.
  { tool: 'ss', pkg: 'iproute2', find: () => onPath('ss') },
  // handoff.test.js stamps curl's lines in bash; the Bun binary is unpacked with tar (below).
  { tool: 'bash', pkg: 'bash', find: () => onPath('bash') },
  { tool: 'tar', pkg: 'tar', find: () => onPath('tar') }
]

// What the rest of .ci/run needs (--ci).
const CI_TOOLS = [
  // scripts/package.js: readelf and file read each binary's architecture and libc.
  { tool: 'readelf', pkg: 'binutils', find: () => onPath('readelf') },
  { tool: 'file', pkg: 'file', find: () => onPath('file') },
  // scripts/install-test.js: qemu runs the arm64 Node and addon against Debian's arm64 libc
  // and libstdc++.
  { tool: 'qemu-aarch64', pkg: 'qemu-user', find: () => onPath('qemu-aarch64') },
  { tool: 'arm64 libc', pkg: 'libc6-arm64-cross', find: () => existing('/usr/aarch64-linux-gnu/lib/libc.so.6') },
  { tool: 'arm64 libstdc++', pkg: 'libstdc++6-arm64-cross', find: () => existing('/usr/aarch64-linux-gnu/lib/libstdc++.so.6') },
  // actionlint runs shellcheck on the release workflow's scripts.
  { tool: 'shellcheck', pkg: 'shellcheck', find: () => onPath('shellcheck') }
]

const missingOf = (tools) => tools.filter((t) => (t.needed === undefined || t.needed()) && t.find() === null)
const packagesOf = (tools) => [...new Set(tools.map((t) => t.pkg))].sort()
const describe = (t) => `${t.tool}${t.where ? t.where() : ''} (package ${t.pkg})`

/** apt-get update, then install `packages`; null, or why it failed. */
function aptInstall (packages) {
  console.log(`test prerequisites: apt-get install ${packages.join(' ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env })
    return null
  } catch (error) {
    return error.status != null ? `apt-get exited with ${error.status}` : error.message
  }
}

/**
 * Checks `tools`, installs what is missing with apt-get when root (and `install`); returns the
 * tools still missing and why they were not installed.
 */
function ensureTools (tools, { install = true } = {}) {
  let missing = missingOf(tools)
  let reason = null
  if (missing.length === 0) return { missing, reason }
  if (!install) reason = 'not installing (--no-install)'
  else if (!isRoot()) reason = 'not root'
  else if (onPath('apt-get') === null) reason = 'no apt-get here'
  else {
    reason = aptInstall(packagesOf(missing))
    missing = missingOf(tools)
    if (missing.length > 0 && reason === null) reason = 'apt-get installed them, but they are still not found'
  }
  return { missing, reason }
}

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')

/** The runtimes' lock, and the files the tests run (those this platform's lock has). */
function runtimeFiles () {
  const lock = JSON.parse(fs.readFileSync(path.join(RUNTIMES, 'package-lock.json'), 'utf8'))
  const modules = path.join(RUNTIMES, 'node_modules')
  const bun = `@oven/bun-${process.platform}-${process.arch}`
  const deno = `@deno/${process.platform}-${process.arch}-glibc`
  const files = [
    // The paths __test__/runtimes.test.js and __test__/nextjs.test.js run.
    lock.packages[`node_modules/${bun}`] && { name: 'bun', pkg: bun, file: path.join(modules, bun, 'bin', 'bun') },
    lock.packages[`node_modules/${deno}`] && { name: 'deno', pkg: deno, file: path.join(modules, deno, 'deno') },
    { name: 'next', pkg: 'next', file: path.join(modules, 'next', 'dist', 'bin', 'next') }
  ].filter(Boolean)
  return { lock, files }
}

/** npm 11 leaves @oven/bun-linux-x64's 107 MB binary out of a fresh install (its bin/ is empty):
 * unpacked here from the same package, as pinned in the lock. */
function unpackBun (lock, { pkg, file }) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bun-package-'))
  try {
    const version = lock.packages[`node_modules/${pkg}`].version
    const tarball = execFileSync(npm, ['pack', '--silent', `${pkg}@${version}`], { cwd: scratch, encoding: 'utf8' }).trim()
    execFileSync('tar', ['xzf', tarball, 'package/bin/bun'], { cwd: scratch })
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.copyFileSync(path.join(scratch, 'package', 'bin', 'bun'), file)
    fs.chmodSync(file, 0o755)
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

/**
 * Bun, Deno and Next.js in __test__/runtimes: nothing to do when the marker holds the lock's
 * hash and the binaries are there, else `npm ci` there (unless `install` is false). Returns a
 * line to print, or throws with what is wrong.
 */
function ensureRuntimes ({ install = true } = {}) {
  const { lock, files } = runtimeFiles()
  const versions = files.map(({ name, pkg }) => `${name} ${lock.packages[`node_modules/${pkg}`]?.version ?? '?'}`).join(', ')
  const hash = sha256(path.join(RUNTIMES, 'package-lock.json'))
  let marker = null
  try { marker = fs.readFileSync(MARKER, 'utf8').trim() } catch {}
  const absent = () => files.filter(({ file }) => !fs.existsSync(file))
  if (marker === hash && absent().length === 0) return `runtimes: up to date (${versions})`
  if (!install) {
    throw new Error(`the runtimes in ${path.relative(ROOT, RUNTIMES)} are not installed or do not match its package-lock.json (--no-install): run node scripts/test-prerequisites.js`)
  }
  console.log(`test prerequisites: npm ci in ${path.relative(ROOT, RUNTIMES)} (${versions})`)
  fs.rmSync(MARKER, { force: true })
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: RUNTIMES, stdio: ['ignore', 'inherit', 'inherit'] })
  for (const entry of files) {
    if (entry.name === 'bun' && !fs.existsSync(entry.file)) unpackBun(lock, entry)
  }
  const still = absent()
  if (still.length > 0) throw new Error(`npm ci in ${path.relative(ROOT, RUNTIMES)} left out ${still.map(({ file }) => path.relative(ROOT, file)).join(', ')}`)
  fs.writeFileSync(MARKER, `${hash}\n`)
  return `runtimes: installed (${versions})`
}

function main (argv) {
  const known = new Set(['--ci', '--no-install'])
  const unknown = argv.filter((arg) => !known.has(arg))
  if (unknown.length > 0) {
    console.error(`test prerequisites: unknown argument ${unknown.join(' ')} (known: ${[...known].join(' ')})`)
    return 2
  }
  const ci = argv.includes('--ci')
  const install = !argv.includes('--no-install')
  const tools = ci ? [...SUITE_TOOLS, ...CI_TOOLS] : SUITE_TOOLS

  const { missing, reason } = ensureTools(tools, { install })
  if (missing.length > 0) {
    const sudo = isRoot() ? '' : 'sudo '
    console.error([
      `test prerequisites: missing ${missing.map(describe).join(', ')}; ${reason}.`,
      'Install them (Debian, Ubuntu) with:',
      `  ${sudo}apt-get update && ${sudo}apt-get install -y ${packagesOf(missing).join(' ')}`
    ].join('\n'))
    return 1
  }
  const checked = tools.filter((t) => t.needed === undefined || t.needed()).map((t) => t.tool)
  console.log(`test prerequisites: tools: ${checked.join(', ')}`)

  try {
    console.log(`test prerequisites: ${ensureRuntimes({ install })}`)
  } catch (error) {
    console.error(`test prerequisites: ${error.message}`)
    return 1
  }
  return 0
}

if (require.main === module) process.exitCode = main(process.argv.slice(2))

module.exports = { ensureRuntimes, SUITE_TOOLS, CI_TOOLS }
