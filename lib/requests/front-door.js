'use strict'

// A request the front door took (route.js): a connection Node accepted and never parsed, whose
// first request Rust peeked at (a GET for the route's path). There is no `req` or `res`: the
// head is rendered here and goes out from Rust with the opening, the socket is Rust's from the
// start, and Node's handle is closed unread. A refusal goes back to Node, which parses the
// request and answers it as it would any other (route.js keeps the answer for it).

const { STREAM_HEADERS, encodingHeaders } = require('../head')

/** What the stream's head decides itself; the route's own headers cannot change these. */
const OWN_HEADERS = new Set([...Object.keys(STREAM_HEADERS), 'content-length', 'content-encoding', 'transfer-encoding', 'connection', 'date', 'vary'])

/** The head's first lines, the same for every stream. */
const STATUS_AND_STREAM_HEADERS = `HTTP/1.1 200 OK\r\n${Object.entries(STREAM_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')}`

let dateSecond = -1
let dateText = ''

/** The `Date` header Node sends, made at most once a second. */
function httpDate () {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(now).toUTCString()
  }
  return dateText
}

class FrontDoorRequest {
  #handle
  #view
  #headers
  #toNode
  #head = null

  /**
   * @param handle Node's TCP handle for the connection, not started (nothing read from it)
   * @param view what the route's `open` was shown ({ method, url, headers, remoteAddress })
   * @param headers the route's own headers for the stream, checked: `{ pairs, vary }` (route.js)
   * @param toNode gives the connection to Node with the answer it is to get
   */
  constructor (handle, view, headers, toNode) {
    this.#handle = handle
    this.#view = view
    this.#headers = headers
    this.#toNode = toNode
  }

  get response () {
    return null
  }

  /** The server whose accept queue attach() sets: none, its route set the queue when it took the server (routed-server.js). */
  get server () {
    return null
  }

  get method () {
    return this.#view.method
  }

  get url () {
    return this.#view.url
  }

  header (name) {
    return this.#view.headers[name]
  }

  peer () {
    return { remoteAddress: this.#view.remoteAddress, remotePort: this.#view.remotePort }
  }

  unusable () {
    return null
  }

  nativeUnavailable () {
    return null
  }

  departed () {
    return null
  }

  /** Renders the head Rust sends with the opening; chunked, as Node frames HTTP/1.1. */
  writeHead (_native, gzip) {
    let head = STATUS_AND_STREAM_HEADERS
    for (const [name, values] of this.#headers.pairs) for (const value of values) head += `${name}: ${value}\r\n`
    for (const [name, value] of Object.entries(encodingHeaders(gzip, this.#headers.vary))) head += `${name}: ${value}\r\n`
    if (gzip === undefined && this.#headers.vary !== undefined) head += `vary: ${this.#headers.vary}\r\n`
    this.#head = Buffer.from(`${head}connection: keep-alive\r\ndate: ${httpDate()}\r\ntransfer-encoding: chunked\r\n\r\n`, 'latin1')
    return true
  }

  headFailed () {}

  /** Node answers it: the connection goes to Node's HTTP server with the answer kept for it. */
  refuse (answer) {
    this.#toNode(answer)
  }

  endHead () {}

  /** Rust takes the socket (a duplicate of the fd) with the head; Node's handle is closed. */
  startNative (native, id, chunked, _writeTimeoutMs, closed) {
    const handle = this.#handle
    try {
      native.adoptRequest(id, handle.fd, chunked, this.#head)
    } catch {
      handle.close()
      return closed('error')
    }
    handle.close()
    closed(null)
  }
}

module.exports = { FrontDoorRequest, OWN_HEADERS }
