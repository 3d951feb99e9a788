'use strict'

// hub.route(server, path, open): the hub serves one path of a node:http server (Express's,
// Fastify's) itself, from the connection up. A reconnect wave is thousands of new connections
// whose first request is that path; through attach() each costs Node a socket, a parser, a
// request and a response, and the handoff then undoes them. The server's routed-server.js
// hands this route each new connection whose first request is a GET for the path, before Node
// parsed anything: `open(request)` decides, and the connection is accepted straight from
// Node's TCP handle (requests/front-door.js). A request for the path that Node parsed after
// all (the second request of a kept-alive connection, a head still arriving) is attached
// through Node by the same `open`. Every answer but a stream is written by Node.

const { validateHeaderName, validateHeaderValue } = require('node:http')
const { sseError } = require('./errors')
const { describe, plainObject, rejectUnknownKeys } = require('./checks')
const { FrontDoorRequest, OWN_HEADERS } = require('./requests/front-door')
const { RoutedServer } = require('./routed-server')
const { backlogOption } = require('./accept-queue')

const ROUTE_KEYS = new Set(['backlog', 'onClient', 'openTimeoutMs'])
/** What `open` may return: attach's options but `transport`, and the stream's headers. */
const OPEN_KEYS = new Set(['retryMs', 'channels', 'lastEventId', 'user', 'headers'])
/** How long `open` may take by default before the request is answered 503. */
const OPEN_TIMEOUT_MS = 10_000
const MAX_TIMER_MS = 2 ** 31 - 1
/** Repeated headers Node keeps the first of (_http_incoming.js, matchKnownFields). */
const FIRST_ONLY = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization',
  'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards',
  'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires'])

function invalid (what) {
  return sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', what)
}

/** Headers of a peeked head, joined as Node joins repeated ones (req.headers). */
function headersOf (parts) {
  const headers = { __proto__: null }
  for (let i = 2; i < parts.length; i += 2) {
    const name = parts[i]
    const value = parts[i + 1]
    const had = headers[name]
    if (had === undefined) headers[name] = name === 'set-cookie' ? [value] : value
    else if (name === 'set-cookie') had.push(value)
    else if (!FIRST_ONLY.has(name)) headers[name] = `${had}${name === 'cookie' ? '; ' : ', '}${value}`
  }
  return headers
}

/** The route's own headers for a stream, checked as Node checks them: `[name, values]`
 *  pairs (a `set-cookie` array gives a line each), and its `Vary` to merge. */
function streamHeaders (headers) {
  const pairs = []
  let vary
  if (headers === undefined) return { pairs, vary }
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `headers must be an object of header names and values, got ${describe(headers)}`)
  }
  for (const [name, given] of Object.entries(headers)) {
    const values = Array.isArray(given) ? given.map(String) : [String(given)]
    try {
      validateHeaderName(name)
      for (const value of values) validateHeaderValue(name, value)
    } catch (error) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `headers: ${error.message}`, error)
    }
    const lower = name.toLowerCase()
    if (lower === 'vary') vary = values.join(', ')
    else if (!OWN_HEADERS.has(lower)) pairs.push([name, values])
  }
  return { pairs, vary }
}

/** What `open` returned: attach's options but `transport` (a route is served natively where
 *  it can), plus `headers`. */
function openOptions (options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `a route's open() returns attach options (or nothing), got ${describe(options)}`)
  }
  if ('transport' in options) {
    throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION', 'a route\'s open() cannot choose a transport: the route streams natively where it can and through Node elsewhere; use attach() in your own route for another choice')
  }
  rejectUnknownKeys(options, OPEN_KEYS, 'option returned by a route\'s open():')
  return options
}

/** A path a request target can be: '/', then visible ASCII but '?' and '#'. */
const ROUTE_PATH = /^\/[\x21-\x22\x24-\x3e\x40-\x7e]*$/

/** `route(server, path, open, options)`'s options, checked. */
function routeSettings (options) {
  const given = plainObject(options, 'route options')
  rejectUnknownKeys(given, ROUTE_KEYS, 'route option')
  const { backlog = true, onClient = null, openTimeoutMs = OPEN_TIMEOUT_MS } = given
  if (onClient !== null && typeof onClient !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `onClient must be a function (client, request), got ${describe(onClient)}`)
  }
  if (!Number.isSafeInteger(openTimeoutMs) || openTimeoutMs < 1 || openTimeoutMs > MAX_TIMER_MS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `openTimeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${describe(openTimeoutMs)}`)
  }
  return { backlog: backlogOption(backlog, 'backlog'), onClient, openTimeoutMs }
}

/** A status an app's error carries (http-errors style), read without trusting the error. */
function statusOf (error) {
  try {
    const given = error?.status ?? error?.statusCode
    return Number.isInteger(given) && given >= 400 && given <= 599 ? given : 500
  } catch {
    return 500
  }
}

/** What of an app's error may reach the client, as http-errors means it: its message when
 *  `expose` (by default for a 4xx), and its `headers` (WWW-Authenticate, CORS) where Node
 *  takes them. Nothing of an error that throws while being read. */
function shownOf (error, status) {
  let message = null
  const headers = {}
  try {
    const expose = error.expose ?? status < 500
    if (expose === true && typeof error.message === 'string') message = error.message
    const given = error.headers
    if (given !== null && typeof given === 'object' && !Array.isArray(given)) {
      for (const [name, value] of Object.entries(given)) {
        try {
          validateHeaderName(name)
          validateHeaderValue(name, String(value))
          headers[name.toLowerCase()] = String(value)
        } catch {}
      }
    }
  } catch {}
  return { message, headers }
}

/** The answer to a request whose `open` threw or rejected: its status (4xx, 5xx; else 500),
 *  its message if exposed, its headers. */
function thrownAnswer (error) {
  const status = statusOf(error)
  const { message, headers } = error !== null && typeof error === 'object' ? shownOf(error, status) : { message: null, headers: {} }
  if (status >= 500) console.error('native-sse: the route\'s open() failed; the request was answered', status, error)
  return {
    status,
    headers: { ...headers, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    body: message === null ? 'event stream failed\n' : `${message}\n`
  }
}

function timeoutAnswer (ms) {
  return {
    status: 503,
    headers: { 'retry-after': '1', 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    body: `event stream unavailable (open() did not answer within ${ms} ms); retry later\n`
  }
}

class Route {
  #hub
  #routed
  /** `onClient(client, request)` for each stream the route opens, or null. */
  #onClient
  #open
  #openTimeoutMs
  #taken = 0
  #closed = false

  constructor (hub, server, path, open, options) {
    if (server === null || typeof server !== 'object' || typeof server.listen !== 'function' || typeof server.listeners !== 'function') {
      throw invalid(`route(server, path, open): server must be a node:http Server (Express: app.listen()'s; Fastify: fastify.server), got ${describe(server)}`)
    }
    // Compared with request targets as sent: visible ASCII only, so a space, a control
    // character, a fragment or a raw non-ASCII character would name a path no request has.
    if (typeof path !== 'string' || !ROUTE_PATH.test(path)) {
      throw invalid(`route(server, path, open): path must start with '/' and be visible ASCII with no query or fragment ('?', '#'; percent-encode anything else as a client sends it), got ${describe(path)}`)
    }
    if (open !== undefined && typeof open !== 'function') {
      throw invalid(`route(server, path, open): open must be a function returning the attach options, got ${describe(open)}`)
    }
    const { backlog, onClient, openTimeoutMs } = routeSettings(options)
    const routed = RoutedServer.of(server)
    if (routed.has(path)) {
      throw invalid(`route(server, path, open): ${JSON.stringify(path)} has a route on this server already; close() it first`)
    }
    this.#hub = hub
    this.#routed = routed
    this.path = path
    this.#open = open ?? (() => undefined)
    this.#onClient = onClient
    this.#openTimeoutMs = openTimeoutMs
    routed.add(this, backlog)
  }

  /** Whether new connections are looked at before Node parses them (false: TLS, HTTP/2, a
   *  Unix socket, or not listening yet). */
  get fronting () {
    return !this.#closed && this.#routed.fronting
  }

  /** `{ taken, passed }`: new connections whose first request this route answered (a stream,
   *  or a refusal Node writes), and new connections of the server left to Node (another path
   *  or method, a head still arriving after a second look, a closing hub). */
  get counts () {
    return { taken: this.#taken, passed: this.#routed.passed }
  }

  /** Stops serving the path: the server is as it was (streams already open stay). */
  close () {
    if (this.#closed) return
    this.#closed = true
    this.#routed.remove(this)
  }

  /** Whether a new connection for the path is this route's to take now. */
  get taking () {
    return !this.#closed && !this.#hub._closing
  }

  /** A new connection whose first request (`parts`, peeked) is a GET for the path. */
  _take (clientHandle, parts, toNode) {
    this.#taken++
    const address = {}
    clientHandle.getpeername?.(address)
    const view = { method: 'GET', url: parts[1], headers: headersOf(parts), remoteAddress: address.address ?? null, remotePort: address.port ?? null }
    this.#decide(view, (options) => {
      const { headers, ...attaching } = openOptions(options)
      const request = new FrontDoorRequest(clientHandle, view, streamHeaders(headers), toNode)
      this.#opened(this.#hub._acceptRoute(request, attaching, view), view)
    }, toNode)
  }

  /** A request for the path that Node parsed: attached through Node with the same `open`. */
  _serve (req, res) {
    const view = { method: req.method, url: req.url, headers: req.headers, remoteAddress: req.socket?.remoteAddress ?? null, remotePort: req.socket?.remotePort ?? null }
    this.#decide(view, (options) => {
      const { headers, ...attaching } = openOptions(options)
      const { pairs, vary } = streamHeaders(headers)
      for (const [name, values] of pairs) res.setHeader(name, values.length === 1 ? values[0] : values)
      if (vary !== undefined) res.setHeader('vary', vary)
      this.#opened(this.#hub._attach(req, res, attaching, view), view)
    }, (answer) => {
      if (res.headersSent) return res.destroy()
      res.writeHead(answer.status, answer.headers)
      res.end(answer.body)
    })
  }

  /**
   * Runs `open(view)` (sync or async, within openTimeoutMs) and then `accept(options)`; a
   * throw, a rejection or the timeout is answered (`answer`) instead, once.
   */
  #decide (view, accept, answer) {
    let settled = false
    let timer = null
    const once = (run) => (value) => {
      if (settled) return
      settled = true
      if (timer !== null) clearTimeout(timer)
      run(value)
    }
    const fail = once((error) => answer(thrownAnswer(error)))
    const run = once((options) => {
      try {
        accept(options)
      } catch (error) {
        answer(thrownAnswer(error))
      }
    })
    try {
      const options = this.#open(view)
      if (options === null || typeof options?.then !== 'function') return run(options)
      timer = setTimeout(once(() => answer(timeoutAnswer(this.#openTimeoutMs))), this.#openTimeoutMs)
      options.then(run, fail)
    } catch (error) {
      fail(error)
    }
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
}

module.exports = { Route }
