'use strict'

const { EventEmitter } = require('node:events')

/**
 * One attached SSE connection. Holds no reference to req, res or the socket: after the
 * handoff they belong to nobody in JS and can be collected (DESIGN.md: a closure over `res`
 * pins about 4 KB per connection).
 */
class Client extends EventEmitter {
  #hub
  #controller = null
  #closeReason = null

  constructor (hub, id, lastEventId, transport) {
    super()
    this.#hub = hub
    /** Hub-unique id of this client. */
    this.id = id
    /** The `Last-Event-ID` request header, or '' when the client sent none. */
    this.lastEventId = lastEventId
    /** 'native' when Rust writes the socket, 'node' when batches are written through Node. */
    this.transport = transport
  }

  /** Queues one event for this client. Returns false if the client has left or close() was called. */
  send (message) {
    if (this.#closeReason !== null) return false
    return this.#hub._sendTo(this.id, message)
  }

  /** Queues a comment (never dispatched as an event by clients). */
  comment (text) {
    if (this.#closeReason !== null) return false
    return this.#hub._commentTo(this.id, text)
  }

  /** Ends the stream after what is already queued (later sends return false); 'close' follows with reason 'server'. */
  close () {
    if (this.#closeReason === null) this.#hub._closeClient(this.id)
  }

  /** True once the client has left. */
  get closed () {
    return this.#closeReason !== null
  }

  /** Why the client left ('client', 'error', 'timeout', 'slow', 'server'), or null. */
  get closeReason () {
    return this.#closeReason
  }

  /** Aborted when the client leaves; its reason is the close reason. Created on first use. */
  get signal () {
    if (this.#controller === null) {
      this.#controller = new AbortController()
      if (this.#closeReason !== null) this.#controller.abort(this.#closeReason)
    }
    return this.#controller.signal
  }

  /** Called by the hub, exactly once. */
  _closed (reason) {
    this.#closeReason = reason
    if (this.#controller !== null) this.#controller.abort(reason)
    this.emit('close', reason)
  }
}

module.exports = { Client }
