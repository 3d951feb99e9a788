'use strict'
// needs: curl

// Every encoder rule, end to end: what the application passes arrives unchanged (modulo the
// spec's newline normalization) at three independent real clients, and nothing an application
// passes can create an extra event.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { EventSource } = require('eventsource')
const { fetch } = require('undici')
const { createParser } = require('eventsource-parser')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, curl, parseSse, waitFor } = require('./helpers')

// The spec turns CRLF and lone CR into LF inside data; everything else is kept byte for byte.
const normalized = (text) => text.replace(/\r\n|\r/g, '\n')

const MEGABYTE = 'x'.repeat(500_000) + '\u00e9' + 'y'.repeat(499_999)
const CASES = [
  { data: 'one line' },
  { data: 'a\nb\nc' },
  { data: 'a\r\nb\r\nc' },
  { data: 'a\rb\rc' },
  { data: 'mixed\r\n\nendings\rhere\n' },
  { data: '   leading spaces' },
  { data: '' },
  { data: '\n' },
  { data: 'outside the BMP: \u{1F600} \u{1D11E} \u{10FFFF}' },
  { data: { json: ['value', 1, null], nested: { ok: true } } },
  { data: Buffer.from('buffer as utf-8: \u00fc\u{1F680}') },
  { data: 'named', event: 'custom', id: 'id-1' },
  { data: 'x\n\nevent: evil\ndata: injected\nid: 666\n\ndata: more' },
  { data: 'data: y\r\n\r\nretry: 1' },
  { data: MEGABYTE }
]

const expectedData = (message) => {
  if (typeof message.data === 'string') return normalized(message.data)
  if (Buffer.isBuffer(message.data)) return message.data.toString('utf8')
  return JSON.stringify(message.data)
}
const EXPECTED = [
  ...CASES.map((m) => ({ type: m.event ?? 'message', data: expectedData(m) })),
  { type: 'end', data: 'done' }
]

let hub
let http
const rejected = []

before(async () => {
  hub = createHub({ heartbeatMs: 60_000, maxLagBytes: 4 * 1024 * 1024 })
  http = await startHttp((req, res) => {
    // The path names the transport: /native or /node.
    const transport = req.url.slice(1)
    const client = hub.attach(req, res, { transport })
    assert.equal(client.transport, transport)
    // Attempts that must be refused before anything is written.
    for (const bad of [
      { data: 'x', event: 'evil\ndata: injected' },
      { data: 'x', event: 'evil\r' },
      { data: 'x', id: '1\n\ndata: injected' },
      { data: 'x', id: '1\r2' },
      { data: 'x', id: 'nul\0' }
    ]) {
      try {
        client.send(bad)
        rejected.push(null)
      } catch (error) {
        rejected.push(error)
      }
    }
    try {
      client.comment('ok\n\ndata: injected-through-comment\n')
    } catch (error) {
      rejected.push(error)
    }
    for (const message of CASES) client.send(message)
    client.send({ event: 'end', data: 'done' })
    client.close()
  })
})

after(async () => {
  await hub.close()
  await http.close()
})

for (const transport of TRANSPORTS) {
  describe(`transport: ${transport}`, () => {
    test('invalid event and id values are refused with ERR_SSE_INVALID_FIELD', async () => {
      const { events } = parseSse((await curl(['-sN', `${http.url}/${transport}`])).stdout.toString())
      assert.ok(events.length > 0)
      assert.ok(rejected.length >= 5)
      for (const error of rejected) {
        assert.ok(error instanceof TypeError, String(error))
        assert.equal(error.code, 'ERR_SSE_INVALID_FIELD')
        assert.match(error.message, /must be a single line/)
      }
    })

    test('curl receives every event exactly and a clean end of stream', async () => {
      const { code, stdout } = await curl(['-sN', '--fail', `${http.url}/${transport}`])
      assert.equal(code, 0, 'curl must see a complete (terminated) chunked body')
      const { events, comments } = parseSse(stdout.toString('utf8'))
      assert.deepEqual(events.map((e) => ({ type: e.event ?? 'message', data: e.data })), EXPECTED)
      assert.equal(events.find((e) => e.event === 'custom').id, 'id-1')
      assert.deepEqual(comments, ['', 'ok', '', 'data: injected-through-comment', ''])
    })

    test('eventsource-parser over undici fetch receives every event exactly', async () => {
      const response = await fetch(`${http.url}/${transport}`)
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8')
      assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform')
      assert.equal(response.headers.get('x-accel-buffering'), 'no')
      assert.equal(response.headers.get('content-length'), null)
      const events = []
      const parser = createParser({ onEvent: (e) => events.push(e) })
      const decoder = new TextDecoder()
      for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }))
      assert.deepEqual(events.map((e) => ({ type: e.event ?? 'message', data: e.data })), EXPECTED)
    })

    test('the eventsource package receives every event exactly', async () => {
      const source = new EventSource(`${http.url}/${transport}`)
      const received = []
      const record = (e) => received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId })
      source.addEventListener('message', record)
      source.addEventListener('custom', record)
      source.addEventListener('evil', record)
      source.addEventListener('end', record)
      try {
        await waitFor(() => received.some((e) => e.type === 'end'), { what: 'the end event' })
      } finally {
        source.close()
      }
      assert.deepEqual(received.map(({ type, data }) => ({ type, data })), EXPECTED)
      const custom = received.find((e) => e.type === 'custom')
      assert.equal(custom.lastEventId, 'id-1')
    })
  })
}
