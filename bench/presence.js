'use strict'

// What presence costs: the heap per member, and the join/leave traffic of a wave of 1,000 joins
// (each member also subscribed, as a "who is online" page is). Run: node --expose-gc bench/presence.js
// Loopback only; every loop is bounded.

const http = require('node:http')
const { createHub } = require('..')
const { rawClient, waitFor } = require('../__test__/helpers')

const WAVE = 1000

async function wave ({ presence }) {
  const hub = createHub({ heartbeatMs: 60_000 })
  if (presence) hub.presence('room:{room}')
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    hub.attach(req, res, { channels: ['room:1'], user: url.searchParams.get('user') })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  global.gc()
  const heapBefore = process.memoryUsage().heapUsed
  const clients = []
  const started = performance.now()
  for (let i = 0; i < WAVE; i++) clients.push(rawClient(port, { path: `/?user=u${i}` }))
  await waitFor(() => hub.size === WAVE, { what: 'the wave', timeoutMs: 60_000 })
  const attachedMs = performance.now() - started
  let events = 0
  let bytes = 0
  if (presence) {
    // Everyone has heard of everyone: the last joiner's snapshot, and the batches after.
    const knows = (c) => {
      const seen = new Set()
      for (const e of c.events) {
        const data = JSON.parse(e.data)
        for (const m of data.members ?? []) seen.add(m.user)
        for (const j of data.joins ?? []) seen.add(j.user)
      }
      return seen.size === WAVE
    }
    await waitFor(() => clients.every(knows), { what: 'every member to know every other', timeoutMs: 60_000 })
    for (const c of clients) for (const e of c.events) { events++; bytes += e.data.length }
  }
  // What the test clients kept is theirs, not the hub's.
  for (const c of clients) { c.events.length = 0; c.raw = Buffer.alloc(0) }
  global.gc()
  const heapPerMember = (process.memoryUsage().heapUsed - heapBefore) / WAVE
  for (const c of clients) c.end()
  await waitFor(() => hub.size === 0, { what: 'the clients to leave', timeoutMs: 30_000 })
  await hub.close()
  server.close()
  return { attachedMs, heapPerMember, events, bytes }
}

async function main () {
  await wave({ presence: true }) // warm-up: code and pools, so neither measured run pays for them
  const without = await wave({ presence: false })
  const withPresence = await wave({ presence: true })
  const naive = WAVE * WAVE
  console.log(`presence wave of ${WAVE} joins (each member a subscriber):`)
  console.log(`  JS heap per client: ${Math.round(without.heapPerMember)} B without presence, ${Math.round(withPresence.heapPerMember)} B with (+${Math.round(withPresence.heapPerMember - without.heapPerMember)} B per member; the test clients, in this process too, are in both)`)
  console.log(`  presence events delivered: ${withPresence.events} (${(withPresence.events / WAVE).toFixed(2)} per subscriber; one event per join per subscriber would be ${naive}), ${(withPresence.bytes / 1024).toFixed(0)} KiB of data`)
  console.log(`  wave attached in ${Math.round(without.attachedMs)} ms without presence, ${Math.round(withPresence.attachedMs)} ms with`)
}

main().catch((error) => { console.error(error); process.exit(1) })
