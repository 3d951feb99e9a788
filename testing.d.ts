import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Server } from 'node:net'

/**
 * `native-sse/testing`: an in-process client for SSE routes, for tests. `openStream(target)`
 * opens one stream and gives what arrives as parsed events (a spec-conformant parser of its
 * own: no dependency). It needs no test framework: node:test, Jest, Vitest, Mocha, or none.
 * Node-style targets are served on `127.0.0.1`, port 0, by a server it makes and closes with
 * the stream (the caller never picks a port); Fetch handlers are called with a real `Request`
 * and their `Response` body is read, with no socket at all. Nothing in it sleeps: timeouts
 * only bound waits that should succeed.
 *
 * ```js
 * const { openStream } = require('native-sse/testing')
 * const stream = await openStream(app, { path: '/events' })
 * hub.broadcast({ event: 'price', data: { price: 1 } })
 * const price = await stream.waitFor('price') // { event: 'price', data: '{"price":1}', id: '' }
 * await stream.close()
 * ```
 */

/** One dispatched event, as an `EventSource` would see it. */
export interface TestEvent {
  /** Its type: the `event:` field, `'message'` when it has none. */
  event: string
  /** Its data as text: the `data:` lines joined with `\n` (JSON stays a string to parse). */
  data: string
  /** The last event ID when it was dispatched (`MessageEvent.lastEventId`): its own `id:`, else the one before, `''` before any. */
  id: string
}

/** How a stream ended: `closed`'s value. */
export type StreamEnd =
  /** The server ended the body (its last chunk, or all its `Content-Length`), or closed the connection (FIN) of a body framed by the connection. */
  | 'end'
  /** The connection failed: reset (RST), a socket error, a FIN that cut a chunked or `Content-Length` body short (a stream cut, not ended), or a Fetch body that errored. */
  | 'reset'
  /** `close()` closed it first. */
  | 'client'

/** Options of `openStream()`. */
export interface OpenStreamOptions {
  /** The request's path and query. Default `'/'`. */
  path?: string
  /** The request's method. Default `'GET'`. */
  method?: string
  /** Request headers, added to `Accept: text/event-stream` (which they may override). Default: none. */
  headers?: Record<string, string | number>
  /** Sent as the `Last-Event-ID` header, and the parser's starting last event ID. Default: none. */
  lastEventId?: string | number
  /**
   * The bound, in ms, of every wait that has none of its own: the response head, and the
   * default of `next()` and `waitFor()`; also how long `close()` waits for the server's FIN
   * before destroying the socket. Default `2000`.
   */
  timeoutMs?: number
}

/** Options of `next()` and `waitFor()`. */
export interface WaitOptions {
  /** Reject after this many ms. Default: the stream's `timeoutMs` (`2000`). */
  timeoutMs?: number
}

/**
 * One open stream. `next()`, `waitFor()` and the async iterator share one read position: each
 * event is taken once; `events` keeps every event whatever was taken.
 */
export interface TestStream extends AsyncIterable<TestEvent> {
  /** The response's status code (`200`, or the `403`/`503` of a refusal, ...). */
  readonly status: number
  /** The response's headers, names lower-cased; repeated headers joined with `', '`. */
  readonly headers: Record<string, string>
  /** Every event received so far, in order. */
  readonly events: TestEvent[]
  /** Every comment received so far (the text after `:` and one space), heartbeats included. */
  readonly comments: string[]
  /** Every valid `retry:` value received so far, in ms. */
  readonly retries: number[]
  /**
   * The response body as text so far, de-chunked and decoded as UTF-8: a refusal's message
   * (`'event stream forbidden\n'`), or the stream as the parser read it. Not kept after `close()`.
   */
  readonly body: string
  /** The last event ID so far (what `reconnect()` sends as `Last-Event-ID`); `''` before any. */
  readonly lastEventId: string
  /** Whether the stream has ended (`closed` is resolved or about to be). */
  readonly ended: boolean
  /** Whether `pause()` is in effect. */
  readonly paused: boolean
  /**
   * Resolves once the stream ended and its server (if it made one) closed, with how it ended.
   * Never rejects.
   */
  readonly closed: Promise<StreamEnd>
  /**
   * The next event not yet taken. Rejects after `timeoutMs` (`"expected an event within 500
   * ms; got none"`) or when the stream ends first.
   */
  next(options?: WaitOptions): Promise<TestEvent>
  /**
   * The next event not yet taken whose type is `event` (or for which `predicate` is true);
   * the events before it are taken too. Rejects after `timeoutMs` naming what came instead
   * (`"expected event 'price' within 500 ms; got 'tick', 'tick'"`), or when the stream ends first.
   */
  waitFor(event: string | ((event: TestEvent) => boolean), options?: WaitOptions): Promise<TestEvent>
  /** Each event not yet taken, as it arrives, until the stream ends (no timeout: bound it yourself). */
  [Symbol.asyncIterator](): AsyncIterator<TestEvent>
  /**
   * Stops reading: on a socket nothing more is read, so the server's writes back up as for a
   * slow client (`client.send()` returns false, `hub.stats().queuedBytes` grows); on a Fetch
   * body no more chunks are pulled. Nothing is parsed while paused.
   */
  pause(): void
  /** Reads again: what backed up is taken and parsed. */
  resume(): void
  /**
   * Closes the connection (FIN; for a Fetch handler the body is cancelled and the request's
   * signal aborted), which the hub sees as its client leaving (reason `'client'`); resolves once
   * closed, its server too. Events arriving after the call are not kept.
   */
  close(): Promise<void>
  /**
   * Closes this stream if still open, then opens a new one to the same target with the same
   * options and `Last-Event-ID` set to `lastEventId` (when not `''`); `options` override.
   */
  reconnect(options?: OpenStreamOptions): Promise<TestStream>
}

/** An object with a Fetch handler: a Hono app, an `export default { fetch }` of Bun or Deno. */
export interface FetchApp {
  fetch(request: Request, ...rest: any[]): Response | Promise<Response>
}

/** A Fastify instance: its routes are served once `ready()`. */
export interface FastifyLike {
  ready(): PromiseLike<unknown>
  server: Server
}

/**
 * Opens an event stream to `target` and resolves once the response head arrived, whatever its
 * status (a `403` or `503` resolves, with `closed` resolving `'end'` once its body ended).
 * `target` is an Express app or any `(req, res)` request listener, a `node:http` Server
 * (listening: connected to where it listens, left open; not listening: its `'request'` handlers
 * are served by a server of our own), a Fastify instance (awaits `ready()`), a Hono app or any
 * object with `fetch(request)`, or a Fetch handler `(request) => Response`. A function is taken
 * as a request listener when it has a `listen` method or two or more parameters, otherwise as
 * a Fetch handler: pass `{ fetch: handler }` for one of two parameters (a Next.js route
 * handler's `(request, context)`).
 * @throws {TypeError} when `target` is none of these.
 * @throws {Error} when no response head arrives within `timeoutMs`.
 */
export declare function openStream(
  target: ((req: IncomingMessage, res: ServerResponse) => unknown) | Server | FastifyLike | FetchApp,
  options?: OpenStreamOptions
): Promise<TestStream>
export declare function openStream(
  target: (request: Request) => Response | Promise<Response>,
  options?: OpenStreamOptions
): Promise<TestStream>

/** What `createParser()` calls. */
export interface ParserHandlers {
  /** Each dispatched event. */
  onEvent(event: TestEvent): void
  /** Each comment line: the text after `:` and one optional space. */
  onComment(comment: string): void
  /** Each valid `retry:` value, in ms. */
  onRetry(ms: number): void
}

/**
 * The event stream parser `openStream()` uses (WHATWG HTML 9.2.6): feed decoded text in any
 * chunking. `lastEventId` is the starting last event ID. Default `''`.
 */
export declare function createParser(handlers: ParserHandlers, lastEventId?: string): {
  feed(text: string): void
  lastEventId(): string
}
