'use strict'

const { NativeHub } = require('../binding')
const { Client } = require('./client')
const { sseError, fromNative } = require('./errors')
const { hubOptions, attachOptions, messageArgs, commentText, describe } = require('./options')
const { assertNativeAvailable, writeHead, handOff } = require('./native-transport')

/** How long hub.close() lets writer tasks drain before cutting them, beyond writeTimeoutMs. */
const SHUTDOWN_GRACE_MS = 1000
/** How long stopping the runtime may block the JS thread once every client had its chance. */
const RUNTIME_STOP_MS = 100

class Hub {
  #native
  #options
  #clients = new Map()
  #closing = null
  #emptyWaiters = []

  constructor (options) {
    this.#options = hubOptions(options)
    const { retryMs, ...nativeOptions } = this.#options
    try {
      this.#native = new NativeHub(nativeOptions, (id, reason) => this.#onNativeClose(id, reason))
    } catch (error) {
      throw fromNative(error)
    }
  }

  /**
   * Takes over an HTTP response as an event stream and returns its Client. The response head
   * is sent at once; from then on the connection belongs to the hub.
   */
  attach (req, res, options) {
    if (this.#closing !== null) {
      throw sseError(Error, 'ERR_SSE_HUB_CLOSED', 'the hub is closed; create a new hub with createHub() to serve more clients')
    }
    if (req === null || typeof req !== 'object' || typeof req.headers !== 'object') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `attach(req, res): req must be an http.IncomingMessage, got ${describe(req)}`)
    }
    if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `attach(req, res): res must be an http.ServerResponse, got ${describe(res)}`)
    }
    const { retryMs } = attachOptions(options, this.#options.retryMs)
    assertNativeAvailable(req, res)

    const chunked = writeHead(req, res)
    const id = this.#call(() => this.#native.register(retryMs))
    const lastEventId = req.headers['last-event-id']
    const client = new Client(this, id, typeof lastEventId === 'string' ? lastEventId : '')
    this.#clients.set(id, client)

    if (req.method === 'HEAD') {
      // Node sends no body for HEAD: the head alone answers it.
      res.end()
      this.#native.closeClient(id, 'server')
      return client
    }
    const native = this.#native
    handOff(native, id, req.socket, chunked, this.#options.writeTimeoutMs, (reason, error) => {
      if (reason !== null) {
        if (error) client._adoptError = error
        native.closeClient(id, reason)
      }
    })
    return client
  }

  /** Sends one event to every client; the frame is encoded once. Returns the recipients. */
  broadcast (message) {
    const args = messageArgs(message)
    return this.#call(() => this.#native.broadcast(...args))
  }

  /** Sends a comment line to every client. */
  comment (text) {
    const checked = commentText(text)
    return this.#call(() => this.#native.broadcastComment(checked))
  }

  /** Connected clients (including ones whose handoff is in progress). */
  get size () {
    return this.#native.size
  }

  /** Counters and queue levels, for metrics and leak checks. */
  stats () {
    return this.#native.stats()
  }

  /** True once close() was called. */
  get closed () {
    return this.#closing !== null
  }

  /**
   * Ends every stream (queued events are still written, within writeTimeoutMs), refuses new
   * clients, and stops the hub's threads. Resolves once every client's 'close' has fired.
   */
  close () {
    if (this.#closing === null) this.#closing = this.#shutdown()
    return this.#closing
  }

  async #shutdown () {
    this.#native.closeAll()
    if (this.#clients.size > 0) {
      const limit = this.#options.writeTimeoutMs + SHUTDOWN_GRACE_MS
      let timer
      await Promise.race([
        new Promise((resolve) => this.#emptyWaiters.push(resolve)),
        new Promise((resolve) => { timer = setTimeout(resolve, limit) })
      ])
      clearTimeout(timer)
    }
    // Cuts whatever is left (their guards report 'server' through the close callback). The
    // drain already had its time above, so the runtime gets only a moment to stop.
    this.#native.shutdown(RUNTIME_STOP_MS)
    // Close notifications queued by the shutdown arrive on the next turns of the loop.
    for (let i = 0; i < 10 && this.#clients.size > 0; i++) await new Promise((resolve) => setImmediate(resolve))
    for (const [id, client] of this.#clients) {
      this.#clients.delete(id)
      client._closed('server')
    }
  }

  _sendTo (id, message) {
    const args = messageArgs(message)
    return this.#call(() => this.#native.send(id, ...args))
  }

  _commentTo (id, text) {
    const checked = commentText(text)
    return this.#call(() => this.#native.comment(id, checked))
  }

  _closeClient (id) {
    this.#native.closeClient(id, 'server')
  }

  #onNativeClose (id, reason) {
    const client = this.#clients.get(id)
    if (client === undefined) return
    this.#clients.delete(id)
    client._closed(reason)
    if (this.#clients.size === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve()
    }
  }

  #call (fn) {
    try {
      return fn()
    } catch (error) {
      throw fromNative(error)
    }
  }
}

module.exports = { Hub }
