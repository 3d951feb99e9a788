'use strict'

// A raw HTTP/2 stream and its request headers, as `server.on('stream', (stream, headers))`
// gives them. Always the Node transport: the stream is one of many on Node's session.

const { writeStreamHead } = require('../head')
const { NodeSink, errorSourcesOf, http1SocketOf, tcpFdOf } = require('../node-transport')
const { alreadyAttachedError, headersSentError, isEventStreamHead } = require('./checks')

/** Whether `value` is a raw HTTP/2 stream (`server.on('stream', (stream, headers) => ...)`). */
function isHttp2Stream (value) {
  return value !== null && typeof value === 'object' && typeof value.respond === 'function' &&
    typeof value.pushAllowed === 'boolean'
}

class Http2StreamRequest {
  #stream
  #headers

  constructor (stream, headers) {
    this.#stream = stream
    this.#headers = headers
  }

  get response () {
    return this.#stream
  }

  /** The server whose accept queue attach() sets: the one that accepted the session's socket. */
  get server () {
    return this.#stream.session?.socket?.server ?? null
  }

  get method () {
    return this.#headers[':method']
  }

  get url () {
    return this.#headers[':path']
  }

  header (name) {
    return this.#headers[name]
  }

  peer () {
    const socket = this.#stream.session?.socket
    return { remoteAddress: socket?.remoteAddress ?? null, remotePort: socket?.remotePort ?? null }
  }

  unusable (attached) {
    const stream = this.#stream
    if (attached.has(stream)) return alreadyAttachedError()
    if (!stream.headersSent) return null
    const sent = stream.sentHeaders ?? {}
    return isEventStreamHead(sent[':status'], sent['content-type']) ? null : headersSentError(sent[':status'], sent['content-type'])
  }

  nativeUnavailable () {
    return 'a raw HTTP/2 stream is multiplexed by Node'
  }

  departed () {
    return this.#stream.destroyed || this.#stream.closed ? 'its HTTP/2 stream is closed' : null
  }

  /** HTTP/2 frames the body itself: never chunked. */
  writeHead (_native, gzip) {
    writeStreamHead(this.#stream, gzip)
    return false
  }

  headFailed () {
    if (this.#stream.headersSent) this.#stream.destroy()
  }

  refuse ({ status, headers, body }) {
    const stream = this.#stream
    if (!stream.headersSent) {
      stream.respond({ ':status': status, ...headers })
      stream.end(body)
    } else {
      stream.close()
    }
  }

  endHead () {
    this.#stream.end()
  }

  relaySink (native, id) {
    const stream = this.#stream
    return new NodeSink(native, id, stream, errorSourcesOf(stream, null, true), http1SocketOf(stream, null, true))
  }

  startRelay (native, id) {
    native.startNode(id, tcpFdOf(this.#stream, null, true))
  }
}

module.exports = { Http2StreamRequest, isHttp2Stream }
