'use strict'
// needs: nothing

// sharedHub(name, options): one hub per name per process. A dev server (next dev, Vite)
// evaluates an edited module again in the same process; a module-level createHub() there makes
// a second hub, and a publish through it reaches none of the streams open on the first
// (issue 33, item 1). Here the module is evaluated again through require's cache, and so is the
// package itself (a second copy of its JS, as when one copy is bundled and one required);
// __test__/nextjs.test.js does the same edit under a real `next dev`.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startHttp, rawClient, waitFor } = require('./helpers')
const nativeSse = require('..')

const ROOT = path.join(__dirname, '..')
const REGISTRY = Symbol.for('native-sse.sharedHubs')

/**
 * The package's JS evaluated a second time, as a second copy of native-sse would be: index.js
 * and lib/ leave require's cache, are required again, and the first evaluation's entries go
 * back. The addon (a .node) stays loaded once, as the process can only load it once.
 */
function secondCopy () {
  const ours = (file) => (file === path.join(ROOT, 'index.js') || file.startsWith(path.join(ROOT, 'lib') + path.sep)) && file.endsWith('.js')
  const saved = Object.keys(require.cache).filter(ours).map((file) => [file, require.cache[file]])
  for (const [file] of saved) delete require.cache[file]
  try {
    return require(path.join(ROOT, 'index.js'))
  } finally {
    for (const file of Object.keys(require.cache).filter(ours)) delete require.cache[file]
    for (const [file, entry] of saved) require.cache[file] = entry
  }
}

/** An app module like examples/nextjs/lib/hub.js, in a temp dir; `evaluate()` runs it afresh each call. */
function appModule (source) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-hub-'))
  const file = path.join(dir, 'hub.js')
  fs.writeFileSync(file, source.replace('NATIVE_SSE', JSON.stringify(ROOT)))
  return {
    evaluate () {
      delete require.cache[file]
      return require(file)
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A server whose GET attaches to `hub` on channel `news`, a client of it, and its hello. */
async function streamOn (hub) {
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res, { channels: ['news'] })
    client.send({ event: 'hello', data: String(client.id) })
  })
  const client = rawClient(http.port, { path: '/events' })
  await waitFor(() => client.events.some((e) => e.event === 'hello'), { what: () => `the hello (${client.raw})` })
  return { client, close: async () => { client.end(); await http.close() } }
}

test('a module evaluated again, and a second copy of the package, get the same hub, and a publish through them reaches the stream open on the first', async () => {
  const app = appModule("const { sharedHub } = require(NATIVE_SSE)\nmodule.exports = { hub: sharedHub('events', { heartbeatMs: 15000 }) }\n")
  const copy = secondCopy()
  assert.notEqual(copy.sharedHub, nativeSse.sharedHub, 'a second evaluation of the package')
  assert.notEqual(copy.Hub, nativeSse.Hub)
  const { hub } = app.evaluate()
  const stream = await streamOn(hub)
  try {
    const again = app.evaluate().hub
    assert.equal(again.publish('news', { event: 'news', data: 'after a reload' }), 1, 'a publish through the module evaluated again has the open stream')
    await waitFor(() => stream.client.events.some((e) => e.data === 'after a reload'), { what: () => `the publish after a reload (${JSON.stringify(stream.client.events)})` })
    assert.equal(again, hub, 'the module evaluated again gets the hub its first evaluation made')

    const fromCopy = copy.sharedHub('events', { heartbeatMs: 15000 })
    assert.equal(fromCopy.publish('news', { event: 'news', data: 'from the second copy' }), 1, 'a publish through a second copy of native-sse has the open stream')
    await waitFor(() => stream.client.events.some((e) => e.data === 'from the second copy'), { what: () => `the second copy's publish (${JSON.stringify(stream.client.events)})` })
    assert.equal(fromCopy, hub, 'a second copy of native-sse finds it too')
    assert.deepEqual(stream.client.events.map((e) => e.data).slice(1), ['after a reload', 'from the second copy'])

    const registry = globalThis[REGISTRY]
    assert.ok(registry instanceof Map, 'the registry is a Map on globalThis under Symbol.for(\'native-sse.sharedHubs\')')
    assert.equal(registry.get('events').hub, hub)
  } finally {
    await stream.close()
    await hub.close()
    app.remove()
  }
})

test('other options for an existing hub throw ERR_SSE_HUB_OPTIONS_CHANGED (from either copy); the same options, however written, do not', async () => {
  const hub = nativeSse.sharedHub('options', { heartbeatMs: 5000, history: { maxEvents: 10 }, channels: { a: { maxClients: 1 }, b: {} } })
  try {
    assert.equal(nativeSse.sharedHub('options', { channels: { b: {}, a: { maxClients: 1 } }, history: { maxEvents: 10 }, heartbeatMs: 5000, retryMs: undefined }), hub,
      'keys in another order and an undefined option are the same options')
    const changed = (options, what) => {
      for (const { sharedHub } of [nativeSse, secondCopy()]) {
        assert.throws(() => sharedHub('options', options), (error) => {
          assert.ok(error instanceof Error && !(error instanceof TypeError) && !(error instanceof RangeError), String(error))
          assert.equal(error.code, 'ERR_SSE_HUB_OPTIONS_CHANGED')
          assert.match(error.message, /the hub named 'options' already exists in this process with other options/)
          assert.match(error.message, what)
          assert.match(error.message, /restart the process \(the dev server\) to apply the new ones/)
          return true
        })
      }
    }
    changed({ heartbeatMs: 10000, history: { maxEvents: 10 }, channels: { a: { maxClients: 1 }, b: {} } }, /\(changed: heartbeatMs\)/)
    changed({ heartbeatMs: 5000, history: { maxEvents: 11 }, channels: { a: { maxClients: 1 }, b: {} } }, /\(changed: history\)/)
    changed({ heartbeatMs: 5000, history: { maxEvents: 10 }, channels: { a: { maxClients: 2 }, b: {} } }, /\(changed: channels\)/)
    changed(undefined, /\(changed: channels, heartbeatMs, history\)/)
    assert.equal(hub.closed, false, 'the hub runs on with its own options')
    assert.equal(nativeSse.sharedHub('options', { heartbeatMs: 5000, history: { maxEvents: 10 }, channels: { a: { maxClients: 1 }, b: {} } }), hub)
  } finally {
    await hub.close()
  }

  const plain = nativeSse.sharedHub('defaults')
  try {
    assert.equal(nativeSse.sharedHub('defaults', {}), plain)
    assert.equal(nativeSse.sharedHub('defaults', { heartbeatMs: nativeSse.defaults.heartbeatMs, overflow: nativeSse.defaults.overflow }), plain,
      'the defaults written out are the defaults')
    assert.throws(() => nativeSse.sharedHub('defaults', { history: true }), { code: 'ERR_SSE_HUB_OPTIONS_CHANGED', message: /changed: history/ })
  } finally {
    await plain.close()
  }
})

test('a closed hub is replaced by a new one, made with the new call\'s options', async () => {
  const first = nativeSse.sharedHub('closing', { heartbeatMs: 5000 })
  await first.close()
  const second = nativeSse.sharedHub('closing', { heartbeatMs: 10000 })
  try {
    assert.notEqual(second, first)
    assert.equal(second.closed, false)
    assert.equal(nativeSse.sharedHub('closing', { heartbeatMs: 10000 }), second)
    assert.throws(() => nativeSse.sharedHub('closing', { heartbeatMs: 5000 }), { code: 'ERR_SSE_HUB_OPTIONS_CHANGED' })
    const stream = await streamOn(second)
    assert.equal(second.publish('news', { data: 'on the new hub' }), 1)
    await waitFor(() => stream.client.events.some((e) => e.data === 'on the new hub'), { what: 'the publish on the replacement hub' })
    await stream.close()
  } finally {
    await second.close()
  }
})

test('a name that is not a non-empty string, and options createHub refuses, throw and register nothing', async () => {
  for (const name of ['', undefined, null, 5, Symbol('events'), { name: 'events' }]) {
    assert.throws(() => nativeSse.sharedHub(name), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT', message: /sharedHub: name must be a non-empty string/ })
  }
  assert.throws(() => nativeSse.sharedHub('refused', { heartbeatMs: 0 }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION' })
  assert.throws(() => nativeSse.sharedHub('refused', { heartbeat: 1000 }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
  assert.equal(globalThis[REGISTRY].has('refused'), false)
  const hub = nativeSse.sharedHub('refused', { heartbeatMs: 1000 })
  try {
    assert.throws(() => nativeSse.sharedHub('refused', { heartbeatMs: 'soon' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' },
      'a later call\'s options are checked like createHub\'s')
  } finally {
    await hub.close()
  }
})
