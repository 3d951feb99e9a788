// bench/test-helper: examples/testing/express.test.js as it is (compared with without-helper.test.js).
// A test of an Express SSE route with node:test (vitest and jest run it the same way):
// native-sse/testing serves the app on a port of its own and reads the stream as a browser would.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const { createHub } = require('native-sse')
const { sse } = require('native-sse/express')
const { openStream } = require('native-sse/testing')

function createApp (hub) {
  const app = express()
  app.get('/prices', sse(hub, {
    channels: ['prices'],
    onConnect: (client) => client.send({ event: 'hello', data: { id: client.id } })
  }))
  return app
}

test('GET /prices says hello, streams prices, and resumes after a drop', async () => {
  const hub = createHub({ history: true })
  const app = createApp(hub)
  let stream = await openStream(app, { path: '/prices' })
  try {
    assert.equal(stream.status, 200)
    await stream.waitFor('hello')
    hub.publish('prices', { event: 'price', id: 'p1', data: { symbol: 'ACME', price: 101 } })
    assert.deepEqual(JSON.parse((await stream.waitFor('price')).data), { symbol: 'ACME', price: 101 })

    // The connection drops; what is published meanwhile comes after the reconnect, once.
    await stream.close()
    hub.publish('prices', { event: 'price', id: 'p2', data: { symbol: 'ACME', price: 102 } })
    stream = await stream.reconnect() // sends Last-Event-ID: p1
    assert.equal((await stream.waitFor('price')).id, 'p2')
  } finally {
    await stream.close()
    await hub.close()
  }
})
