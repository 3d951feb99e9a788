// Express 5: the route handler helper, with channels and an onConnect callback.
const express = require('express')
const { createHub } = require('native-sse')
const { sse } = require('native-sse/express')

const hub = createHub({ heartbeatMs: 15_000 })
const app = express()

app.get('/events', sse(hub, {
  channels: ['ticks'],
  onConnect: (client) => client.send({ event: 'hello', data: { id: client.id } })
}))

setInterval(() => hub.publish('ticks', { event: 'tick', data: Date.now() }), 1000).unref()

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`)
})
