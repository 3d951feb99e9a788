'use strict'

// The platforms native-sse ships a prebuilt binary for. The list itself is `napi.targets` in
// package.json (the napi CLI reads it too); this file derives, once, what each target is
// called in the binary package's name and its `os`/`cpu`/`libc` fields, for the loader
// (lib/native.js), `npm run package` and the release workflow's matrix.

const fs = require('node:fs')
const { napi, name: packageName } = require('../package.json')

const CPUS = { x86_64: 'x64', aarch64: 'arm64' }
const SYSTEMS = { linux: 'linux', darwin: 'darwin', windows: 'win32' }

/** What a Rust target triple is as an npm platform, e.g. x86_64-unknown-linux-musl -> linux-x64-musl. */
function platformOf (triple) {
  const [arch, , system, abi] = triple.split('-')
  const os = SYSTEMS[system]
  const cpu = CPUS[arch]
  if (os === undefined || cpu === undefined) throw new Error(`no npm platform for target ${triple}`)
  const libc = os === 'linux' ? (abi === 'musl' ? 'musl' : 'glibc') : undefined
  const suffix = os === 'linux' ? `-${abi}` : os === 'win32' ? `-${abi}` : ''
  const platform = `${os}-${cpu}${suffix}`
  return {
    triple,
    platform,
    os,
    cpu,
    libc,
    packageName: `${packageName}-${platform}`,
    binaryName: `${napi.binaryName}.${platform}.node`
  }
}

const PLATFORMS = napi.targets.map(platformOf)

/**
 * Whether this process runs on musl (Alpine) rather than glibc; false off Linux. Never throws:
 * the files are read first (ldd is a script that names its libc; musl's dynamic loader is
 * /lib/ld-musl-<arch>.so.1), and Node's diagnostic report, which Deno refuses without
 * --allow-sys, only when neither says, inside a try. Nothing known means glibc.
 */
function isMusl () {
  if (process.platform !== 'linux') return false
  return muslFromFiles() ?? muslFromReport() ?? false
}

function muslFromFiles () {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'latin1').includes('musl')
  } catch {}
  try {
    if (fs.readdirSync('/lib').some((name) => name.startsWith('ld-musl-'))) return true
  } catch {}
  return null
}

function muslFromReport () {
  try {
    if (typeof process.report?.getReport !== 'function') return null
    // Without this a report resolves the name of every open socket's peer first; the
    // application's own setting is put back.
    const excludeNetwork = process.report.excludeNetwork
    process.report.excludeNetwork = true
    let report
    try {
      report = process.report.getReport()
    } finally {
      process.report.excludeNetwork = excludeNetwork
    }
    if (report?.header?.glibcVersionRuntime) return false
    if (Array.isArray(report?.sharedObjects)) return report.sharedObjects.some((f) => /ld-musl-|libc\.musl-/.test(f))
  } catch {}
  return null
}

/** This process's platform, named as the binary packages are. */
function currentPlatform () {
  const base = `${process.platform}-${process.arch}`
  if (process.platform === 'linux') return `${base}-${isMusl() ? 'musl' : 'gnu'}`
  if (process.platform === 'win32') return `${base}-msvc`
  return base
}

module.exports = { PLATFORMS, platformOf, currentPlatform }
