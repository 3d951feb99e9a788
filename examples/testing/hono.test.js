// A test of a Hono SSE route: app.fetch is called with a real Request, no server or port at all.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hono } = require('hono')
const { createHub } = require('native-sse')
const { openStream } = require('native-sse/testing')

function createApp (hub) {
  const app = new Hono()
  app.get('/rooms/:room', (c) => {
    if (c.req.header('authorization') !== 'Bearer good') return c.text('forbidden', 403)
    return hub.response(c, { channels: [`room:${c.req.param('room')}`] })
  })
  return app
}

test('a member gets the room\'s messages; anyone else gets 403', async () => {
  const hub = createHub()
  const app = createApp(hub)
  const stream = await openStream(app, { path: '/rooms/7', headers: { authorization: 'Bearer good' } })
  const refused = await openStream(app, { path: '/rooms/7' })
  try {
    assert.equal(refused.status, 403)
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8')
    hub.publish('room:7', { event: 'message', data: { text: 'hi' } })
    hub.publish('room:8', { event: 'message', data: { text: 'elsewhere' } })
    hub.publish('room:7', { event: 'message', data: { text: 'bye' } })
    const texts = [await stream.next(), await stream.next()].map((e) => JSON.parse(e.data).text)
    assert.deepEqual(texts, ['hi', 'bye'])
  } finally {
    await stream.close()
    await refused.close()
    await hub.close()
  }
})
