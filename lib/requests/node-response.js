'use strict'

// A request as Node's http and http2 compatibility APIs give it: `(req, res)`. HTTP/1.x over
// plain TCP can hand its socket to Rust (the native transport); TLS, HTTP/2 and sockets with
// no usable fd are written through Node (the Node transport).

const { sseError } = require('../errors')
const { writeResponseHead } = require('../head')
const { nativeUnavailableReason, handOff } = require('../native-transport')
const { NodeSink, errorSourcesOf, http1SocketOf, tcpFdOf } = require('../node-transport')
const { alreadyAttachedError, headersSentError, isEventStreamHead } = require('./checks')

/** The content type of a head already sent. Headers given to writeHead() are not kept where
 *  getHeader() finds them, only in the head Node wrote (HTTP/1), so that is read first. */
function sentContentType (res) {
  const head = typeof res._header === 'string' ? /\r\ncontent-type:[ \t]*([^\r\n]*)/i.exec(res._header) : null
  return head !== null ? head[1] : res.getHeader('content-type')
}

class NodeResponseRequest {
  #req
  #res

  constructor (req, res) {
    this.#req = req
    this.#res = res
  }

  /** What `attach` marks as attached: a second attach would write a second stream into it. */
  get response () {
    return this.#res
  }

  /** The server whose accept queue attach() sets: the one that accepted the request's socket. */
  get server () {
    return this.#req.socket?.server ?? null
  }

  get method () {
    return this.#req.method
  }

  get url () {
    return this.#req.url
  }

  header (name) {
    return this.#req.headers[name]
  }

  /** The peer's address and port, as the lifecycle events and the Client report them. */
  peer () {
    const socket = this.#req.socket
    return { remoteAddress: socket?.remoteAddress ?? null, remotePort: socket?.remotePort ?? null }
  }

  /**
   * The error for a response that cannot become an event stream as it stands, or null: ended,
   * attached before, a status other than 200 (every EventSource treats any other as fatal), or
   * a head already sent that is not an event stream's. A head the application wrote itself as
   * `200 text/event-stream` is taken over as it is.
   */
  unusable (attached) {
    const res = this.#res
    if (attached.has(res)) return alreadyAttachedError()
    if (res.writableEnded) {
      return sseError(Error, 'ERR_SSE_HEADERS_SENT', 'attach(): the response has ended (res.end() or res.send() was called); attach instead of answering, not after')
    }
    if (res.headersSent) {
      const contentType = sentContentType(res)
      return isEventStreamHead(res.statusCode, contentType) ? null : headersSentError(res.statusCode, contentType)
    }
    if (res.statusCode !== 200) {
      return sseError(Error, 'ERR_SSE_INVALID_STATUS',
        `attach(): res.statusCode is ${res.statusCode}, but an event stream is answered 200 (an EventSource gives up on any other status). ` +
        'To turn the client away, answer it yourself instead of attaching, e.g. res.status(401).end()')
    }
    return null
  }

  /** Why Rust cannot take this connection's socket, or null when it can. */
  nativeUnavailable () {
    return nativeUnavailableReason(this.#req, this.#res)
  }

  /**
   * Why the response can never carry a stream, or null while it can: its connection is gone, or
   * it has none (a request pipelined behind another response on one connection, which for an
   * event stream never ends: typically the second of two requests sent at once, whose socket the
   * first one's handoff then closes). Such a client already left.
   */
  departed () {
    const req = this.#req
    const res = this.#res
    if (res.stream !== undefined) return res.stream.destroyed ? 'its HTTP/2 stream is closed' : null
    if (!res.socket) return 'the response has no connection (pipelined behind another response)'
    if (res.socket.destroyed || (req.socket && req.socket.destroyed)) return 'its connection is closed'
    return null
  }

  /** Sends the event-stream head; returns whether Node frames the body as chunked. For the
   *  native transport (`native`) Node only renders it: the handoff sends it. `gzip`: see
   *  head.js encodingHeaders. */
  writeHead (native, gzip) {
    return writeResponseHead(this.#req, this.#res, !native, gzip)
  }

  /** Node refused the head: one already on the wire is cut, not left half-written. */
  headFailed () {
    if (this.#res.headersSent) this.#res.destroy()
  }

  /** Answers a refused request (503, or a cut when the head is out already). */
  refuse ({ status, headers, body }) {
    const res = this.#res
    if (!res.headersSent) {
      res.writeHead(status, headers)
      res.end(body)
    } else {
      res.destroy()
    }
  }

  /** A HEAD request gets the head alone. */
  endHead () {
    this.#res.end()
  }

  /** Starts the native transport; `closed(reason)` when the handoff never completes. */
  startNative (native, id, chunked, writeTimeoutMs, closed) {
    handOff(native, id, this.#req.socket, this.#res, chunked, writeTimeoutMs, closed)
  }

  /** The Node transport's sink for this response. */
  relaySink (native, id) {
    const req = this.#req
    const res = this.#res
    return new NodeSink(native, id, res, errorSourcesOf(req, res, false), http1SocketOf(req, res, false))
  }

  /** Starts the Node transport, with the fd Rust watches the peer's progress on. */
  startRelay (native, id) {
    native.startNode(id, tcpFdOf(this.#req, this.#res, false))
  }
}

module.exports = { NodeResponseRequest }
