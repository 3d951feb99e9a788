'use strict'
// needs: nothing

// The typings as an app compiles them: a project of its own with native-sse in its
// node_modules, checked by tsc under the configurations apps use: `module: commonjs` (whose
// default resolution, node10, ignores package.json `exports`), node16, nodenext and bundler.
// Each compiles code written the common ways (an interface as the event map, Express's
// `req.query` and `req.user` in `onConnect`, a declared event map for the Fastify plugin), and
// each must refuse a file of mistakes, so a checker that checks nothing cannot pass.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFile } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

// `type`: the app's package.json type. A CommonJS app cannot import the browser client (ESM
// only) under node16 rules, so those two are ES module apps, as such apps are.
const CONFIGURATIONS = {
  'commonjs (node10)': { type: 'commonjs', compilerOptions: { module: 'commonjs' } },
  'node16 (an ES module app)': { type: 'module', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  'nodenext (an ES module app)': { type: 'module', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  bundler: { type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } }
}

const GOOD = `
import * as http from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import { createHub, type Client, type AnyEvents, type EventMap, type Hub } from 'native-sse'
import { sse } from 'native-sse/express'
import nativeSse from 'native-sse/fastify'
import { connect, type AnyEvents as ClientAnyEvents, type EventMap as ClientEventMap, type SseClient } from 'native-sse/client'

interface Price { symbol: string; price: number }
interface Events { price: Price; note: string }

declare global {
  namespace Express { interface Request { user?: { id: string } } }
}
declare module 'native-sse/fastify' {
  interface Events { tick: number }
}

const hub = createHub<Events>({ maxLagBytes: 1 << 20 })
hub.broadcast({ event: 'price', data: { symbol: 'X', price: 1 } })
hub.publish('notes', { event: 'note', data: 'hello', id: 7 })
http.createServer((req, res) => {
  const client: Client<Events> = hub.attach(req, res)
  client.send({ event: 'note', data: 'hi' })
})

const app = express()
app.get('/events', sse(hub, {
  channels: (req) => ['user:' + (req.user?.id ?? 'anonymous')],
  onConnect: (client, req) => {
    const topic = req.query.topic
    if (typeof topic === 'string') client.subscribe(topic)
    client.send({ event: 'price', data: { symbol: String(req.params.id), price: 2 } })
  }
}))

const fastify = Fastify()
void fastify.register(nativeSse, { heartbeatMs: 10_000 })
fastify.get('/events', (request, reply) => {
  const client = reply.sse({ channels: ['ticks'] })
  client.send({ event: 'tick', data: 1 })
  fastify.sse.broadcast({ event: 'tick', data: 2 })
})

const source = connect<Events>('/events', { transport: 'fetch' })
source.on('price', (price) => console.log(price.symbol.toUpperCase()))

// The client's EventMap and AnyEvents (its typings stand alone) are the hub's: a map typed
// for one end, or a type parameter constrained by it, serves the other.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const sameMaps: [Same<EventMap, ClientEventMap>, Same<AnyEvents, ClientAnyEvents>] = [true, true]
function follow<E extends EventMap> (hub: Hub<E>, url: string): SseClient<E> { return connect<E>(url) }
follow(hub, 'http://127.0.0.1/events').on('note', (note) => note.toUpperCase())
`

// Each line is a mistake the typings must catch; every one of them is counted.
const BAD = `
import express from 'express'
import Fastify from 'fastify'
import { createHub } from 'native-sse'
import { sse } from 'native-sse/express'
import nativeSse from 'native-sse/fastify'
import { connect } from 'native-sse/client'

interface Events { price: { symbol: string; price: number } }
declare module 'native-sse/fastify' {
  interface Events { tick: number }
}
const hub = createHub<Events>()
hub.broadcast({ event: 'price', data: 'not a price' })
hub.broadcast({ event: 'unknown', data: 1 })
express().get('/e', sse(hub, { onConnect: (client, req) => { req.query.topic.toFixed() } }))
Fastify().get('/e', (request, reply) => { reply.sse().send({ event: 'tick', data: 'not a number' }) })
connect<Events>('/e').on('price', (price) => price.toFixed())
`
const MISTAKES = 5

function tsc (dir, { type, compilerOptions }) {
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'an-app', private: true, type }))
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'es2022', types: ['node'], esModuleInterop: true, skipLibCheck: false, ...compilerOptions },
    files: ['app.ts']
  }))
  return new Promise((resolve) => execFile(process.execPath, [TSC, '-p', dir], { cwd: dir, timeout: 120_000 },
    (error, stdout) => resolve({ code: error ? error.code : 0, out: stdout })))
}

test('the typings compile an app\'s code and catch its mistakes under commonjs (node10), node16, nodenext and bundler', { timeout: 600_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-types-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'native-sse'))
  for (const name of ['express', 'fastify']) fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(dir, 'node_modules', name))
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules', '@types'))) {
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', name), path.join(dir, 'node_modules', '@types', name))
  }
  for (const [name, config] of Object.entries(CONFIGURATIONS)) {
    fs.writeFileSync(path.join(dir, 'app.ts'), GOOD)
    const good = await tsc(dir, config)
    assert.equal(good.code, 0, `${name}: the app's code does not compile:\n${good.out}`)
    fs.writeFileSync(path.join(dir, 'app.ts'), BAD)
    const bad = await tsc(dir, config)
    const errors = bad.out.split('\n').filter((line) => /^app\.ts\(\d+,\d+\): error TS/.test(line))
    const lines = new Set(errors.map((line) => line.match(/^app\.ts\((\d+),/)[1]))
    t.diagnostic(`${name}: the app compiles; ${lines.size} of ${MISTAKES} mistakes caught`)
    assert.equal(lines.size, MISTAKES, `${name}: expected ${MISTAKES} lines with errors:\n${bad.out}`)
  }
})

// A browser app's project: the DOM's types and nothing of Node's (`types: []`, no @types/node
// in its node_modules). native-sse/client must compile there on its own: its typings may not
// reach index.d.ts (node:http, Buffer). node10 reads client.d.ts, the others client.d.mts.
const BROWSER_CONFIGURATIONS = {
  bundler: { type: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
  'nodenext (an ES module app)': { type: 'module', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  'commonjs (node10)': { type: 'commonjs', compilerOptions: { module: 'commonjs' } }
}

const BROWSER_APP = `
import { connect, type SseClient } from 'native-sse/client'

interface Answer { text: string; done: boolean }
interface Events { token: string; answer: Answer }

const key = 'answer-1'
const client: SseClient<Events> = connect<Events>(new URL('/answers/1/events', location.href), {
  text: ['token'],
  lastEventId: sessionStorage.getItem(key) ?? '',
  headers: async () => ({ authorization: 'Bearer ' + localStorage.getItem('token') }),
  fetch: window.fetch,
  EventSource: window.EventSource,
  onError: ({ status, retryInMs }) => console.warn(status, retryInMs),
  onClose: ({ reason }) => console.info(reason)
})
client.on('token', (token, { id }) => {
  document.body.append(token)
  sessionStorage.setItem(key, id)
})
export async function answer (): Promise<Answer | undefined> {
  for await (const received of client) {
    if (received.event === 'answer') return received.data
  }
}
`

// Each line is a mistake; the last proves the project has no Node types to lean on.
const BROWSER_MISTAKES = `
import { connect } from 'native-sse/client'
interface Events { token: string; answer: { text: string } }
const client = connect<Events>('/events', { text: ['answer'] })
client.on('answer', (answer) => answer.toFixed())
client.on('unknown', () => {})
export const bytes = Buffer.from('no Node here')
`
const BROWSER_MISTAKE_COUNT = 4

test('native-sse/client compiles in a browser project (lib dom, no Node types) under bundler, nodenext and commonjs (node10)', { timeout: 600_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-browser-types-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'native-sse'))
  for (const [name, { type, compilerOptions }] of Object.entries(BROWSER_CONFIGURATIONS)) {
    const config = { type, compilerOptions: { lib: ['dom', 'dom.iterable', 'es2022'], types: [], ...compilerOptions } }
    fs.writeFileSync(path.join(dir, 'app.ts'), BROWSER_APP)
    const good = await tsc(dir, config)
    const count = (out) => out.split('\n').filter((line) => /error TS\d+/.test(line)).length
    t.diagnostic(`${name}: ${count(good.out)} errors`)
    assert.equal(good.code, 0, `${name}: a browser app using native-sse/client does not compile (${count(good.out)} errors):\n${good.out}`)
    fs.writeFileSync(path.join(dir, 'app.ts'), BROWSER_MISTAKES)
    const bad = await tsc(dir, config)
    const lines = new Set(bad.out.split('\n').map((line) => line.match(/^app\.ts\((\d+),\d+\): error TS/)?.[1]).filter(Boolean))
    assert.equal(lines.size, BROWSER_MISTAKE_COUNT, `${name}: expected ${BROWSER_MISTAKE_COUNT} lines with errors:\n${bad.out}`)
    assert.equal(count(bad.out), lines.size, `${name}: errors outside app.ts:\n${bad.out}`)
  }
})
