#!/usr/bin/env node
'use strict'

// `npm run package`: builds the addon for every target this machine can build and writes the
// tarballs of the main package and of each binary package into dist/, then checks every
// binary (architecture, libc, the oldest glibc it needs, size). The release workflow runs the
// same script, one target per runner, so what is published is what is checked here.
//
//   node scripts/package.js                      every target buildable here, and the main package
//   node scripts/package.js --targets a,b        only these targets (Rust triples)
//   node scripts/package.js --no-main            binary packages only
//   node scripts/package.js --main-only          the main package only
//   node scripts/package.js --matrix             the release workflow's build matrix, as JSON
//   node scripts/package.js --out DIR            write the tarballs into DIR instead of dist/
//
// Linux binaries are cross-linked with zig (cargo-zigbuild): -gnu against glibc 2.17, the floor
// napi-rs packages keep, and -musl against musl's libc.so (not statically: a static musl addon
// cannot be loaded by a musl Node). macOS builds natively on a Mac, and with zig elsewhere.
// MSVC needs Microsoft's own libraries, so Windows builds only on Windows.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { PLATFORMS } = require('../lib/platforms')

const ROOT = path.resolve(__dirname, '..')
const MAIN = require('../package.json')
/** Glibc the -gnu binaries are linked against, and so the oldest they run on. */
const GLIBC_FLOOR = '2.17'
/** GitHub's runner for each target: where the release workflow builds it. */
const RUNNERS = { linux: 'ubuntu-24.04', darwin: 'macos-15', win32: 'windows-2022' }
/**
 * Every key of the root package.json is in one of these: published as it is, or left out of
 * the packed manifest. `scripts` would have npm 11 list `native-sse@0.1.0 (prepare: npm run
 * build)` on every install of a prebuilt package, and `devDependencies` are this repository's
 * tools. `napi` stays: lib/platforms.js and lib/native.js read it at run time. A key in
 * neither list stops the packing, so a new field is published or left out on purpose.
 */
const PUBLISHED_KEYS = ['name', 'version', 'description', 'keywords', 'homepage', 'bugs', 'repository', 'main', 'types', 'exports', 'files', 'license', 'engines', 'napi', 'dependencies', 'peerDependencies', 'peerDependenciesMeta', 'optionalDependencies']
const UNPUBLISHED_KEYS = ['scripts', 'devDependencies']

function parseArgs (argv) {
  const args = { targets: null, main: true, binaries: true, matrix: false, out: path.join(ROOT, 'dist') }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--targets') args.targets = argv[++i].split(',').filter(Boolean)
    else if (arg === '--no-main') args.main = false
    else if (arg === '--main-only') args.binaries = false
    else if (arg === '--matrix') args.matrix = true
    else if (arg === '--out') args.out = path.resolve(argv[++i])
    else throw new Error(`unknown argument ${arg}`)
  }
  return args
}

const HOST = { linux: 'linux', darwin: 'darwin', win32: 'win32' }[process.platform]

/** How this machine builds `target`, or why it cannot. */
function builderOf (target) {
  if (target.os === 'linux' || (target.os === 'darwin' && HOST !== 'darwin')) {
    if (HOST === 'win32') return { reason: 'cross-linking with zig is set up for Linux and macOS hosts' }
    return { tool: 'zigbuild' }
  }
  if (target.os === HOST) return { tool: 'cargo' }
  return { reason: 'MSVC targets link against Microsoft\'s own libraries, which only a Windows machine has; the release workflow builds it on windows-2022' }
}

/** npm is a .cmd script on Windows, which Node runs only through a shell. */
const SHELL = process.platform === 'win32'

function run (command, args, options = {}) {
  execFileSync(command, args, { cwd: ROOT, stdio: 'inherit', ...options })
}

function output (command, args) {
  return execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], shell: SHELL && command === 'npm' })
}

/** Builds `target` and returns the path of the addon it produced. */
function build (target, tool) {
  const env = { ...process.env, CARGO_PROFILE_RELEASE_STRIP: 'symbols' }
  // A musl Node loads addons with its dynamic loader: the addon must link libc.so, not carry
  // its own static copy (Rust's default for musl).
  if (target.libc === 'musl') env.RUSTFLAGS = `${env.RUSTFLAGS ?? ''} -C target-feature=-crt-static`.trim()
  const triple = target.libc === 'glibc' ? `${target.triple}.${GLIBC_FLOOR}` : target.triple
  const args = tool === 'zigbuild' ? ['zigbuild'] : ['build']
  run('cargo', [...args, '--release', '--locked', '--target', triple, '-p', 'native-sse'], { env })
  const file = { linux: 'libnative_sse.so', darwin: 'libnative_sse.dylib', win32: 'native_sse.dll' }[target.os]
  return path.join(ROOT, 'target', target.triple, 'release', file)
}

/** npm pack of `dir` into `out`; returns the tarball's path. */
function pack (dir, out) {
  const [report] = JSON.parse(output('npm', ['pack', dir, '--json', '--ignore-scripts', '--pack-destination', out]))
  return { tarball: path.join(out, report.filename), size: report.size, unpackedSize: report.unpackedSize, files: report.files.map((f) => f.path) }
}

function stageBinaryPackage (target, addon, stage) {
  const dir = path.join(stage, target.platform)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', target.platform, 'package.json'), 'utf8'))
  for (const key of UNPUBLISHED_KEYS) {
    if (key in manifest) throw new Error(`npm/${target.platform}/package.json has \`${key}\`: a binary package is a prebuilt file and runs nothing`)
  }
  // npm installs a binary package only where these match; a wrong one installs nowhere or on
  // the wrong machines.
  const expected = { name: target.packageName, main: target.binaryName, os: [target.os], cpu: [target.cpu], libc: target.libc && [target.libc] }
  for (const [key, value] of Object.entries(expected)) {
    if (JSON.stringify(manifest[key]) !== JSON.stringify(value)) {
      throw new Error(`npm/${target.platform}/package.json: ${key} is ${JSON.stringify(manifest[key])}, expected ${JSON.stringify(value)}`)
    }
  }
  // Locked to the main package: a binary is built from the same sources as the JS calling it.
  manifest.version = MAIN.version
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  fs.copyFileSync(path.join(ROOT, 'npm', target.platform, 'README.md'), path.join(dir, 'README.md'))
  fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(dir, 'LICENSE'))
  fs.copyFileSync(addon, path.join(dir, target.binaryName))
  return dir
}

function stageMainPackage (stage) {
  const dir = path.join(stage, MAIN.name)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of [...MAIN.files, 'README.md']) {
    fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true })
  }
  // What `napi pre-publish` writes at release: every binary package as an optional dependency
  // at exactly this version; npm installs the one whose os/cpu/libc match the machine. The
  // repository's own package.json leaves them out, since `npm ci` cannot resolve versions
  // that are not published yet.
  const full = { ...MAIN, optionalDependencies: Object.fromEntries(PLATFORMS.map((p) => [p.packageName, MAIN.version])) }
  const unknown = Object.keys(full).filter((key) => !PUBLISHED_KEYS.includes(key) && !UNPUBLISHED_KEYS.includes(key))
  if (unknown.length > 0) throw new Error(`package.json: ${unknown.join(', ')} in neither PUBLISHED_KEYS nor UNPUBLISHED_KEYS (scripts/package.js): say whether users get it`)
  const manifest = Object.fromEntries(Object.entries(full).filter(([key]) => PUBLISHED_KEYS.includes(key)))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  return dir
}

/** What the binary is, read from the file itself, and whether it is what `target` promises. */
function inspect (target, file) {
  const facts = { bytes: fs.statSync(file).size, problems: [] }
  if (target.os === 'darwin') {
    const description = output('file', ['-b', file]).trim()
    facts.format = description
    const arch = target.cpu === 'arm64' ? 'arm64' : 'x86_64'
    if (!description.includes('Mach-O 64-bit') || !description.includes(arch)) facts.problems.push(`not a Mach-O ${arch} library: ${description}`)
    return facts
  }
  if (target.os === 'win32') {
    // No readelf for PE files on a Windows runner: the COFF header says the machine.
    const image = fs.readFileSync(file)
    const pe = image.readUInt32LE(0x3c)
    const machine = image.toString('latin1', pe, pe + 4) === 'PE\0\0' ? image.readUInt16LE(pe + 4) : null
    facts.format = machine === 0x8664 ? 'PE32+ DLL, x86-64' : `not an x86-64 PE file (machine ${machine})`
    if (machine !== 0x8664) facts.problems.push(facts.format)
    return facts
  }
  const header = output('readelf', ['-h', file])
  facts.machine = /Machine:\s+(.*)/.exec(header)[1].trim()
  const machine = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }[target.cpu]
  if (facts.machine !== machine) facts.problems.push(`machine is ${facts.machine}, not ${machine}`)
  const dynamic = output('readelf', ['-d', file])
  facts.needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1])
  const symbols = output('readelf', ['--dyn-syms', '-W', file])
  const versions = [...new Set([...symbols.matchAll(/@GLIBC_(\d+\.\d+(?:\.\d+)?)/g)].map((m) => m[1]))]
  facts.glibc = versions.sort(compareVersions).pop() ?? null
  if (target.libc === 'musl') {
    if (facts.needed.some((lib) => lib !== 'libc.so')) facts.problems.push(`a musl binary needs only libc.so, this one needs ${facts.needed.join(', ')}`)
    if (facts.glibc !== null) facts.problems.push(`a musl binary refers to glibc ${facts.glibc} symbols`)
  } else {
    if (facts.glibc === null) facts.problems.push('no glibc symbol versions: not linked against glibc')
    else if (compareVersions(facts.glibc, GLIBC_FLOOR) > 0) facts.problems.push(`needs glibc ${facts.glibc}, newer than the ${GLIBC_FLOOR} floor`)
  }
  const sections = output('readelf', ['-S', '-W', file])
  facts.stripped = !/\.symtab\b/.test(sections)
  if (!facts.stripped) facts.problems.push('not stripped (.symtab present)')
  return facts
}

function compareVersions (a, b) {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function kb (bytes) {
  return `${(bytes / 1024).toFixed(0)} KiB`
}

function main () {
  const args = parseArgs(process.argv.slice(2))
  const targets = args.targets === null
    ? PLATFORMS
    : args.targets.map((triple) => {
      const target = PLATFORMS.find((p) => p.triple === triple)
      if (target === undefined) throw new Error(`${triple} is not in package.json napi.targets`)
      return target
    })
  if (args.matrix) {
    const include = targets.map((t) => ({ target: t.triple, platform: t.platform, runner: RUNNERS[t.os] }))
    process.stdout.write(JSON.stringify({ include }) + '\n')
    return
  }
  const stage = path.join(args.out, '.stage')
  fs.mkdirSync(stage, { recursive: true })
  const report = { version: MAIN.version, glibcFloor: GLIBC_FLOOR, binaries: [], skipped: [], main: null }
  if (args.binaries) {
    for (const target of targets) {
      const builder = builderOf(target)
      if (builder.reason) {
        console.log(`\n== ${target.platform}: not built here (${builder.reason})`)
        report.skipped.push({ platform: target.platform, triple: target.triple, reason: builder.reason })
        continue
      }
      console.log(`\n== ${target.platform} (${target.triple}, cargo ${builder.tool})`)
      const started = Date.now()
      const addon = build(target, builder.tool)
      const facts = inspect(target, addon)
      const packed = pack(stageBinaryPackage(target, addon, stage), args.out)
      report.binaries.push({ platform: target.platform, triple: target.triple, seconds: Math.round((Date.now() - started) / 1000), ...facts, tarball: path.basename(packed.tarball), packedBytes: packed.size, files: packed.files })
    }
  }
  if (args.main) {
    const packed = pack(stageMainPackage(stage), args.out)
    report.main = { tarball: path.basename(packed.tarball), packedBytes: packed.size, unpackedBytes: packed.unpackedSize, files: packed.files.length }
  }
  fs.rmSync(stage, { recursive: true, force: true })
  fs.writeFileSync(path.join(args.out, 'artifacts.json'), JSON.stringify(report, null, 2) + '\n')

  console.log('\nplatform          arch / format                              libc needs        glibc  stripped  .node      tarball   built')
  for (const b of report.binaries) {
    console.log([
      b.platform.padEnd(17),
      (b.machine ?? b.format).slice(0, 42).padEnd(42),
      (b.needed ? b.needed.join(',') : '-').padEnd(17),
      String(b.glibc ?? '-').padEnd(6),
      String(b.stripped ?? '-').padEnd(9),
      kb(b.bytes).padEnd(10),
      kb(b.packedBytes).padEnd(9),
      `${b.seconds} s`
    ].join(' '))
  }
  for (const s of report.skipped) console.log(`${s.platform.padEnd(17)} not built here: ${s.reason}`)
  if (report.main) console.log(`main package      ${report.main.tarball}: ${kb(report.main.packedBytes)} packed, ${kb(report.main.unpackedBytes)} unpacked, ${report.main.files} files`)
  const problems = report.binaries.flatMap((b) => b.problems.map((p) => `${b.platform}: ${p}`))
  if (problems.length > 0) {
    console.error(`\n${problems.length} problem(s):\n${problems.join('\n')}`)
    process.exitCode = 1
  }
}

main()
