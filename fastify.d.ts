import type { FastifyPluginAsync } from 'fastify'
import type { AnyEvents, AttachOptions, Client, CloseOptions, Hub, HubOptions } from './index'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The plugin's hub: `fastify.sse.broadcast(...)`, `fastify.sse.publish(...)`, typed by the
     * event map declared in `nativeSse.Events` (any event, any data until one is declared).
     */
    sse: Hub<nativeSse.PluginEvents>
  }
  interface FastifyReply {
    /**
     * Attaches the response to the hub as an event stream, then hijacks the reply. A refused
     * client (hub or channel full, hub closing) was answered `503` with `Retry-After`: test
     * `client.refusal`. When attach throws, nothing was written and the error carries
     * `statusCode` (500; 503 with `Retry-After` for a closed hub), so Fastify's error handling
     * answers the request.
     * @throws {TypeError} `ERR_SSE_UNKNOWN_OPTION`, `ERR_SSE_INVALID_OPTION`, `ERR_SSE_INVALID_CHANNEL` for bad options.
     * @throws {RangeError} `ERR_SSE_TOO_MANY_CHANNELS` past `maxChannelsPerClient`.
     * @throws {Error} `ERR_SSE_HEADERS_SENT`, `ERR_SSE_INVALID_STATUS`, `ERR_SSE_ALREADY_ATTACHED` for a reply that cannot become a stream.
     */
    sse(options?: AttachOptions): Client<nativeSse.PluginEvents>
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
  /**
   * The plugin's event map, empty until you declare yours, which types `fastify.sse` and
   * `reply.sse()`:
   *
   * ```ts
   * declare module 'native-sse/fastify' {
   *   interface Events { price: { symbol: string; price: number } }
   * }
   * ```
   */
  // eslint-disable-next-line @typescript-eslint/no-empty-interface
  export interface Events {}
  /** `Events` once declared, else any event with any data. */
  export type PluginEvents = keyof Events extends never ? AnyEvents : Events
  export const nativeSse: FastifyNativeSse
  export { nativeSse as default }
}

export = nativeSse
