import type { FastifyPluginAsync } from 'fastify'
import type { AttachOptions, Client, CloseOptions, Hub, HubOptions } from './index'

declare module 'fastify' {
  interface FastifyInstance {
    /** The plugin's hub: `fastify.sse.broadcast(...)`, `fastify.sse.publish(...)`. */
    sse: Hub
  }
  interface FastifyReply {
    /**
     * Attaches the response to the hub as an event stream, then hijacks the reply. A refused
     * client (hub or channel full, hub closing) was answered `503` with `Retry-After`: test
     * `client.refused`. When attach throws, nothing was written and the error carries
     * `statusCode` (500), so Fastify's error handling answers the request.
     */
    sse(options?: AttachOptions): Client
  }
}

type FastifyNativeSse = FastifyPluginAsync<nativeSse.NativeSseOptions>

/**
 * `fastify.register(nativeSse, hubOptions)`: decorates `fastify.sse` (the hub) and
 * `reply.sse(options)`, and closes the hub in a `preClose` hook.
 */
declare function nativeSse(...params: Parameters<FastifyNativeSse>): ReturnType<FastifyNativeSse>

declare namespace nativeSse {
  /**
   * The hub options of `createHub()`, and `close`: the options of the staged
   * `hub.close(options)` that `fastify.close()` runs (default: the plain close).
   */
  export type NativeSseOptions = HubOptions & { close?: CloseOptions }
  export const nativeSse: FastifyNativeSse
  export { nativeSse as default }
}

export = nativeSse
