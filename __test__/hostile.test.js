'use strict'
// needs: procfs

// Hostile requests, on both transports: an 8 KB Last-Event-ID, invalid UTF-8 in it, bytes sent
// after the request, junk instead of headers, and a client that connects and resets in a loop.
// None of them crashes or stalls the hub, each gets a defined answer, and a witness client
// streaming alongside gets every event.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { createHub } = require('..')
const { TRANSPORTS, HOST, startHttp, rawClient, waitFor, openFdCount } = require('./helpers')

/** A hub with history, a server, and a witness that must see every broadcast. */
async function setup (transport) {
  const hub = createHub({ heartbeatMs: 60_000, history: { maxEvents: 100 } })
  const closes = []
  const http = await startHttp((req, res) => {
    const client = hub.attach(req, res, { transport })
    client.on('close', (reason) => closes.push(reason))
  })
  const witness = rawClient(http.port)
  await waitFor(() => witness.comments.length === 1, { what: 'the witness' })
  let sent = 0
  return {
    hub,
    http,
    closes,
    witness,
    /** Broadcasts one numbered event and waits for the witness to get it. */
    tick: async () => {
      hub.broadcast({ data: `tick ${sent++}` })
      await waitFor(() => witness.events.length === sent, { what: `tick ${sent - 1} at the witness` })
      assert.deepEqual(witness.events.map((e) => e.data), Array.from({ length: sent }, (_, i) => `tick ${i}`))
    },
    stop: async () => {
      witness.reset()
      await hub.close()
      await http.close()
    }
  }
}

// A peer's FIN or RST is seen at once (a parked writer is resumed by it); 10 s is for a loaded
// machine. Without a bound, a writer that never saw the FIN would hang the file until its
// heartbeat, minutes for 200 connections, and end at the runner's timeout with no message.
const CLOSED_WITHIN_MS = 10_000

/** Resolves once `socket` has closed; rejects, naming it as `what`, if it has not within `ms`. */
function closedWithin (socket, what, ms = CLOSED_WITHIN_MS) {
  return new Promise((resolve, reject) => {
    if (socket.closed) return resolve()
    const timer = setTimeout(() => reject(new Error(`${what}: still open ${ms} ms later ` +
      `(destroyed ${socket.destroyed}, readable ended ${socket.readableEnded}, writable ended ${socket.writableEnded})`)), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Sends `bytes` raw and collects the answer until the server closes or `ms` pass. */
function rawExchange (port, bytes, ms = 2000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST)
    let answer = Buffer.alloc(0)
    socket.on('data', (chunk) => { answer = Buffer.concat([answer, chunk]) })
    socket.on('error', () => {})
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(answer.toString('latin1')) }
    const timer = setTimeout(done, ms)
    socket.on('close', done)
    socket.write(bytes)
  })
}

for (const transport of TRANSPORTS) {
  describe(`hostile requests, ${transport} transport`, () => {
    test('an 8 KB Last-Event-ID and one with invalid UTF-8 get the reset event, then live events', async () => {
      const s = await setup(transport)
      try {
        await s.tick()
        const long = rawClient(s.http.port, { headers: { 'Last-Event-ID': 'f'.repeat(8 * 1024) } })
        // Raw bytes 0xff 0xfe 0x80: not UTF-8 (Node reads header bytes as latin1).
        const invalid = rawClient(s.http.port, { headers: { 'Last-Event-ID': Buffer.from([0x41, 0xff, 0xfe, 0x80]).toString('latin1') } })
        const query = rawClient(s.http.port, { path: '/?lastEventId=%FF%FE%80' })
        const hostile = [long, invalid, query]
        await waitFor(() => hostile.every((r) => r.events.some((e) => e.event === 'sse-reset')), { what: 'the reset events' })
        await s.tick()
        for (const raw of hostile) {
          assert.equal(raw.ended, false)
          assert.equal(raw.events.at(-1).data, 'tick 1', 'live events follow the reset')
        }
        for (const raw of hostile) raw.end()
        await waitFor(() => s.hub.size === 1, { what: 'the hostile clients to leave' })
      } finally {
        await s.stop()
      }
    })

    test('bytes after the request: ignored on the native transport, a parse error closing only that client on the node transport', async () => {
      const s = await setup(transport)
      try {
        const raw = rawClient(s.http.port)
        await waitFor(() => raw.comments.length === 1, { what: 'the stream' })
        raw.socket.write('garbage after the request\r\n\r\nGET /again HTTP/1.1\r\nHost: x\r\n\r\n' + 'z'.repeat(10_000))
        if (transport === 'native') {
          // The socket is Rust's: what the client sends is read and dropped, the stream goes on.
          await s.tick()
          await waitFor(() => raw.events.length === 1, { what: 'the event after the junk' })
          assert.equal(raw.ended, false)
          assert.equal(s.hub.size, 2)
        } else {
          // Node's HTTP parser still reads the connection: junk is a parse error that ends it.
          await waitFor(() => s.closes.includes('error') && raw.ended, { what: 'the junk to end the stream' })
          await s.tick()
          assert.equal(s.hub.size, 1)
        }
      } finally {
        await s.stop()
      }
    })

    test('200 connections that pipeline two requests and leave hold no place: every attach is counted as a client that left', async () => {
      const hub = createHub({ heartbeatMs: 60_000, maxClients: 50 })
      const closes = []
      const http = await startHttp((req, res) => {
        const client = hub.attach(req, res, { transport: req.url === '/witness' ? transport : 'auto' })
        client.on('close', (reason) => closes.push(reason))
      })
      try {
        const request = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`
        for (let i = 0; i < 200; i += 20) {
          await Promise.all(Array.from({ length: 20 }, (_, j) => {
            const socket = net.connect(http.port, HOST)
            socket.on('error', () => {})
            // Both requests at once; the peer leaves once the first stream has begun.
            socket.once('connect', () => socket.write(request.repeat(2)))
            socket.once('data', () => socket.end())
            return closedWithin(socket, `connection ${i + j} (two pipelined requests, FIN once the first stream began): the server never closed it`)
          }))
        }
        await waitFor(() => closes.length === 400, { what: () => `400 closes (got ${closes.length}, hub.size ${hub.size})` })
        assert.equal(hub.size, 0, 'no client is left in the hub')
        assert.deepEqual([...new Set(closes)], ['client'])
        const metrics = hub.metrics()
        assert.equal(metrics.connectionsOpened, 400)
        assert.equal(metrics.closes.client, 400)
        assert.equal(metrics.refused.hubFull, 0, 'the cap was never reached')
        // The places are free: 50 real clients attach.
        const clients = Array.from({ length: 50 }, () => rawClient(http.port, { path: '/witness' }))
        await waitFor(() => clients.every((c) => c.comments.length === 1), { what: '50 live clients' })
        assert.equal(hub.size, 50)
        for (const c of clients) c.end()
      } finally {
        await hub.close()
        await http.close()
      }
    })

    test('junk instead of headers is answered 400 by Node before any attach', async () => {
      const s = await setup(transport)
      try {
        const answer = await rawExchange(s.http.port, 'GET / HTTP/1.1\r\n\u0000\u0001\u0002 junk\r\n\r\n')
        assert.match(answer, /^HTTP\/1\.1 400/)
        const huge = await rawExchange(s.http.port, `GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${'x'.repeat(20_000)}\r\n\r\n`)
        assert.match(huge, /^HTTP\/1\.1 431/)
        await s.tick()
        assert.equal(s.hub.size, 1)
        assert.equal(s.hub.metrics().connectionsOpened, 1, 'only the witness was ever attached')
      } finally {
        await s.stop()
      }
    })

    test('a client that connects and resets 2,000 times in a loop leaves nothing behind', async () => {
      const s = await setup(transport)
      try {
        await s.tick()
        const baseline = openFdCount()
        const request = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`
        const ROUNDS = 2000
        const BATCH = 50
        for (let i = 0; i < ROUNDS; i += BATCH) {
          await Promise.all(Array.from({ length: BATCH }, (_, j) => {
            const k = i + j
            const socket = net.connect(s.http.port, HOST)
            socket.on('error', () => {})
            socket.once('connect', () => {
              // Before, during and after the request and the handoff.
              if (k % 3 === 0) return socket.resetAndDestroy()
              socket.write(request)
              if (k % 3 === 1) return socket.resetAndDestroy()
              socket.once('data', () => socket.resetAndDestroy())
            })
            const when = ['before its request', 'after its request', 'at the first byte of its answer'][k % 3]
            return closedWithin(socket, `connection ${k} (reset ${when})`)
          }))
          if (i % 500 === 0) await s.tick()
        }
        await s.tick()
        await waitFor(() => s.hub.size === 1, { what: `the resetting clients to be gone (at ${s.hub.size})`, timeoutMs: 10_000 })
        assert.ok(s.closes.length > ROUNDS / 3, `${s.closes.length} attached clients closed`)
        // A reset is the peer leaving, like a FIN.
        assert.deepEqual([...new Set(s.closes)], ['client'])
        await waitFor(() => openFdCount() <= baseline, { what: `fds back to ${baseline} (at ${openFdCount()})`, timeoutMs: 10_000 })
        assert.equal(s.witness.ended, false)
      } finally {
        await s.stop()
      }
    })
  })
}
