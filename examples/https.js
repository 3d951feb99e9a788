// HTTPS: TLS state lives in Node, so these clients use the Node transport automatically.
const fs = require('node:fs')
const https = require('node:https')
const { createHub } = require('native-sse')

const hub = createHub()
const tls = { key: fs.readFileSync(process.env.TLS_KEY ?? 'key.pem'), cert: fs.readFileSync(process.env.TLS_CERT ?? 'cert.pem') }

const server = https.createServer(tls, (req, res) => {
  const client = hub.attach(req, res) // client.transport === 'node'
  client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
})

setInterval(() => hub.broadcast({ event: 'tick', data: Date.now() }), 1000).unref()

server.listen(Number(process.env.PORT ?? 3443), '127.0.0.1', () => {
  console.log(`listening on https://127.0.0.1:${server.address().port}/events`)
})
