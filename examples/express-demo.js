'use strict'

// The quick-start demo (`npm start`): an Express 5 app serving a live page streamed by
// native-sse (examples/demo: prices, a chart, the hub's own figures, buttons to open 100 more
// streams and to drop the page's stream and watch it resume). Open the printed URL.

const express = require('express')
const { createDemo } = require('./demo/app')

const demo = createDemo()
const app = express()

app.get('/', (req, res) => res.type('html').send(demo.page))
app.get('/events', (req, res) => demo.events(req, res))
app.post('/drop/:id', (req, res) => res.sendStatus(demo.drop(req.params.id) ? 204 : 404))

const host = process.env.HOST || '127.0.0.1'
const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT)
const server = app.listen(port, host, () => {
  const address = server.address()
  console.log(`native-sse demo on http://${address.address}:${address.port}/`)
})

async function shutdown () {
  await demo.close()
  server.close(() => process.exit(0))
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
