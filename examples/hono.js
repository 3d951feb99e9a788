// Hono: hub.response(c) streams natively on Node (@hono/node-server), with a Response body on
// Bun, Deno and Workers; Next.js, Bun.serve and Deno.serve handlers pass their Request.
const { Hono } = require('hono')
const { serve } = require('@hono/node-server')
const { createHub } = require('native-sse')

const hub = createHub({ heartbeatMs: 15_000 })
const app = new Hono()

app.get('/events', (c) => hub.response(c, { channels: ['ticks'] }, (client) => {
  client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
}))

setInterval(() => hub.publish('ticks', { event: 'tick', data: Date.now() }), 1000).unref()

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}/events`)
})
