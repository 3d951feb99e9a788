'use strict'
// needs: redis-server

// Who is here: members of a channel collapsed by user (a user's tabs are one member), a
// snapshot for each new subscriber then coalesced joins and leaves, and the same member set in
// every process of a Redis namespace, three processes at 1,000 members; a process killed with
// SIGKILL has its members leave on the others within 10 s.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { fork } = require('node:child_process')
const { createHub } = require('..')
const { openStream } = require('../lib/testing')
const { startHttp, rawClient, waitFor } = require('./helpers')
const { startRedis } = require('../test-support/redis')

const FIXTURE = path.join(__dirname, 'fixtures', 'presence-hub.js')
let redis

before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis?.close() })

const route = (user, ...channels) => '/?' + [...channels.map((ch) => `ch=${ch}`), ...(user === null ? [] : [`user=${user}`])].join('&')

async function presenceServer (hub) {
  return startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    hub.attach(req, res, { channels: url.searchParams.getAll('ch'), user: url.searchParams.get('user') ?? undefined })
  })
}

const presenceEvents = (client) => client.events.filter((e) => e.event === 'sse-presence').map((e) => JSON.parse(e.data))

test('members collapse by user; a subscriber gets a snapshot, then joins and leaves coalesced into one event a second', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.presence('room:{room}')
  const http = await presenceServer(hub)
  const clients = []
  try {
    const watcher = await openStream(http.server, { path: route('watcher', 'room:1') })
    clients.push(watcher)
    assert.deepEqual(JSON.parse((await watcher.waitFor('sse-presence')).data), { channel: 'room:1', members: [], snapshot: true })
    // A wave: 50 users, three tabs each, and one anonymous stream (not a member).
    const paths = []
    for (let u = 0; u < 50; u++) for (let tab = 0; tab < 3; tab++) paths.push(route(`u${u}`, 'room:1'))
    paths.push(route(null, 'room:1'))
    clients.push(...await Promise.all(paths.map((path) => openStream(http.server, { path, timeoutMs: 10_000 }))))
    await waitFor(() => hub.memberCount('room:1').connections === 151, { what: '151 member connections' })
    assert.deepEqual(hub.memberCount('room:1'), { users: 51, connections: 151 })
    const ann = hub.members('room:1').members.find((m) => m.user === 'u7')
    assert.deepEqual(ann, { user: 'u7', connections: 3, data: null })
    // The watcher hears the wave as one event (its own join is in it too), not 150.
    await waitFor(() => presenceEvents(watcher).length === 2, { what: 'the coalesced joins' })
    const joins = presenceEvents(watcher)[1]
    assert.equal(joins.joins.length, 51)
    assert.deepEqual(joins.leaves, [])
    // A late subscriber's snapshot has everyone already there.
    const late = await openStream(http.server, { path: route(null, 'room:1') })
    clients.push(late)
    await waitFor(() => presenceEvents(late).length === 1, { what: 'the late snapshot' })
    assert.equal(presenceEvents(late)[0].members.length, 51)
    // Two of u7's tabs leave: still a member. All of u8's leave: one leave.
    const u7 = clients.slice(1).filter((_, i) => Math.floor(i / 3) === 7 && i < 150)
    const u8 = clients.slice(1).filter((_, i) => Math.floor(i / 3) === 8 && i < 150)
    await Promise.all([...u7.slice(0, 2), ...u8].map((c) => c.close()))
    await waitFor(() => hub.memberCount('room:1').connections === 146, { what: 'five tabs gone' })
    assert.deepEqual(hub.memberCount('room:1'), { users: 50, connections: 146 })
    await waitFor(() => presenceEvents(watcher).length === 3 && presenceEvents(late).length === 2, { what: 'the leave' })
    assert.deepEqual(presenceEvents(watcher)[2], { channel: 'room:1', joins: [], leaves: ['u8'] })
    assert.deepEqual(presenceEvents(late)[1], { channel: 'room:1', joins: [], leaves: ['u8'] })
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    await hub.close()
    await http.close()
  }
})

test('a subscriber that joins while a batch gathers gets a snapshot with it, and the batch without what its snapshot showed: no gap, no repeat', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  hub.presence('room:{room}')
  const http = await startHttp((req, res) => {
    const url = new URL(req.url, 'http://x')
    hub.attach(req, res, { channels: ['room:1'], user: url.searchParams.get('user') ?? undefined })
  })
  const clients = []
  const open = async (user) => { const c = await openStream(http.server, { path: user === null ? '/' : `/?user=${user}` }); clients.push(c); return c }
  try {
    const watcher = await open(null)
    await watcher.waitFor('sse-presence')
    // Within one gathering: ann joins, then the late reader subscribes, then bob joins.
    await open('ann')
    await waitFor(() => hub.memberCount('room:1').users === 1, { what: 'ann' })
    const late = await open(null)
    await late.waitFor('sse-presence')
    assert.deepEqual(presenceEvents(late)[0].members.map((m) => m.user), ['ann'])
    await open('bob')
    await waitFor(() => presenceEvents(watcher).length === 2 && presenceEvents(late).length === 2, { what: 'the batch', timeoutMs: 5000 })
    assert.deepEqual(presenceEvents(watcher)[1].joins.map((j) => j.user), ['ann', 'bob'], 'the watcher hears both')
    assert.deepEqual(presenceEvents(late)[1].joins.map((j) => j.user), ['bob'], 'the late reader hears only what its snapshot did not show')
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    await hub.close()
    await http.close()
  }
})

async function startChild (options) {
  const child = fork(FIXTURE, [JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  const port = Number((await waitFor(() => output.match(/listening (\d+)/), { what: 'the child to listen', timeoutMs: 15_000 }))[1])
  const ask = (channel) => new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply.count))
    child.send({ op: 'count', channel })
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); return exited }
  return { child, port, ask, kill }
}

test('three processes agree on 1,000 members (tabs counted once); a SIGKILLed process\'s members leave the others within 10 s', async (t) => {
  const options = { url: redis.url, prefix: 'presence-1k' }
  const hub = createHub({ heartbeatMs: 60_000, redis: options })
  hub.presence('room:{room}', { events: false })
  await hub.ready()
  const a = await startChild(options)
  const b = await startChild(options)
  const clients = []
  try {
    // u0..u499 on A; u500..u999 on B; u0..u99 have a second tab on B.
    for (let u = 0; u < 500; u++) clients.push(rawClient(a.port, { path: route(`u${u}`, 'room:big') }))
    for (let u = 500; u < 1000; u++) clients.push(rawClient(b.port, { path: route(`u${u}`, 'room:big') }))
    for (let u = 0; u < 100; u++) clients.push(rawClient(b.port, { path: route(`u${u}`, 'room:big') }))
    const expected = { users: 1000, connections: 1100 }
    await waitFor(() => { const c = hub.memberCount('room:big'); return c.users === 1000 && c.connections === 1100 }, { what: () => `this process to see 1,000 members (${JSON.stringify(hub.memberCount('room:big'))})`, timeoutMs: 20_000 })
    assert.deepEqual(await a.ask('room:big'), expected)
    assert.deepEqual(await b.ask('room:big'), expected)
    const members = hub.members('room:big').members
    assert.equal(new Set(members.map((m) => m.user)).size, 1000)
    assert.deepEqual(members.find((m) => m.user === 'u5'), { user: 'u5', connections: 2, data: null })

    const killed = performance.now()
    await a.kill()
    // A's members leave; u0..u99 stay through their tab on B.
    const after = { users: 600, connections: 600 }
    await waitFor(async () => JSON.stringify(hub.memberCount('room:big')) === JSON.stringify(after) && JSON.stringify(await b.ask('room:big')) === JSON.stringify(after),
      { what: () => `A's members to leave (${JSON.stringify(hub.memberCount('room:big'))})`, timeoutMs: 15_000 })
    const took = performance.now() - killed
    t.diagnostic(`A's members left the others ${Math.round(took)} ms after its SIGKILL`)
    assert.ok(took < 10_000, `A's members left ${Math.round(took)} ms after SIGKILL`)
  } finally {
    for (const c of clients) c.end()
    await a.kill()
    await b.kill()
    await hub.close()
  }
})
