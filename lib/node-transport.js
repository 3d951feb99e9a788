'use strict'

// The Node transport: for responses whose socket cannot be handed off (TLS, HTTP/2, no fd,
// Windows) or when `transport: 'node'` is asked for. Rust still owns the queue, its bounds and
// overflow policy, heartbeats and the write deadline; it passes ready-made batches here, one
// at a time, each acknowledged as write() accepts it, or at 'drain' when it returns false
// (relay-credit.js). So a client that stops reading backs up into the
// same bounded queue, with the same 'slow' and 'drop-oldest' behaviour, as on the native
// transport.

const { Credit } = require('./relay-credit')

/** Errors that say the peer left (it reset the connection), as on the native transport
 *  (`classify` in crates/core/src/writer.rs): it has gone like one that sent FIN. */
const PEER_LEFT = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE'])

/** The close reason of a response that ended with `error`. ETIMEDOUT is the kernel giving up
 *  on a peer that acknowledged nothing for the write timeout (TCP_USER_TIMEOUT, set by the
 *  hub): the deadline's doing. Anything else failed on our side (or Node's parser refused
 *  what the peer sent). */
function closeReasonOf (error) {
  const code = error && error.code
  if (PEER_LEFT.has(code)) return 'client'
  return code === 'ETIMEDOUT' ? 'timeout' : 'error'
}

/** Writes one client's batches to its response and reports how the response ended. */
class NodeSink {
  #native
  #id
  #writable
  /** How the response ended, from its errors: 'client' when none came. */
  #reason = 'client'
  #onDrain = () => this.#acknowledge()
  #credit = new Credit(0)
  #onError = (error) => { this.#reason = closeReasonOf(error) }
  #onClose = () => this.#native.closeClient(this.#id, this.#reason)
  #errorSources
  #socket

  /**
   * @param writable the response (ServerResponse, Http2ServerResponse) or Http2Stream
   * @param errorSources emitters whose 'error' says how the response ended (the socket, the stream)
   * @param socket an HTTP/1 connection to close after the stream ends, as the native transport
   *   does; null on HTTP/2, where the session carries other streams
   */
  constructor (native, id, writable, errorSources, socket) {
    this.#native = native
    this.#id = id
    this.#writable = writable
    this.#errorSources = errorSources
    this.#socket = socket
    for (const source of errorSources) source.on('error', this.#onError)
    writable.on('close', this.#onClose)
  }

  /** True when the response closed before the sink could watch it. */
  get alreadyClosed () {
    return this.#writable.destroyed === true || this.#writable.closed === true
  }

  /**
   * Writes one batch. Returns what the relay acknowledges now (relay-credit.js): the bytes
   * taken when the response accepted it, else 0 and everything at its 'drain' (Rust hands
   * nothing more while this batch waits, so a refusal needs no word of its own).
   */
  write (bytes) {
    if (this.#writable.destroyed) return 0
    if (this.#writable.write(bytes)) return this.#credit.took(bytes.byteLength, true)
    this.#credit.took(bytes.byteLength, false)
    this.#writable.once('drain', this.#onDrain)
    return 0
  }

  end () {
    this.#writable.end()
    // The final chunk is queued on the socket before its FIN, so the client sees a complete body.
    if (this.#socket !== null) this.#socket.end()
  }

  destroy () {
    this.#writable.destroy()
  }

  /**
   * Stops listening once the client is gone, so nothing here outlives it. A response still
   * open at this point was neither ended nor destroyed by its writer (it stopped without
   * saying how, e.g. a panic): it is destroyed, as the native transport's socket would be.
   */
  detach () {
    for (const source of this.#errorSources) source.removeListener('error', this.#onError)
    this.#writable.removeListener('close', this.#onClose)
    this.#writable.removeListener('drain', this.#onDrain)
    if (!this.#writable.writableEnded && !this.#writable.destroyed) this.#writable.destroy()
  }

  #acknowledge () {
    this.#native.relayAcknowledged(this.#id, this.#credit.all())
  }
}

/**
 * The fd of the TCP connection under a response (for HTTP/2, the session's), or null where
 * there is none (Windows, a socket not backed by TCP). Rust only reads the kernel's count of
 * bytes the peer has not acknowledged from it, to tell a slow reader from a stalled one.
 */
function tcpFdOf (req, res, isRawStream) {
  const stream = isRawStream ? req : res.stream
  const socket = stream ? stream.session && stream.session.socket : req.socket
  const fd = socket && socket._handle ? socket._handle.fd : undefined
  return typeof fd === 'number' && fd >= 0 ? fd : null
}

/** The HTTP/1 socket under a response, or null for HTTP/2. */
function http1SocketOf (req, res, isRawStream) {
  if (isRawStream || res.stream || req.httpVersionMajor !== 1) return null
  return req.socket || null
}

/** The emitters whose errors say why a Node-transport client ended (closeReasonOf). */
function errorSourcesOf (req, res, isRawStream) {
  if (isRawStream) return [req] // the Http2Stream itself
  if (res.stream) return [res.stream] // Http2ServerResponse
  const sources = [res]
  if (req.socket) sources.push(req.socket)
  return sources
}

module.exports = { NodeSink, errorSourcesOf, http1SocketOf, tcpFdOf }
