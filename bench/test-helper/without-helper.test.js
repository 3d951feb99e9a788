// The test of examples/testing/express.test.js written without native-sse/testing, the way
// SSE route tests are written today: a server on a port, the eventsource package, hand-made
// waits, and a second EventSource with the last id to resume. Compared in
// bench/test-helper/README.md (lines, time per test).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const { EventSource } = require('eventsource')
const { createHub } = require('native-sse')
const { sse } = require('native-sse/express')

function createApp (hub) {
  const app = express()
  app.get('/prices', sse(hub, {
    channels: ['prices'],
    onConnect: (client) => client.send({ event: 'hello', data: { id: client.id } })
  }))
  return app
}

/** Resolves with the next `name` event of `source`, or rejects after `ms`. */
function nextEvent (source, name, ms = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      source.removeEventListener(name, onEvent)
      reject(new Error(`no '${name}' event within ${ms} ms`))
    }, ms)
    const onEvent = (event) => {
      clearTimeout(timer)
      source.removeEventListener(name, onEvent)
      resolve(event)
    }
    source.addEventListener(name, onEvent)
  })
}

test('GET /prices says hello, streams prices, and resumes after a drop', async () => {
  const hub = createHub({ history: true })
  const server = createApp(hub).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://127.0.0.1:${server.address().port}/prices`
  let source = new EventSource(url)
  try {
    // Listeners first: an event that arrives before them is lost.
    const hello = nextEvent(source, 'hello')
    const opened = new Promise((resolve, reject) => { source.onopen = resolve; source.onerror = reject })
    await opened
    await hello
    const price = nextEvent(source, 'price')
    hub.publish('prices', { event: 'price', id: 'p1', data: { symbol: 'ACME', price: 101 } })
    assert.deepEqual(JSON.parse((await price).data), { symbol: 'ACME', price: 101 })

    // The connection drops; what is published meanwhile comes after the reconnect, once.
    const lastEventId = 'p1'
    source.close()
    // The hub notices the client left only once it reads the FIN: wait for it.
    while (hub.size > 0) await new Promise((resolve) => setTimeout(resolve, 10))
    hub.publish('prices', { event: 'price', id: 'p2', data: { symbol: 'ACME', price: 102 } })
    source = new EventSource(url, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'last-event-id': lastEventId } })
    })
    assert.equal((await nextEvent(source, 'price')).lastEventId, 'p2')
  } finally {
    source.close()
    await hub.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})
