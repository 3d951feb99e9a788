'use strict'

// A WHATWG `Request`, as Hono, Next.js route handlers, Bun.serve and Deno.serve give it. There
// is no socket or `res` to take over: the answer is a `Response` whose body the hub feeds
// (fetch-transport.js), made here once the request was accepted or refused.

const { StreamSink, isFetchRequest, streamHeaders } = require('../fetch-transport')
const { encodingHeaders } = require('../head')

/**
 * Deno.serve prints a warning on the first touch of `request.signal` (its abort on a response
 * that completed is being changed). Under Deno the body's cancel says that the peer left,
 * before or after the Response was returned, so the signal is not needed there.
 */
const SIGNAL_WARNS = typeof globalThis.Deno?.serve === 'function'

/**
 * Runs response()'s `onClient(client)`, when given. A throw there closes the client
 * (`closeClient(id)`), since the framework answers the error and the stream is never read,
 * and is thrown on.
 */
function runOnClient (client, onClient, closeClient) {
  if (onClient === undefined) return
  try {
    onClient(client)
  } catch (error) {
    if (client.refusal === null) closeClient(client.id)
    throw error
  }
}

class FetchRequest {
  #request
  /** The stream's head: made here, so that bad application headers throw before anything
   *  registers. */
  #head
  /** The Response to answer with, once made (a refusal, or the stream's). */
  #answer = null
  /** The body's own heartbeat period, or undefined for the hub's. */
  #heartbeatMs

  /**
   * @param headers the application's own headers for the stream (CORS, ids)
   * @param heartbeatMs the body's own heartbeat period (fetch-transport.js fetchHeartbeatMs)
   */
  constructor (request, headers, heartbeatMs) {
    this.#request = request
    this.#head = streamHeaders(headers)
    this.#heartbeatMs = heartbeatMs
  }

  /** Nothing to mark: each call of response() makes its own Response. */
  get response () {
    return null
  }

  /** The server whose accept queue attach() sets: none, no listening socket of ours: the runtime's server accepts. */
  get server () {
    return null
  }

  get method () {
    return this.#request.method
  }

  get url () {
    return this.#request.url
  }

  header (name) {
    return this.#request.headers.get(name) ?? undefined
  }

  /** A Fetch request does not say who sent it. */
  peer () {
    return { remoteAddress: null, remotePort: null }
  }

  unusable () {
    return null
  }

  nativeUnavailable () {
    return 'a Fetch API request has no socket to hand over'
  }

  /** Aborted before it could be answered: its peer left. */
  departed () {
    return this.#signal()?.aborted ? 'its request was aborted' : null
  }

  /** The head is the Response's: nothing is written before it is returned. */
  writeHead (_native, gzip) {
    for (const [name, value] of Object.entries(encodingHeaders(gzip, this.#head.get('vary')))) this.#head.set(name, value)
    return false
  }

  headFailed () {}

  refuse ({ status, headers, body }) {
    this.#answer = new Response(body, { status, headers })
  }

  /** A HEAD request gets the head alone: the Response has no body. */
  endHead () {}

  /** The body's sink; the Response carries its stream. */
  relaySink (native, id) {
    const sink = new StreamSink(native, id, this.#signal())
    this.#answer = new Response(sink.stream, { status: 200, headers: this.#head })
    return sink
  }

  startRelay (native, id) {
    native.startFetch(id, this.#heartbeatMs)
  }

  /** The request's AbortSignal where the runtime's is quiet to use, else undefined. */
  #signal () {
    return SIGNAL_WARNS ? undefined : this.#request.signal ?? undefined
  }

  /** What to answer with once `onClient(client)` (when given) ran (see runOnClient). */
  answerWith (client, onClient, closeClient) {
    runOnClient(client, onClient, closeClient)
    return this.answer()
  }

  /** What to answer with: the refusal, the stream, or (HEAD, a peer gone) the head alone. */
  answer () {
    return this.#answer ?? new Response(null, { status: 200, headers: this.#head })
  }
}

module.exports = { FetchRequest, isFetchRequest, runOnClient }
