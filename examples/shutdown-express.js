// Express 5: a staged shutdown on SIGTERM.
const express = require('express')
const { createHub } = require('native-sse')
const { sse } = require('native-sse/express')

const hub = createHub()
const app = express()

app.get('/events', sse(hub, {
  onConnect: (client) => client.send({ event: 'hello', data: { id: client.id } })
}))

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`)
})

process.once('SIGTERM', async () => {
  await hub.close({ spreadMs: 10_000, finalEvent: { event: 'shutdown', data: '' } })
  server.close()
})
