'use strict'

// A Hono context (`c`) on Node: @hono/node-server hands the app Node's own req and res
// (`c.env.incoming`, `c.env.outgoing`). `response(c)` then serves the request as attach()
// would, natively on plain HTTP/1.x, instead of relaying a Response body through JS. The
// adapter is answered with a Response it knows to leave alone (`x-hono-already-sent`), and
// the head goes out on the next turn, with the headers the app's middleware set on the
// context's final Response (CORS, request ids), as a streamed Response would have carried.

const { validateHeaderName, validateHeaderValue } = require('node:http')
const { NodeResponseRequest } = require('./node-response')
const { runOnClient } = require('./fetch')

/** The adapter's own mark for "the response was written already, send nothing". */
const ALREADY_SENT = 'x-hono-already-sent'
/** Headers of the context's Response that are not the stream's to send. */
const NOT_SENT = new Set([ALREADY_SENT, 'content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'set-cookie'])

/** Whether `value` is a Hono context: a `req.raw` Request and an `env`. */
function isHonoContext (value) {
  const raw = value?.req?.raw
  return raw != null && typeof raw === 'object' && typeof raw.url === 'string' && 'env' in value
}

/**
 * The IncomingMessage and ServerResponse under a Hono context on Node, with nothing written
 * yet; else null (Bun, Deno, Workers: there is no Node response to take).
 */
function nodePairOf (context) {
  const req = context.env?.incoming
  const res = context.env?.outgoing
  if (req == null || res == null || typeof res.writeHead !== 'function' || typeof req.headers !== 'object') return null
  if (res.req !== req || res.headersSent || res.writableEnded) return null
  // Hono sets c.res from what the handler returned only when middleware ran (compose); a
  // lone handler's answer goes straight to the adapter, and c.res would be a blank Response.
  return { req, res, final: () => context.finalized === true ? context.res : null }
}

/** Whether `response` is the one response() answered with, as the adapter got it (Hono may
 *  have copied it, with the middleware's headers): not a middleware's own answer. */
function isOurs (response) {
  return response != null && response.status === 200 && response.body === null && response.headers.get(ALREADY_SENT) !== null
}

/** The runtime's own Response class: the adapter's stand-in would answer what it is given. */
function baseResponse () {
  let Response = globalThis.Response
  while (typeof Object.getPrototypeOf(Response) === 'function' && Object.getPrototypeOf(Response) !== Function.prototype) {
    Response = Object.getPrototypeOf(Response)
  }
  return Response
}

/**
 * Has `res` ignore the adapter's answer to the Response marked already sent. The adapter skips
 * that Response only when it reaches it as the runtime's own Response; when Hono copied it
 * into the adapter's lightweight Response (as it does once middleware touched `c.res`), the
 * adapter writes its head and ends it, as for any other. That head carries the mark, and no
 * head of the hub's does.
 */
function leaveAlone (res, final, overridden) {
  const writeHead = res.writeHead
  const end = res.end
  let ignoringEnd = false
  res.writeHead = function (status, ...rest) {
    const headers = rest[rest.length - 1]
    const marked = headers !== null && typeof headers === 'object' && !Array.isArray(headers) && ALREADY_SENT in headers
    // A middleware that answered in our place (a 401 after next()) carries the mark too, as
    // Hono merges headers into what replaces c.res: its head goes out, and the stream does not.
    // One that did so only after an await finds the stream's head out already: that answer
    // cannot be sent any more, and the stream it denied is cut.
    if (marked) {
      const ours = isOurs(final())
      if (ours || this._headerSent === true) {
        if (!ours) overridden()
        ignoringEnd = true
        return this
      }
    }
    return writeHead.call(this, status, ...rest)
  }
  res.end = function (...args) {
    if (!ignoringEnd) return end.apply(this, args)
    ignoringEnd = false
    // The adapter waits for the end's callback, if it gave one.
    const callback = args.find((arg) => typeof arg === 'function')
    if (callback) process.nextTick(callback)
    return this
  }
}

class NodeServerRequest {
  #res
  #node
  /** The application's `headers` option (a Headers), under the adapter's Response's. */
  #headers
  #heartbeatMs
  /** The Response handed to the adapter, once made. */
  #answer = null
  #client = null
  #native = false
  /** Whether its stream is gzip (head.js encodingHeaders). */
  #gzip
  /** Ends the stream at once (a middleware answered in its place after it started). */
  #cut = () => {}

  /** The Response the adapter finally got (the context's, with the middleware's headers). */
  #final

  constructor ({ req, res, final }, headers, heartbeatMs) {
    this.#res = res
    this.#final = final
    this.#headers = new Headers(headers)
    // What Node would refuse once the head is written throws here, while the caller can see it.
    for (const [name, value] of this.#headers) {
      validateHeaderName(name)
      validateHeaderValue(name, value)
    }
    leaveAlone(res, () => this.#finalResponse(), () => this.#cut())
    this.#node = new NodeResponseRequest(req, res)
    this.#heartbeatMs = heartbeatMs
  }

  get response () { return this.#res }
  get server () { return this.#node.server }
  get method () { return this.#node.method }
  get url () { return this.#node.url }
  header (name) { return this.#node.header(name) }
  peer () { return this.#node.peer() }
  unusable (attached) { return this.#node.unusable(attached) }
  nativeUnavailable () { return this.#node.nativeUnavailable() }
  departed () { return this.#node.departed() }

  /** The head waits for the next turn (see #later). */
  writeHead (native, gzip) {
    this.#native = native
    this.#gzip = gzip
    return undefined
  }

  headFailed () {}

  refuse (answer) {
    this.#node.refuse(answer)
  }

  endHead () {
    this.#node.endHead()
  }

  startNative (native, id, _chunked, writeTimeoutMs, closed) {
    native.willStart(id)
    this.#cut = () => native.closeClient(id, 'error')
    this.#later(native, id, closed, (chunked) => this.#node.startNative(native, id, chunked, writeTimeoutMs, closed))
  }

  relaySink (native, id) {
    return this.#node.relaySink(native, id)
  }

  startRelay (native, id) {
    native.willStart(id)
    this.#cut = () => native.closeClient(id, 'error')
    this.#later(native, id, (reason) => native.closeClient(id, reason), () => this.#node.startRelay(native, id))
  }

  /**
   * Writes the head and starts the transport on the next turn: the adapter has the Response
   * by then, and the app's middleware set its headers on it. A client closed meanwhile
   * (hub.close()) gets the head and a clean end.
   */
  #later (native, id, closed, start) {
    setImmediate(() => {
      // Never answered (onClient threw): the adapter answers the error, the client is gone.
      if (this.#answer === null) return
      if (this.#node.departed() !== null) return closed('client')
      // A middleware answered in our place: that answer went out, the stream does not.
      const final = this.#finalResponse()
      if (!isOurs(final)) return closed('error')
      const res = this.#res
      let chunked
      try {
        const headers = final.headers
        for (const [name, value] of headers) {
          if (!NOT_SENT.has(name)) res.setHeader(name, value)
        }
        for (const [name, value] of this.#headers) {
          if (name !== 'set-cookie') res.setHeader(name, value)
        }
        // Each cookie its own line: the middleware's, then the app's own.
        const cookies = [...(headers.getSetCookie?.() ?? []), ...this.#headers.getSetCookie()]
        if (cookies.length > 0) res.setHeader('set-cookie', cookies)
        if (this.#client?.closed) {
          this.#node.writeHead(false)
          res.end()
          return
        }
        if (this.#heartbeatMs !== undefined) native.setHeartbeat(id, this.#heartbeatMs)
        chunked = this.#node.writeHead(this.#native, this.#gzip)
      } catch (error) {
        // A header Node refuses (the app's middleware set it on the Response): there is no
        // caller left to throw to, so the client goes as one that failed, and it is said.
        process.emitWarning(`native-sse: the event stream's head was refused, the client was cut: ${error.message}`, { code: error.code })
        res.destroy()
        return closed('error')
      }
      start(chunked)
    })
  }

  /** The Response the adapter got: the context's once middleware ran, else ours. */
  #finalResponse () {
    return this.#final() ?? this.#answer
  }

  /** As FetchRequest's: `onClient(client)` runs, then the adapter gets its Response. */
  answerWith (client, onClient, closeClient) {
    this.#client = client
    runOnClient(client, onClient, closeClient)
    return this.answer()
  }

  answer () {
    if (this.#answer === null) {
      const Response = baseResponse()
      this.#answer = new Response(null, { headers: { [ALREADY_SENT]: 'true' } })
    }
    return this.#answer
  }
}

module.exports = { NodeServerRequest, nodePairOf, isHonoContext }
