'use strict'

// What a user sees when the addon cannot be loaded: a copy of the package's JS (what the
// tarball holds) beside no binary, a broken binary, or on a platform nothing is built for.
// Each case runs in a child process, since a module that failed to load stays failed.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { PLATFORMS, currentPlatform } = require('../lib/platforms')

const ROOT = path.resolve(__dirname, '..')
const pkg = require('../package.json')

/** The package's JS as npm would unpack it (with its dependencies), without any .node file. */
function packageCopy () {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-loader-'))
  const dir = path.join(app, 'node_modules', 'native-sse')
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of pkg.files) fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'))
  for (const dependency of Object.keys(pkg.dependencies)) {
    fs.cpSync(path.join(ROOT, 'node_modules', dependency), path.join(app, 'node_modules', dependency), { recursive: true })
  }
  return { app, dir }
}

/** Requires `specifier` from `app` in a fresh Node; returns the error it threw (or null). */
function loadIn (app, specifier, preload) {
  const script = `
    try { require(${JSON.stringify(specifier)}); console.log(JSON.stringify(null)) }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, platform: e.platform, platforms: e.platforms, cause: e.cause && e.cause.message })) }`
  const args = preload ? ['--require', preload, '-e', script] : ['-e', script]
  const env = { ...process.env }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  return JSON.parse(execFileSync(process.execPath, args, { cwd: app, env, encoding: 'utf8' }))
}

test('without its binary package, require says which package is missing and how to get it', (t) => {
  const { app } = packageCopy()
  t.after(() => fs.rmSync(app, { recursive: true, force: true }))
  const platform = currentPlatform()
  for (const entry of ['native-sse', 'native-sse/express', 'native-sse/fastify']) {
    const error = loadIn(app, entry)
    assert.ok(error, `${entry} loaded without a binary`)
    assert.equal(error.code, 'ERR_SSE_NO_BINARY', entry)
    assert.equal(error.platform, platform)
    assert.match(error.message, new RegExp(`binary for ${platform} is not installed`))
    assert.match(error.message, new RegExp(`native-sse-${platform}`))
    assert.match(error.message, /--omit=optional/)
    assert.match(error.message, /build it from source/)
    assert.doesNotMatch(error.message, /npm has a bug/)
    assert.match(error.cause, /Cannot find native binding/, 'the loader\'s own error is kept as the cause')
  }
})

test('on a platform with no prebuilt binary, require names it and the platforms that exist', (t) => {
  const { app } = packageCopy()
  t.after(() => fs.rmSync(app, { recursive: true, force: true }))
  const preload = path.join(app, 'riscv.js')
  fs.writeFileSync(preload, "Object.defineProperty(process, 'arch', { value: 'riscv64' })\n")
  const error = loadIn(app, 'native-sse', preload)
  const riscv = { linux: 'linux-riscv64-gnu', win32: 'win32-riscv64-msvc' }[process.platform] ?? `${process.platform}-riscv64`
  assert.equal(error.code, 'ERR_SSE_NO_BINARY')
  assert.equal(error.platform, riscv)
  assert.deepEqual(error.platforms, PLATFORMS.map((p) => p.platform))
  assert.deepEqual(error.platforms, ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc'])
  assert.match(error.message, new RegExp(`no prebuilt binary for ${riscv} `))
  assert.match(error.message, /linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, linux-arm64-musl, darwin-x64, darwin-arm64, win32-x64-msvc/)
  assert.match(error.message, /rustup/)
})

test('a binary that is there but does not load is reported with the reason', (t) => {
  const { app, dir } = packageCopy()
  t.after(() => fs.rmSync(app, { recursive: true, force: true }))
  const platform = currentPlatform()
  fs.writeFileSync(path.join(dir, `native-sse.${platform}.node`), 'not an ELF file')
  const error = loadIn(app, 'native-sse')
  assert.equal(error.code, 'ERR_SSE_BINARY_LOAD_FAILED')
  assert.match(error.message, new RegExp(`binary for ${platform} was found but did not load: .*native-sse\\.${platform}\\.node`))
})

test('with its binary beside it, the same copy loads and serves', (t) => {
  const { app, dir } = packageCopy()
  t.after(() => fs.rmSync(app, { recursive: true, force: true }))
  const platform = currentPlatform()
  fs.copyFileSync(path.join(ROOT, `native-sse.${platform}.node`), path.join(dir, `native-sse.${platform}.node`))
  assert.equal(loadIn(app, 'native-sse'), null)
  const out = execFileSync(process.execPath, ['-e', "const h = require('native-sse').createHub(); console.log(h.broadcast({ data: 'x' })); h.close()"], { cwd: app, encoding: 'utf8' })
  assert.equal(out.trim(), '0')
})
