'use strict'

// Fastify plugin: `fastify.register(require('native-sse/fastify'), hubOptions)`.
// Decorates the instance with the hub (`fastify.sse`) and replies with `reply.sse(options)`,
// which hijacks the reply (Fastify stops managing the response) and attaches it. A preClose
// hook closes the hub, so `fastify.close()` ends every stream cleanly and then resolves.

const fp = require('fastify-plugin')
const { Hub } = require('./hub')

// Keys Fastify itself reads from register() options; they are not hub options.
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

async function nativeSse (fastify, options) {
  const hubOptions = {}
  for (const key in options) if (!FASTIFY_REGISTER_KEYS.has(key)) hubOptions[key] = options[key]
  const hub = new Hub(hubOptions)

  fastify.decorate('sse', hub)
  fastify.decorateReply('sse', function sse (attachOptions) {
    this.hijack()
    return hub.attach(this.request.raw, this.raw, attachOptions)
  })
  fastify.addHook('preClose', async () => {
    await hub.close()
  })
}

module.exports = fp(nativeSse, { fastify: '5.x', name: 'native-sse' })
module.exports.default = module.exports
module.exports.nativeSse = module.exports
