// Fastify 5: the plugin decorates fastify.sse (the hub) and reply.sse().
const Fastify = require('fastify')
const nativeSse = require('native-sse/fastify')

const app = Fastify()
app.register(nativeSse, { heartbeatMs: 15_000 })

app.get('/events', (request, reply) => {
  const client = reply.sse()
  client.send({ event: 'hello', data: { id: client.id } })
})

app.ready().then(() => {
  setInterval(() => app.sse.broadcast({ event: 'tick', data: Date.now() }), 1000).unref()
})

app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' }).then((address) => {
  console.log(`listening on ${address}/events`)
})
