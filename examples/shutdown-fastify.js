// Fastify 5: fastify.close() runs the staged close given as the plugin's `close` option.
const Fastify = require('fastify')
const nativeSse = require('native-sse/fastify')

const app = Fastify()
app.register(nativeSse, { close: { spreadMs: 10_000, finalEvent: { event: 'shutdown', data: '' } } })

app.get('/events', (request, reply) => {
  const client = reply.sse()
  client.send({ event: 'hello', data: { id: client.id } })
})

process.once('SIGTERM', () => app.close())

app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' }).then((address) => {
  console.log(`listening on ${address}/events`)
})
