'use strict'

// Fastify plugin: `fastify.register(require('native-sse/fastify'), { ...hubOptions, close })`.
// Decorates the instance with the hub (`fastify.sse`) and replies with `reply.sse(options)`,
// which attaches the response and then hijacks the reply (Fastify stops managing it). A
// preClose hook closes the hub (staged with the `close` option, as hub.close(options) takes
// it), so `fastify.close()` ends every stream cleanly and resolves.
//
// The listening socket's accept queue is raised as the server starts listening (onListen),
// not at the first stream as under a bare attach(): a server restarted by a deploy starts into
// the wave of every client reconnecting, and handshakes beyond Node's 511 would wait for
// their SYN retry (docs/OPERATIONS.md, "Reconnect waves").
//
// The reply is hijacked only once attach() succeeded: attach writes nothing before every
// check has passed, so when it throws, the error carries an HTTP status and Fastify's error
// handling still answers the request (503 for a closed hub, 500 otherwise) instead of leaving
// it hanging on a hijacked reply.

const fp = require('fastify-plugin')
const { Hub } = require('./hub')
const { attachFailureStatus } = require('./errors')
const { raiseAcceptQueue } = require('./accept-queue')

// Keys Fastify itself reads from register() options; they are not hub options.
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * The servers `fastify` listens with: its own, and those it adds for a host that resolves to
 * several addresses (its default, 'localhost': 127.0.0.1 and ::1), which Fastify keeps under
 * a symbol of its own. Looked up, not assumed: without it, the others keep Node's queue until
 * their first stream.
 */
function listeningServers (fastify) {
  const servers = [fastify.server]
  for (let scope = fastify; scope !== null; scope = Object.getPrototypeOf(scope)) {
    const bindings = Object.getOwnPropertySymbols(scope).find((symbol) => symbol.description === 'fastify.serverBindings')
    if (bindings === undefined) continue
    if (Array.isArray(scope[bindings])) servers.push(...scope[bindings])
    break
  }
  return servers
}

async function nativeSse (fastify, options) {
  const hubOptions = {}
  for (const key in options) if (!FASTIFY_REGISTER_KEYS.has(key) && key !== 'close') hubOptions[key] = options[key]
  const hub = new Hub(hubOptions)
  // Checked now, as the shutdown will take it (ranges and the final event's fields too), so a
  // bad one fails the registration rather than fastify.close(), which would leave the hub and
  // its streams open.
  const close = options.close
  try {
    hub._checkClose(close)
  } catch (error) {
    // The hub was made for this registration only: its runtime must not outlive it.
    hub.close()
    throw error
  }

  fastify.decorate('sse', hub)
  fastify.decorateReply('sse', function sse (attachOptions) {
    let client
    try {
      client = hub._attach(this.request.raw, this.raw, attachOptions, this.request)
    } catch (error) {
      if (this.raw.headersSent) throw error
      error.statusCode = attachFailureStatus(error)
      if (error.statusCode === 503) this.header('retry-after', String(hub.retryAfterSeconds))
      throw error
    }
    // A refused client was answered 503 by attach itself; either way the reply is done.
    this.hijack()
    return client
  })
  fastify.addHook('onListen', function raiseAcceptQueueOnListen (done) {
    const backlog = hub._listenBacklog
    if (backlog !== null) for (const server of listeningServers(fastify)) raiseAcceptQueue(server, backlog)
    done()
  })
  fastify.addHook('preClose', async () => {
    await hub.close(close)
  })
}

module.exports = fp(nativeSse, { fastify: '5.x', name: 'native-sse' })
module.exports.default = module.exports
module.exports.nativeSse = module.exports
