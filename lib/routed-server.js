'use strict'

// What a node:http server with routes (route.js) does differently, shared by all its routes
// (of one hub or several): new connections are looked at before Node sees them, by wrapping the
// listening handle's accept callback, and requests Node parses go through the routes before
// the app's 'request' listeners (as engine.io does). Rust peeks at a new connection's first
// request head without reading it (crates/core/src/request_head.rs); a GET for a route's path
// is that route's, straight from Node's bare TCP handle. Anything else goes to Node untouched.

const http = require('node:http')
const { peekRequest } = require('./native')
const { raiseAcceptQueue } = require('./accept-queue')

/** How long a new connection's head may take to arrive before the connection goes to Node. */
const WAIT_FOR_HEAD_MS = 100

/** The routed server of each node:http server that has routes. */
const SERVERS = new WeakMap()

/** The path part of a request target ('/events?x' -> '/events'). */
function pathOf (target) {
  const query = target.indexOf('?')
  return query < 0 ? target : target.slice(0, query)
}

class RoutedServer {
  #server
  /** The routes by path. */
  #routes = new Map()
  /** The server's 'request' listeners when the first route came (the app), called for the rest. */
  #appListeners
  #onRequest = (req, res) => this.#request(req, res)
  #onListening = () => this.#front()
  /** Closed, the handle takes no more connections; one that waits for its head goes to Node. */
  #onClose = () => this.#unfront()
  /** The listening handle whose accept callback is wrapped, and that callback; or null. */
  #wrapped = null
  /** Answers for connections given back to Node, by Node's TCP handle. */
  #answers = new WeakMap()
  /** New connections whose head was not all there: [handle, toNode, since]. */
  #waiting = []
  /** The largest accept queue a route asked for, or null. */
  #backlog = null
  /** New connections looked at and left to Node. */
  passed = 0

  /** The routed server of `server`, made with its first route. */
  static of (server) {
    let routed = SERVERS.get(server)
    if (routed === undefined) {
      routed = new RoutedServer(server)
      SERVERS.set(server, routed)
    }
    return routed
  }

  constructor (server) {
    this.#server = server
  }

  /** Whether new connections are looked at before Node parses them. */
  get fronting () {
    return this.#wrapped !== null
  }

  /** Whether `path` has a route here. */
  has (path) {
    return this.#routes.has(path)
  }

  add (route, backlog) {
    if (this.#routes.size === 0) {
      this.#appListeners = this.#server.listeners('request')
      this.#server.removeAllListeners('request')
      this.#server.on('request', this.#onRequest)
      this.#server.on('listening', this.#onListening)
      this.#server.on('close', this.#onClose)
    }
    this.#routes.set(route.path, route)
    if (backlog !== null) this.#backlog = Math.max(this.#backlog ?? 0, backlog)
    if (this.#server.listening) this.#front()
  }

  /** The route goes; with the last one the server is as it was (streams already open stay). */
  remove (route) {
    if (this.#routes.get(route.path) !== route) return
    this.#routes.delete(route.path)
    if (this.#routes.size > 0) return
    this.#unfront()
    this.#server.removeListener('listening', this.#onListening)
    this.#server.removeListener('close', this.#onClose)
    this.#server.removeListener('request', this.#onRequest)
    for (const listener of this.#appListeners) this.#server.on('request', listener)
    SERVERS.delete(this.#server)
  }

  /**
   * Wraps the listening handle's accept callback: plain TCP node:http servers only (TLS bytes
   * cannot be peeked, an HTTP/2 server does not speak HTTP/1.1 streams, a Unix socket is no
   * TCP stream for the core to take).
   */
  #front () {
    this.#unfront()
    const server = this.#server
    const handle = server._handle
    if (!(server instanceof http.Server) || typeof server.addContext === 'function') return
    if (handle == null || typeof handle.onconnection !== 'function' || handle.constructor?.name !== 'TCP') return
    const original = handle.onconnection
    if (this.#backlog !== null) raiseAcceptQueue(server, this.#backlog)
    const routed = this
    handle.onconnection = function onconnection (status, clientHandle) {
      if (status !== 0 || clientHandle === undefined) return original.call(this, status, clientHandle)
      routed.#arrived(clientHandle, (answer) => {
        // The server closed meanwhile: nobody will answer; the connection is dropped.
        if (!server.listening) return clientHandle.close()
        if (answer !== null) routed.#answers.set(clientHandle, answer)
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
   * A new connection: its route's when its first request is a GET for a route's path, else
   * given to Node as it is (`toNode(null)`). A head not all there yet is looked at again on the
   * next turns (in a wave it arrives a moment after the connection), for at most
   * WAIT_FOR_HEAD_MS, and then goes to Node, which waits for it with its own timeouts.
   */
  #arrived (clientHandle, toNode, since) {
    const fd = clientHandle.fd
    const parts = this.#wrapped !== null && typeof fd === 'number' && fd >= 0
      ? peekRequest(fd, this.#server.maxHeaderSize ?? http.maxHeaderSize)
      : null
    if (parts !== null && parts.length === 0 && Date.now() - since < WAIT_FOR_HEAD_MS) return this.#lookAgain(clientHandle, toNode, since)
    const route = parts !== null && parts.length > 0 && parts[0] === 'GET' ? this.#routes.get(pathOf(parts[1])) : undefined
    if (route === undefined || !route.taking) {
      this.passed++
      return toNode(null)
    }
    route._take(clientHandle, parts, toNode)
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

  /** A request Node parsed: an answer kept for it, a route's path, or the app's. */
  #request (req, res) {
    const handle = req.socket?._handle
    const kept = handle == null ? undefined : this.#answers.get(handle)
    if (kept !== undefined) {
      this.#answers.delete(handle)
      res.writeHead(kept.status, kept.headers)
      res.end(kept.body)
      return
    }
    const route = (req.method === 'GET' || req.method === 'HEAD') && typeof req.url === 'string' ? this.#routes.get(pathOf(req.url)) : undefined
    if (route !== undefined) return route._serve(req, res)
    for (const listener of this.#appListeners) listener.call(this.#server, req, res)
  }
}

module.exports = { RoutedServer }
