'use strict'

// The `npm start` demo under Fastify 5: the same page and figures (examples/demo), with the
// hub made by the native-sse Fastify plugin and streams attached through reply.sse().
// `node examples/fastify-demo.js`, then open the printed URL.

const Fastify = require('fastify')
const nativeSse = require('native-sse/fastify')
const { createDemo, allowCrossOrigin, HUB_OPTIONS } = require('./demo/app')

async function main () {
  const app = Fastify()
  await app.register(nativeSse, HUB_OPTIONS)
  const demo = createDemo(app.sse)

  app.get('/', (request, reply) => reply.type('text/html').send(demo.page))
  app.get('/events', (request, reply) => {
    allowCrossOrigin(reply.raw)
    demo.welcome(reply.sse())
  })
  app.post('/drop/:id', (request, reply) => reply.code(demo.drop(request.params.id) ? 204 : 404).send())
  // The plugin's own preClose hook closes the hub; this stops the demo's timers first.
  app.addHook('preClose', () => demo.stop())

  const host = process.env.HOST || '127.0.0.1'
  const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT)
  await app.listen({ port, host })
  const address = app.server.address()
  console.log(`native-sse demo (Fastify) on http://${address.address}:${address.port}/`)

  const shutdown = () => app.close().then(() => process.exit(0))
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
