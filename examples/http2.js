// HTTP/2: both the compatibility API (req, res) and raw streams (stream, headers) work.
const fs = require('node:fs')
const http2 = require('node:http2')
const { createHub } = require('native-sse')

const hub = createHub()
const tls = { key: fs.readFileSync(process.env.TLS_KEY ?? 'key.pem'), cert: fs.readFileSync(process.env.TLS_CERT ?? 'cert.pem') }

const server = http2.createSecureServer(tls)
server.on('stream', (stream, headers) => {
  const client = hub.attach(stream, headers)
  client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
})

setInterval(() => hub.broadcast({ event: 'tick', data: Date.now() }), 1000).unref()

server.listen(Number(process.env.PORT ?? 3443), '127.0.0.1', () => {
  console.log(`listening on https://127.0.0.1:${server.address().port}/events`)
})
