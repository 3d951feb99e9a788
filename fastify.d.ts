import type { FastifyPluginAsync } from 'fastify'
import type { AttachOptions, Client, Hub, HubOptions } from './index'

declare module 'fastify' {
  interface FastifyInstance {
    /** The plugin's hub: `fastify.sse.broadcast(...)`, `fastify.sse.publish(...)`. */
    sse: Hub
  }
  interface FastifyReply {
    /**
     * Attaches the response to the hub as an event stream, then hijacks the reply. When attach
     * throws, nothing was written and the error carries `statusCode` (503 for a closed hub, with
     * `Retry-After`; 500 otherwise), so Fastify's error handling answers the request.
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
  /** Plugin options are the hub options of `createHub()`. */
  export type NativeSseOptions = HubOptions
  export const nativeSse: FastifyNativeSse
  export { nativeSse as default }
}

export = nativeSse
