'use strict'

// Hands an accepted HTTP/1.x connection from Node to the Rust runtime (see docs/ARCHITECTURE.md,
// "The socket handoff"). Node writes the response head first (head.js). Once
// Node's own write queue is empty, Rust duplicates the fd, JS stops reading and
// destroys its socket: Node closes only its own descriptor, so nothing reaches the peer, and
// the connection leaves Node's bookkeeping (server.close(), request and keep-alive timeouts).

const { nativeHandoffUnavailableReason } = require('./native')
const { sseError } = require('./errors')

/** Why no connection of this process can be handed off (null when they can); fixed for its life. */
const PROCESS_UNAVAILABLE_REASON = nativeHandoffUnavailableReason()

/** Why this connection cannot be handed off, or null when it can. Uses Node internals
 *  (_handle, fd, readStop, writeQueueSize), so each one is checked rather than assumed. */
function nativeUnavailableReason (req, res) {
  if (process.platform === 'win32') return 'Windows sockets have no usable file descriptor'
  if (PROCESS_UNAVAILABLE_REASON !== null) return PROCESS_UNAVAILABLE_REASON
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} streams are multiplexed by Node`
  const socket = req.socket
  if (!socket) return 'the request has no socket'
  if (socket.encrypted) return 'TLS state lives in Node (https)'
  if (res.socket !== socket) return 'the response is not written to the request socket'
  const handle = socket._handle
  if (!handle) return 'the socket has no handle (already closed, or not a real TCP socket)'
  if (typeof handle.fd !== 'number' || handle.fd < 0) return 'the socket has no file descriptor'
  // A Unix domain socket (a server listening on a path, behind a proxy) has an fd too, but the
  // core takes TCP streams only.
  if (handle.constructor?.name !== 'TCP') return 'the connection is not TCP (a Unix domain socket)'
  if (typeof handle.readStop !== 'function' || typeof handle.writeQueueSize !== 'number') {
    return 'this Node version does not expose the socket internals the handoff needs'
  }
  if (socket.constructor && socket.constructor.name !== 'Socket') return 'the socket is not a plain net.Socket'
  return null
}

/** The error for `transport: 'native'` on a connection that cannot be handed off. */
function nativeUnavailableError (reason) {
  return sseError(Error, 'ERR_SSE_TRANSPORT_UNAVAILABLE',
    `cannot stream natively: ${reason}. Use transport: 'auto' (the default) or 'node' to serve it through Node`)
}

/** Whether everything Node was given for this connection reached the kernel. Bytes may wait
 *  in three places: the response's own buffer while it is corked (Node 24.22 keeps a head and
 *  the writes of the same tick there, with the socket's own buffer still empty), the socket's
 *  stream buffer, and libuv's write queue. */
function flushed (socket, res) {
  const handle = socket._handle
  return (res.writableLength ?? 0) === 0 && !socket.writableCorked &&
    socket.writableLength === 0 && handle.writeQueueSize === 0
}

const FLUSH_POLL_MS = 2

/**
 * The head Node rendered and has not sent, as the bytes Node would write (latin1), when
 * Node holds nothing else for the socket; null otherwise. Rust then sends it with the first
 * body bytes: no write of Node's to wait for, one segment where there were two.
 */
function unsentHead (socket, res) {
  if (typeof res._header !== 'string' || res._headerSent !== false || !flushed(socket, res)) return null
  // What Node's _send would do first: from here on Node takes the head for sent.
  res._headerSent = true
  return Buffer.from(res._header, 'latin1')
}

/**
 * Completes the handoff once Node's pending writes (at least the head) reached the kernel:
 * bytes still queued in Node would be lost by destroy(). A head Node rendered without sending
 * goes to Rust with the socket when nothing else waits, else Node sends it first. Calls
 * `done(null)` once Rust owns the socket, or `done(reason)` with the close reason when it
 * never will.
 */
function handOff (native, id, socket, res, chunked, waitLimitMs, done) {
  const deadline = Date.now() + waitLimitMs
  const head = socket._handle ? unsentHead(socket, res) : null
  // Not sent by Node yet (attach rendered it), and Rust cannot take it: Node sends it now.
  if (head === null && res._headerSent !== true) res.flushHeaders()
  const attempt = () => {
    if (socket.destroyed || !socket._handle) return done('client')
    if (!flushed(socket, res)) {
      if (Date.now() >= deadline) {
        // A started response has no Node timeout left to end it: without this, the socket
        // and its fd would stay open for as long as the peer does not read.
        socket.destroy()
        return done('timeout')
      }
      setTimeout(attempt, FLUSH_POLL_MS)
      return
    }
    const handle = socket._handle
    handle.readStop()
    try {
      native.adopt(id, handle.fd, chunked, head ?? undefined)
    } catch {
      socket.destroy()
      return done('error')
    }
    // The request may still be "incomplete" to Node (a body it never read); destroying the
    // socket then makes it emit 'error' on req, which must not crash an app with no listener.
    if (socket.parser && socket.parser.incoming) socket.parser.incoming.on('error', ignore)
    // Node aborts the request as the socket closes: an Error made and its stack formatted
    // for nobody, a tenth of a handoff's cost in a reconnect wave. Errors made by the socket's
    // own 'close' listeners carry no stack; the limit is back before anything else runs.
    socket.prependOnceListener('close', withoutStacks)
    socket.once('close', withStacks)
    socket.destroy()
    done(null)
  }
  attempt()
}

function ignore () {}

/** Error.stackTraceLimit while a handed-off socket's 'close' listeners run. */
let savedStackTraceLimit
function withoutStacks () {
  savedStackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  // Should a listener between the two throw, the limit still comes back.
  queueMicrotask(withStacks)
}
function withStacks () {
  if (savedStackTraceLimit !== undefined) {
    Error.stackTraceLimit = savedStackTraceLimit
    savedStackTraceLimit = undefined
  }
}

module.exports = { nativeUnavailableReason, nativeUnavailableError, handOff }
