// Plain node:http: attach the response, broadcast to everyone.
const http = require('node:http')
const { createHub } = require('native-sse')

const hub = createHub()

const server = http.createServer((req, res) => {
  if (req.url !== '/events') return res.writeHead(404).end()
  const client = hub.attach(req, res)
  client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
  client.on('close', (reason) => console.log(`client ${client.id} left: ${reason}`))
})

setInterval(() => hub.broadcast({ event: 'tick', data: Date.now() }), 1000).unref()

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`)
})
