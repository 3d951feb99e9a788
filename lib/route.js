'use strict'

// hub.route(server, path, open): the hub serves one path of a node:http server (Express's,
// Fastify's) itself, from the connection up. A reconnect wave is thousands of new connections
// whose first request is that path; through attach() each costs Node a socket, a parser, a
// request and a response, and the handoff then undoes them. Here each new connection is looked
// at before Node sees it (its accept callback, wrapped): Rust peeks at the first request head
// without reading it (crates/core/src/request_head.rs), and a GET for the path is accepted
// straight from Node's TCP handle. Anything else (another path or method, a head not all
// there yet, HTTP/1.0, a body, TLS) goes to Node untouched, and a request for the path that
// Node parses after all (the second request of a kept-alive connection, a head still
// arriving) is attached through Node by the same `open`. A refusal is answered by Node too.

const { sseError } = require('./errors')
const { describe, plainObject, rejectUnknownKeys } = require('./checks')

const ROUTE_KEYS = new Set(['backlog', 'onClient'])
const { FrontDoorRequest, OWN_HEADERS } = require('./requests/front-door')
const { peekRequest, setListenBacklog } = require('./native')

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_BAD = /[\r\n\0]/

function invalid (what) {
  return sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', what)
}

/** The path part of a request target ('/events?x' -> '/events'). */
function pathOf (target) {
  const query = target.indexOf('?')
  return query < 0 ? target : target.slice(0, query)
}

/** Headers of a peeked head as Node joins repeated ones. */
function headersOf (parts) {
  const headers = {}
  for (let i = 2; i < parts.length; i += 2) {
    const name = parts[i]
    const value = parts[i + 1]
    const had = headers[name]
    headers[name] = had === undefined ? value : `${had}${name === 'cookie' ? '; ' : ', '}${value}`
  }
  return headers
}

/** The route's own headers for a stream: header lines, and its `Vary` to merge. */
function streamHeaderLines (headers) {
  let lines = ''
  let vary
  if (headers === undefined) return { lines, vary }
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `headers must be an object of header names and values, got ${describe(headers)}`)
  }
  for (const [name, given] of Object.entries(headers)) {
    const value = String(given)
    if (!HEADER_NAME.test(name) || HEADER_VALUE_BAD.test(value)) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `headers: ${JSON.stringify(name)}: ${JSON.stringify(value)} is not a valid header (a token name, a value without CR, LF or NUL)`)
    }
    const lower = name.toLowerCase()
    if (lower === 'vary') vary = value
    else if (!OWN_HEADERS.has(lower)) lines += `${name}: ${value}\r\n`
  }
  return { lines, vary }
}

/** The system's cap on a listen queue is net.core.somaxconn (4096 on recent Linux): asking
 *  for more gets that. */
const MAX_BACKLOG = 65535
/** How long a new connection's head may take to arrive before the connection goes to Node. */
const WAIT_FOR_HEAD_MS = 100

/** `route(server, path, open, { backlog, onClient })`, checked: `backlog` a queue length
 *  (`false` for Node's, default the most), `onClient(client, request)` or null. */
function settingsOf (options) {
  const given = plainObject(options, 'route options')
  rejectUnknownKeys(given, ROUTE_KEYS, 'route option')
  const { backlog = true, onClient = null } = given
  if (onClient !== null && typeof onClient !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `onClient must be a function (client, request), got ${describe(onClient)}`)
  }
  if (backlog === true) return { backlog: MAX_BACKLOG, onClient }
  if (backlog === false) return { backlog: null, onClient }
  if (!Number.isSafeInteger(backlog) || backlog < 1 || backlog > MAX_BACKLOG) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `backlog must be true, false or a whole number from 1 to ${MAX_BACKLOG}, got ${describe(backlog)}`)
  }
  return { backlog, onClient }
}

/** What `open` returned: attach's options but `transport` (a route is served natively where
 *  it can), plus `headers`. */
function routeOptions (options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `a route's open() returns attach options (or nothing), got ${describe(options)}`)
  }
  if ('transport' in options) {
    throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION', 'a route\'s open() cannot choose a transport: the route streams natively where it can and through Node elsewhere; use attach() in your own route for another choice')
  }
  return options
}

/** The status and text a throw from `open` is answered with (an `http-errors` style status, else 500). */
function thrownAnswer (error) {
  const given = error?.status ?? error?.statusCode
  const status = Number.isInteger(given) && given >= 400 && given <= 599 ? given : 500
  const body = status < 500 && typeof error?.message === 'string' ? `${error.message}\n` : 'event stream failed\n'
  if (status >= 500) console.error('native-sse: the route\'s open() failed; the request was answered', status, error)
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body }
}

class Route {
  #hub
  #server
  #path
  #open
  /** The server's 'request' listeners when the route was added (the app), called for the rest. */
  #appListeners
  #onRequest
  #onListening
  /** Node's accept callback of the listening handle we wrapped, and that handle. */
  #wrapped = null
  /** Answers for connections given back to Node, by Node's TCP handle. */
  #answers = new WeakMap()
  #closed = false
  /** Connections taken before Node parsed them, and new ones looked at and left to Node. */
  #counts = { taken: 0, passed: 0 }
  /** New connections whose head was not all there: [handle, toNode], looked at next turn. */
  #waiting = []

  /** The accept queue the listening socket is given, or null to leave Node's. */
  #backlog
  /** `onClient(client, request)` for each stream the route opens, or null. */
  #onClient

  constructor (hub, server, path, open, options) {
    if (server === null || typeof server !== 'object' || typeof server.listen !== 'function' || typeof server.listeners !== 'function') {
      throw invalid(`route(server, path, open): server must be a node:http Server (Express: app.listen()'s; Fastify: fastify.server), got ${describe(server)}`)
    }
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?')) {
      throw invalid(`route(server, path, open): path must start with '/' and carry no query, got ${describe(path)}`)
    }
    if (open !== undefined && typeof open !== 'function') {
      throw invalid(`route(server, path, open): open must be a function returning the attach options, got ${describe(open)}`)
    }
    const { backlog, onClient } = settingsOf(options)
    this.#backlog = backlog
    this.#onClient = onClient
    this.#hub = hub
    this.#server = server
    this.#path = path
    this.#open = open ?? (() => undefined)
    this.#appListeners = server.listeners('request')
    this.#onRequest = (req, res) => this.#request(req, res)
    server.removeAllListeners('request')
    server.on('request', this.#onRequest)
    this.#onListening = () => this.#front()
    server.on('listening', this.#onListening)
    if (server.listening) this.#front()
  }

  /** Whether new connections are looked at before Node (false: TLS, or not listening). */
  get fronting () {
    return this.#wrapped !== null
  }

  /** `{ taken, passed }`: new connections whose first request the route answered (a stream,
   *  or a refusal Node writes), and those it left to Node (another path or method, a head
   *  still arriving after a second look). */
  get counts () {
    return { ...this.#counts }
  }

  /** Stops serving the path: the server is as it was (streams already open stay). */
  close () {
    if (this.#closed) return
    this.#closed = true
    this.#unfront()
    this.#server.removeListener('listening', this.#onListening)
    this.#server.removeListener('request', this.#onRequest)
    for (const listener of this.#appListeners) this.#server.on('request', listener)
  }

  /** Wraps the listening handle's accept callback (TCP only: TLS bytes cannot be peeked). */
  #front () {
    this.#unfront()
    const handle = this.#server._handle
    if (this.#closed || this.#server.encrypted !== undefined || typeof this.#server.addContext === 'function') return
    if (handle === null || handle === undefined || typeof handle.onconnection !== 'function') return
    const original = handle.onconnection
    // Node listens with a queue of 511: a wave's handshakes beyond it are dropped, and each
    // costs its client a SYN retry (1 s) before the server even sees it.
    if (this.#backlog !== null && typeof handle.fd === 'number' && handle.fd >= 0) setListenBacklog(handle.fd, this.#backlog)
    const route = this
    handle.onconnection = function onconnection (status, clientHandle) {
      if (status !== 0 || clientHandle === undefined) return original.call(this, status, clientHandle)
      route.#arrived(clientHandle, (answer) => {
        if (answer !== null) route.#answers.set(clientHandle, answer)
        original.call(handle, 0, clientHandle)
      }, Date.now())
    }
    this.#wrapped = { handle, original }
  }

  #unfront () {
    if (this.#wrapped === null) return
    const { handle, original } = this.#wrapped
    handle.onconnection = original
    this.#wrapped = null
  }

  /**
   * A new connection: taken when its first request is a GET for the path, else given to Node
   * as it is (`toNode(null)`). A head not all there yet is looked at again on the next turns
   * (in a wave it arrives a moment after the connection), for at most WAIT_FOR_HEAD_MS, and
   * then goes to Node, which waits for it with its own timeouts. `toNode(answer)` also gives
   * it to Node later, with the answer it is to get.
   */
  #arrived (clientHandle, toNode, since) {
    const fd = clientHandle.fd
    const parts = typeof fd === 'number' && fd >= 0 && !this.#hub._closing ? peekRequest(fd) : null
    if (parts !== null && parts.length === 0 && Date.now() - since < WAIT_FOR_HEAD_MS) return this.#lookAgain(clientHandle, toNode, since)
    if (parts === null || parts.length === 0 || parts[0] !== 'GET' || pathOf(parts[1]) !== this.#path) {
      this.#counts.passed++
      return toNode(null)
    }
    this.#counts.taken++
    this.#take(clientHandle, parts, toNode)
  }

  #lookAgain (clientHandle, toNode, since) {
    if (this.#waiting.length === 0) {
      // The first look again on the next turn, later ones a millisecond apart: a client still
      // sending its head does not keep the loop spinning.
      const again = () => {
        const waiting = this.#waiting
        this.#waiting = []
        for (const [handle, handOn, first] of waiting) this.#arrived(handle, handOn, first)
      }
      if (Date.now() === since) setImmediate(again)
      else setTimeout(again, 1)
    }
    this.#waiting.push([clientHandle, toNode, since])
  }

  #take (clientHandle, parts, toNode) {
    const address = {}
    clientHandle.getpeername?.(address)
    const view = { method: 'GET', url: parts[1], headers: headersOf(parts), remoteAddress: address.address ?? null, remotePort: address.port ?? null }
    const accept = (options) => {
      const { headers, ...attaching } = routeOptions(options)
      const request = new FrontDoorRequest(clientHandle, view, streamHeaderLines(headers), toNode)
      this.#opened(this.#hub._acceptRoute(request, attaching, view), view)
    }
    this.#decide(view, accept, (answer) => toNode(answer))
  }

  /** Runs `open(view)` (sync or async) and then `accept(options)`; a throw answers. */
  #decide (view, accept, answer) {
    const fail = (error) => answer(thrownAnswer(error))
    let options
    try {
      options = this.#open(view)
    } catch (error) {
      return fail(error)
    }
    const run = (given) => {
      try {
        accept(given)
      } catch (error) {
        fail(error)
      }
    }
    if (options !== null && typeof options?.then === 'function') options.then(run, fail)
    else run(options)
  }

  /** Hands a stream the route opened to `onClient` (once its checks allowed it, when async);
   *  a throw there closes the client and is reported, as the request has no caller. */
  #opened (client, view) {
    if (this.#onClient === null) return
    const hand = () => {
      if (client.refusal !== null || client.closed) return
      try {
        this.#onClient(client, view)
      } catch (error) {
        client.close()
        console.error('native-sse: the route\'s onClient() threw; the client was closed:', error)
      }
    }
    const admission = client._auth?.admission
    if (admission != null) admission.then(hand)
    else hand()
  }

  /** A request Node parsed: an answer kept for it, the path (attached through Node), or the app's. */
  #request (req, res) {
    const kept = this.#answers.get(req.socket?._handle)
    if (kept !== undefined) {
      this.#answers.delete(req.socket._handle)
      res.writeHead(kept.status, kept.headers)
      res.end(kept.body)
      return
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && typeof req.url === 'string' && pathOf(req.url) === this.#path) {
      const view = { method: req.method, url: req.url, headers: req.headers, remoteAddress: req.socket?.remoteAddress ?? null, remotePort: req.socket?.remotePort ?? null }
      this.#decide(view, (options) => {
        const { headers, ...attaching } = routeOptions(options)
        streamHeaderLines(headers)
        for (const [name, value] of Object.entries(headers ?? {})) {
          const lower = name.toLowerCase()
          if (lower === 'vary' || !OWN_HEADERS.has(lower)) res.setHeader(name, String(value))
        }
        this.#opened(this.#hub._attach(req, res, attaching, view), view)
      }, (answer) => {
        if (res.headersSent) return res.destroy()
        res.writeHead(answer.status, answer.headers)
        res.end(answer.body)
      })
      return
    }
    for (const listener of this.#appListeners) listener.call(this.#server, req, res)
  }
}

module.exports = { Route }
