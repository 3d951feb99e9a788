// Operating a node:http server: a cap, Prometheus metrics, structured connection logs, and a
// staged shutdown on SIGTERM.
const http = require('node:http')
const { createHub } = require('native-sse')

const hub = createHub({ maxClients: 10_000, retryMs: 2000 })
hub.on('connect', (info) => console.log(JSON.stringify({ msg: 'sse connect', ...info })))
hub.on('disconnect', (info) => console.log(JSON.stringify({ msg: 'sse disconnect', ...info })))

const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
    return res.end(hub.metricsText())
  }
  if (req.url !== '/events') return res.writeHead(404).end()
  const client = hub.attach(req, res)
  if (client.refusal !== null) return // full or closing: attach answered 503 with Retry-After
  client.send({ event: 'hello', data: { id: client.id } })
})

process.once('SIGTERM', async () => {
  // New streams get 503 meanwhile; each client gets a jittered retry: and the final event at
  // its own moment within 10 s, so they do not all reconnect to the next instance at once.
  await hub.close({ spreadMs: 10_000, drainMs: 5000, finalEvent: { event: 'shutdown', data: '' } })
  server.close()
})

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/events`)
})
