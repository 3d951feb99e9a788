'use strict'
// needs: curl, chromium

// gzip streams (createHub({ compression })) decoded by real clients: curl --compressed, the
// eventsource package over undici's fetch, and headless Chromium's EventSource, on both
// transports. Each must see every event, in order, and the wire must carry less than the
// plain stream; a client that does not accept gzip gets the plain stream from the same hub.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { execFile } = require('node:child_process')
const { EventSource } = require('eventsource')
const { chromium } = require('playwright-core')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, waitFor } = require('./helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const EVENTS = 300

/** A price event like a ticker's: JSON that repeats its keys. */
function price (i) {
  return { event: 'price', id: String(i), data: JSON.stringify({ symbol: ['ACME', 'GLOBX', 'INITECH'][i % 3], price: (100 + Math.sin(i) * 20).toFixed(2), volume: 1000 + (i * 7919) % 50000, seq: i }) }
}

/** A hub that compresses, an HTTP server attaching to 'prices' (and a page for the browser). */
async function app (transport) {
  const hub = createHub({ compression: true, heartbeatMs: 200 })
  const clients = []
  const http = await startHttp((req, res) => {
    if (req.url === '/page') {
      res.setHeader('content-type', 'text/html')
      return res.end('<!doctype html><title>prices</title>')
    }
    // Nothing else is a stream (the browser asks for /favicon.ico).
    if (req.url !== '/') return res.writeHead(404).end()
    clients.push(hub.attach(req, res, { transport, channels: ['prices'] }))
  })
  return { hub, http, clients, close: async () => { await hub.close(); await http.close() } }
}

/** Publishes the events once `clients` are subscribed, one per turn. */
async function publishAll (hub, clients) {
  await waitFor(() => hub.channel('prices').size === clients, { what: `${clients} subscribers` })
  for (let i = 0; i < EVENTS; i++) {
    hub.publish('prices', price(i))
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve))
  }
}

function curl (args) {
  return new Promise((resolve, reject) => {
    execFile('curl', args, { maxBuffer: 16 << 20, encoding: 'latin1' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`curl ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })
}

for (const transport of TRANSPORTS) {
  test(`${transport} transport: curl --compressed and eventsource over fetch decode every event of a gzip stream; a client without gzip gets it plain`, async () => {
    const { hub, http, close } = await app(transport)
    try {
      // curl ends when the hub closes the stream: its exit status checks the gzip trailer.
      const compressed = curl(['-sS', '-N', '--compressed', '-D', '-', `${http.url}/`])
      const plain = curl(['-sS', '-N', '-D', '-', `${http.url}/`])
      const source = new EventSource(`${http.url}/`)
      const seen = []
      source.addEventListener('price', (event) => seen.push(Number(event.lastEventId)))
      await publishAll(hub, 3)
      await waitFor(() => seen.length === EVENTS, { what: `${EVENTS} events through eventsource` })
      source.close()
      const { compression } = hub.metrics()
      await hub.close()

      const [zipped, unzipped] = await Promise.all([compressed, plain])
      assert.match(zipped, /\r\ncontent-encoding: gzip\r\n/i)
      assert.match(zipped, /\r\nvary: Accept-Encoding\r\n/i)
      assert.doesNotMatch(unzipped, /content-encoding/i, 'no gzip for a client that did not ask')
      assert.match(unzipped, /\r\nvary: Accept-Encoding\r\n/i)
      const body = (text) => text.slice(text.indexOf('\r\n\r\n') + 4)
      const expected = Array.from({ length: EVENTS }, (_, i) => price(i))
        .map(({ event, id, data }) => `event: ${event}\nid: ${id}\ndata: ${data}\n\n`).join('')
      const events = (text) => body(text).split(/(?<=\n\n)/).filter((frame) => frame.startsWith('event: ')).join('')
      assert.equal(events(zipped), expected, 'curl decoded every event, byte for byte')
      assert.equal(events(unzipped), expected)
      assert.deepEqual(seen, Array.from({ length: EVENTS }, (_, i) => i), 'eventsource (undici fetch) saw every event in order')
      // Two gzip clients joined before the first event: the channel's stream was shared from
      // its first segment.
      assert.ok(compression.wireBytes < 0.5 * compression.plainBytes,
        `gzip clients got ${compression.wireBytes} bytes for ${compression.plainBytes} plain`)
    } finally {
      await close()
    }
  })
}

test('headless Chromium\'s EventSource decodes a gzip stream as it arrives, and resumes after a cut', async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  const { hub, http, clients, close } = await app('native')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] })
  try {
    const page = await browser.newPage()
    await page.goto(`${http.url}/page`)
    await page.evaluate(() => {
      window.seen = []
      window.opens = 0
      const source = new EventSource('/')
      source.onopen = () => { window.opens++ }
      source.addEventListener('price', (event) => window.seen.push(Number(event.lastEventId)))
    })
    await publishAll(hub, 1)
    await page.waitForFunction((n) => window.seen.length === n, EVENTS, { timeout: 20_000 })
    // Each event is decoded when written (a sync flush per event): one more shows up alone.
    hub.publish('prices', price(EVENTS))
    await page.waitForFunction((n) => window.seen.length === n, EVENTS + 1, { timeout: 10_000 })
    assert.ok(hub.metrics().compression.wireBytes > 0, 'the browser got a gzip stream')

    // Cut by the server: the browser reconnects with Last-Event-ID; nothing missing, nothing twice.
    clients[0].close()
    await waitFor(async () => (await page.evaluate(() => window.opens)) === 2 && hub.channel('prices').size === 1, { what: 'the reconnect' })
    hub.publish('prices', price(EVENTS + 1))
    await page.waitForFunction((n) => window.seen.length === n, EVENTS + 2, { timeout: 10_000 })
    const seen = await page.evaluate(() => window.seen)
    assert.deepEqual(seen, Array.from({ length: EVENTS + 2 }, (_, i) => i))
  } finally {
    await browser.close()
    await close()
  }
})

test('compression options: a wrong type or range is a TypeError or RangeError with a code, and the hub is not made', () => {
  assert.throws(() => createHub({ compression: 'yes' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
  assert.throws(() => createHub({ compression: { level: 10 } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION', message: /compression\.level must be a whole number from 1 to 9/ })
  assert.throws(() => createHub({ compression: { keyframeEvery: 0 } }), { name: 'RangeError', code: 'ERR_SSE_INVALID_OPTION' })
  assert.throws(() => createHub({ compression: { levle: 3 } }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION', message: /allowed: level, keyframeEvery/ })
})
