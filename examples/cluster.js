// One app on every core (node:cluster), or in several containers: each process has its own
// hub, and Redis makes them one. An event published by any process reaches the clients of
// all of them, with the same id everywhere, and a client that reconnects to another process
// resumes from its Last-Event-ID.
const cluster = require('node:cluster')
const http = require('node:http')
const os = require('node:os')
const { createHub } = require('native-sse')

const workers = Number(process.env.WORKERS ?? os.availableParallelism())

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM')
  })
} else {
  const hub = createHub({
    history: true,
    redis: { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: 'cluster-example' }
  })
  hub.on('backend', ({ state, detail }) => console.log(`worker ${process.pid}: Redis ${state} (${detail})`))

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (req.method === 'GET' && url.pathname === '/events') {
      const client = hub.attach(req, res, { channels: url.searchParams.getAll('channel') })
      client.send({ event: 'hello', data: { worker: process.pid } })
    } else if (req.method === 'POST' && url.pathname === '/publish') {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk) => { body += chunk })
      req.on('end', () => {
        const channel = url.searchParams.get('channel')
        const message = { event: 'note', data: { text: body, from: process.pid } }
        if (channel === null) hub.broadcast(message)
        else hub.publish(channel, message)
        res.writeHead(202).end()
      })
    } else {
      res.writeHead(404).end()
    }
  })

  process.on('SIGTERM', async () => {
    server.close()
    await hub.close()
    process.exit(0)
  })

  // Serve once the hub is connected and has loaded the history Redis keeps.
  hub.ready().then(() => {
    server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
      console.log(`worker ${process.pid} listening on http://127.0.0.1:${server.address().port}/events`)
    })
  })
}
