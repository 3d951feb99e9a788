'use strict'
// needs: deno on linux

// What a user sees when the addon cannot be loaded, and what the loader (lib/native.js) looks
// at: a copy of the package's JS (what the tarball holds) beside no binary, a broken binary,
// decoy packages for other platforms, on a platform nothing is built for, and under Deno
// without --allow-sys. Each case runs in a child process, since a module that failed to load
// stays failed.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { PLATFORMS, currentPlatform } = require('../lib/platforms')

const ROOT = path.resolve(__dirname, '..')
const pkg = require('../package.json')
const PLATFORM = currentPlatform()
const SHIPPED = PLATFORMS.find((p) => p.platform === PLATFORM)
const ADDON = path.join(ROOT, `native-sse.${PLATFORM}.node`)
const DENO = path.join(__dirname, 'runtimes', 'node_modules', '@deno', `linux-${process.arch}-glibc`, 'deno')
/** Bytes no dynamic loader takes for a library (an ELF loader says "invalid ELF header"). */
const GARBAGE = Buffer.alloc(4096, 0x5a)
/** What napi-rs's generated loader added to every failure, and must not reach a user. */
const NAPI_NOISE = [/npm has a bug/i, /wasi/i, /Cannot find native binding/]

/** The package's JS as npm would unpack it (with its dependencies), without any .node file. */
function packageCopy (t) {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-loader-'))
  t.after(() => fs.rmSync(app, { recursive: true, force: true }))
  const dir = path.join(app, 'node_modules', 'native-sse')
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of pkg.files) fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'))
  for (const dependency of Object.keys(pkg.dependencies)) {
    fs.cpSync(path.join(ROOT, 'node_modules', dependency), path.join(app, 'node_modules', dependency), { recursive: true })
  }
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
  fs.writeFileSync(path.join(app, 'probe.cjs'), `
    const util = require('node:util')
    let result = null
    try {
      require(process.argv[process.argv.length - 1])
    } catch (e) {
      const causes = []
      for (let c = e.cause; c != null && causes.length < 10; c = c.cause) causes.push(String(c.message ?? c))
      result = { name: e.name, code: e.code, message: e.message, platform: e.platform, platforms: e.platforms, causes, printed: util.inspect(e) }
    }
    console.log(JSON.stringify(result))`)
  return { app, dir }
}

/** A binary package in the app's node_modules, as npm installs one: `main` is the .node file. */
function installBinaryPackage (app, target, bytes) {
  const dir = path.join(app, 'node_modules', target.packageName)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: target.packageName, version: pkg.version, main: target.binaryName }))
  fs.writeFileSync(path.join(dir, target.binaryName), bytes)
  return dir
}

/**
 * Requires `specifier` from `app` in a fresh process (Node, or Deno with only --allow-read and
 * --allow-ffi); returns the error it threw, its causes and how it prints (or null).
 */
function loadIn (app, specifier, { preload, env: extra = {}, deno = false } = {}) {
  const env = { ...process.env, NO_COLOR: '1', ...extra }
  if (!('NAPI_RS_NATIVE_LIBRARY_PATH' in extra)) delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const args = deno
    ? [DENO, 'run', '--allow-read', '--allow-ffi', 'probe.cjs', specifier]
    : [process.execPath, ...(preload ? ['--require', preload] : []), 'probe.cjs', specifier]
  const out = execFileSync(args[0], args.slice(1), { cwd: app, env, encoding: 'utf8' })
  const result = JSON.parse(out.trim().split('\n').pop())
  if (result !== null) result.printed = result.printed.split(app).join('<app>')
  return result
}

/** What an error shows a user says nothing of napi-rs's own loader. */
function assertNoNapiNoise (error) {
  for (const noise of NAPI_NOISE) assert.doesNotMatch(error.printed, noise, `the printed error has ${noise}:\n${error.printed}`)
}

test('without its binary package, require says which package is missing and how to get it, and nothing else', (t) => {
  const { app } = packageCopy(t)
  for (const entry of ['native-sse', 'native-sse/express', 'native-sse/fastify']) {
    const error = loadIn(app, entry)
    assert.ok(error, `${entry} loaded without a binary`)
    assert.equal(error.code, 'ERR_SSE_NO_BINARY', entry)
    assert.equal(error.platform, PLATFORM)
    assert.match(error.message, new RegExp(`^native-sse's binary for ${PLATFORM} is not installed: the package native-sse-${PLATFORM} is missing\\. `))
    assert.match(error.message, /--omit=optional/)
    assert.match(error.message, new RegExp(`npm install native-sse-${PLATFORM}`))
    assert.match(error.message, /build it from source/)
    assert.deepEqual(error.causes.map((c) => c.split('\n')[0]), [`Cannot find module 'native-sse-${PLATFORM}'`], 'the cause is the lookup of this platform\'s package, alone')
    assertNoNapiNoise(error)
  }
  // As it reaches a user: uncaught, printed by Node with its causes.
  const uncaught = spawnSync(process.execPath, ['-e', "require('native-sse')"], { cwd: app, encoding: 'utf8', env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '' } })
  assert.notEqual(uncaught.status, 0)
  assert.match(uncaught.stderr, new RegExp(`code: 'ERR_SSE_NO_BINARY'[^]*platform: '${PLATFORM}'`))
  for (const noise of NAPI_NOISE) assert.doesNotMatch(uncaught.stderr.split(app).join('<app>'), noise)
})

test('only this platform\'s package is looked for: decoys for the other platforms and WASI are not touched', (t) => {
  const { app, dir } = packageCopy(t)
  const marks = path.join(app, 'touched.txt')
  const decoys = [...PLATFORMS.filter((p) => p !== SHIPPED).map((p) => p.packageName), 'native-sse-wasm32-wasi']
  for (const name of decoys) {
    const decoy = path.join(app, 'node_modules', name)
    fs.mkdirSync(decoy, { recursive: true })
    fs.writeFileSync(path.join(decoy, 'package.json'), JSON.stringify({ name, version: pkg.version, main: 'index.js' }))
    fs.writeFileSync(path.join(decoy, 'index.js'), `require('fs').appendFileSync(${JSON.stringify(marks)}, ${JSON.stringify(name + '\n')}); throw new Error('decoy ${name} was required')\n`)
  }
  // The files napi-rs's loader looks for beside itself before the WASI package.
  fs.writeFileSync(path.join(dir, 'native-sse.wasi.cjs'), `require('fs').appendFileSync(${JSON.stringify(marks)}, 'native-sse.wasi.cjs\\n'); throw new Error('decoy native-sse.wasi.cjs was required')\n`)
  fs.writeFileSync(path.join(dir, 'native-sse.wasm32-wasi.wasm'), GARBAGE)

  const error = loadIn(app, 'native-sse')
  assert.equal(fs.existsSync(marks) ? fs.readFileSync(marks, 'utf8') : '', '', 'no decoy is required')
  assert.equal(error?.code, 'ERR_SSE_NO_BINARY', JSON.stringify(error))
  assertNoNapiNoise(error)

  // With this platform's package installed beside the decoys, that package is what loads.
  installBinaryPackage(app, SHIPPED, fs.readFileSync(ADDON))
  assert.equal(loadIn(app, 'native-sse'), null)
  assert.equal(fs.existsSync(marks) ? fs.readFileSync(marks, 'utf8') : '', '', 'no decoy is required')
  const out = execFileSync(process.execPath, ['-e', "const h = require('native-sse').createHub(); console.log(h.broadcast({ data: 'x' })); h.close()"], { cwd: app, encoding: 'utf8' })
  assert.equal(out.trim(), '0')
})

test('a binary that is there but does not load is reported with the dynamic loader\'s reason', (t) => {
  const { app, dir } = packageCopy(t)
  const local = path.join(dir, `native-sse.${PLATFORM}.node`)
  fs.writeFileSync(local, GARBAGE)
  const error = loadIn(app, 'native-sse')
  assert.equal(error.code, 'ERR_SSE_BINARY_LOAD_FAILED')
  assert.equal(error.platform, PLATFORM)
  assert.equal(error.causes.length, 1, 'the cause is dlopen\'s error, alone')
  const reason = error.causes[0]
  if (process.platform === 'linux') assert.match(reason, /invalid ELF header/)
  assert.ok(error.message.startsWith(`native-sse's binary for ${PLATFORM} was found but did not load: ${reason}. `), error.message)
  assert.ok(reason.includes(local), 'the reason names the file')
  assert.match(error.message, /Reinstall native-sse on this machine/)
  assert.match(error.message, /build it from source/)
  assertNoNapiNoise(error)

  // The same from the binary package, with no build beside the package.
  fs.rmSync(local)
  const packaged = path.join(installBinaryPackage(app, SHIPPED, GARBAGE), SHIPPED.binaryName)
  const fromPackage = loadIn(app, 'native-sse')
  assert.equal(fromPackage.code, 'ERR_SSE_BINARY_LOAD_FAILED')
  assert.ok(fromPackage.message.startsWith(`native-sse's binary for ${PLATFORM} was found but did not load: ${fromPackage.causes[0]}. `), fromPackage.message)
  assert.ok(fromPackage.causes[0].includes(packaged), fromPackage.causes[0])
  assertNoNapiNoise(fromPackage)
})

test('NAPI_RS_NATIVE_LIBRARY_PATH, when set, is the one file loaded', (t) => {
  const { app, dir } = packageCopy(t)
  // A good binary beside the package: a broken override must not fall back to it unsaid.
  fs.copyFileSync(ADDON, path.join(dir, `native-sse.${PLATFORM}.node`))
  const broken = path.join(app, 'broken.node')
  fs.writeFileSync(broken, GARBAGE)
  const error = loadIn(app, 'native-sse', { env: { NAPI_RS_NATIVE_LIBRARY_PATH: broken } })
  assert.equal(error?.code, 'ERR_SSE_BINARY_LOAD_FAILED', JSON.stringify(error))
  assert.ok(error.message.startsWith(`native-sse's binary for ${PLATFORM} did not load: NAPI_RS_NATIVE_LIBRARY_PATH names ${broken}, which did not load: ${error.causes[0]}. `), error.message)
  assert.match(error.message, /Unset NAPI_RS_NATIVE_LIBRARY_PATH/)
  const absent = loadIn(app, 'native-sse', { env: { NAPI_RS_NATIVE_LIBRARY_PATH: path.join(app, 'absent.node') } })
  assert.match(absent.message, /NAPI_RS_NATIVE_LIBRARY_PATH names .*absent\.node, which does not exist\./)
  assertNoNapiNoise(error)
  assertNoNapiNoise(absent)

  // Pointing at a real addon loads it, in a copy that has no binary of its own.
  fs.rmSync(path.join(dir, `native-sse.${PLATFORM}.node`))
  assert.equal(loadIn(app, 'native-sse', { env: { NAPI_RS_NATIVE_LIBRARY_PATH: ADDON } }), null)
})

test('on a platform with no prebuilt binary, require names it and the platforms that exist', (t) => {
  const { app } = packageCopy(t)
  const preload = path.join(app, 'riscv.js')
  fs.writeFileSync(preload, "Object.defineProperty(process, 'arch', { value: 'riscv64' })\n")
  const error = loadIn(app, 'native-sse', { preload })
  const riscv = { linux: 'linux-riscv64-gnu', win32: 'win32-riscv64-msvc' }[process.platform] ?? `${process.platform}-riscv64`
  assert.equal(error.code, 'ERR_SSE_NO_BINARY')
  assert.equal(error.platform, riscv)
  assert.deepEqual(error.platforms, PLATFORMS.map((p) => p.platform))
  assert.deepEqual(error.platforms, ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc'])
  assert.match(error.message, new RegExp(`no prebuilt binary for ${riscv} `))
  assert.match(error.message, /linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, linux-arm64-musl, darwin-x64, darwin-arm64, win32-x64-msvc/)
  assert.match(error.message, /rustup/)
  assert.deepEqual(error.causes, [], 'nothing was there to fail')
  assertNoNapiNoise(error)
})

test('with its binary beside it, the same copy loads and serves', (t) => {
  const { app, dir } = packageCopy(t)
  fs.copyFileSync(ADDON, path.join(dir, `native-sse.${PLATFORM}.node`))
  assert.equal(loadIn(app, 'native-sse'), null)
  const out = execFileSync(process.execPath, ['-e', "const h = require('native-sse').createHub(); console.log(h.broadcast({ data: 'x' })); h.close()"], { cwd: app, encoding: 'utf8' })
  assert.equal(out.trim(), '0')
})

test('under Deno without --allow-sys (or --allow-env), the real reason comes through', { skip: process.platform !== 'linux' && 'Deno is installed for Linux only' }, (t) => {
  assert.ok(fs.existsSync(DENO), `Deno not found at ${DENO}: install it with \`node __test__/runtimes/install.js\` (.ci/run does)`)
  const { app, dir } = packageCopy(t)
  const entry = path.join(dir, 'index.js')
  const missing = loadIn(app, entry, { deno: true })
  assert.equal(missing?.code, 'ERR_SSE_NO_BINARY', JSON.stringify(missing))
  assert.equal(missing.platform, PLATFORM)
  assert.match(missing.message, new RegExp(`binary for ${PLATFORM} is not installed: the package native-sse-${PLATFORM} is missing`))
  assertNoNapiNoise(missing)

  const local = path.join(dir, `native-sse.${PLATFORM}.node`)
  fs.writeFileSync(local, GARBAGE)
  const broken = loadIn(app, entry, { deno: true })
  assert.equal(broken?.code, 'ERR_SSE_BINARY_LOAD_FAILED', JSON.stringify(broken))
  assert.ok(broken.message.includes(local), broken.message)
  assert.match(broken.message, /invalid ELF header/)
  assertNoNapiNoise(broken)

  fs.copyFileSync(ADDON, local)
  assert.equal(loadIn(app, entry, { deno: true }), null)
})
