'use strict'

const { EventEmitter } = require('node:events')
const { performance } = require('node:perf_hooks')
const { Writable } = require('node:stream')
const { sseError } = require('./errors')
const { writableOptions } = require('./options')
const { messageOf } = require('./messages')
// What client.stream() takes from a synchronous source per native call (BATCH_ITEMS, or fewer
// once their strings add up to BATCH_CHARS): one call, one encode pass and one writer wakeup
// for the lot, the same batches the hub's queue of sends makes.
const { BATCH_ITEMS, BATCH_CHARS, GONE, QUEUED, ABOVE_HIGH_WATER } = require('./send-queue')
/** Items client.stream() sends before it lets the event loop run, when it never has to wait. */
const YIELD_EVERY = 1024

// What every client keeps is shared where it can be: at 100,000 idle clients each 16 bytes
// per client is 1.6 MB.

/** The one copy of each word the hub answers with (`resume`, `resetReason`); napi makes a
 *  new string at each call, which each client would otherwise keep. */
const WORDS = new Map(['replayed', 'reset', 'none', 'unknown', 'foreign', 'expired', 'ambiguous'].map((word) => [word, word]))
const sharedWord = (value) => WORDS.get(value) ?? value

/** Peer addresses repeat (every client behind one proxy has the proxy's): clients keep one
 *  copy each rather than the string their socket made. Forgotten wholesale when full. */
const ADDRESSES = new Map()
const MAX_ADDRESSES = 4096
function sharedAddress (address) {
  if (typeof address !== 'string') return address
  const known = ADDRESSES.get(address)
  if (known !== undefined) return known
  if (ADDRESSES.size >= MAX_ADDRESSES) ADDRESSES.clear()
  ADDRESSES.set(address, address)
  return address
}

/** Attach times are whole milliseconds since this: a small integer V8 keeps inside the
 *  object, where performance.now()'s fraction would be a separate 16-byte number. */
const EPOCH = performance.now()

function clientClosedError (id) {
  return sseError(Error, 'ERR_SSE_CLIENT_CLOSED', `client ${id} is closed; listen for its 'close' event and stop sending to it`)
}

/**
 * One attached SSE connection. Holds no reference to req, res or the socket: after the
 * handoff they belong to nobody in JS and can be collected (docs/ARCHITECTURE.md, "The socket
 * handoff": a closure over `res` pins about 4 KB per connection).
 */
class Client extends EventEmitter {
  #hub
  #controller = null
  #closeReason = null
  #closeRequested = false
  #needDrain = false
  /** The hub said it is gone (its 'close' may still be on its way to JS). */
  #gone = false
  /** Why the hub refused it ('hub-full', 'channel-full', 'closing'), or null. */
  #refusal = null
  /** The peer's address and port when it attached (kept for the hub's 'disconnect' info). */
  #remoteAddress = null
  #remotePort = null
  /** When it attached, in whole milliseconds since EPOCH. */
  #connectedAt = 0
  /** What the hub counts as waiting in this client's own queue, in bytes (hub.js `#defer`). */
  _queuedBytes = 0
  /**
   * Authorization (authorization.js), null for most clients: `{ user, grants, admission }`,
   * the identity, what rules granted it by channel, and while checks decide its attach, the
   * promise of that. One slot, so clients of hubs without rules pay 8 bytes for it.
   */
  _auth = null

  constructor (hub, id, lastEventId, transport, resume, resetReason) {
    super()
    // EventEmitter starts every emitter with an empty listener table, a dictionary-mode object
    // of about 180 bytes; most clients never get a listener, and at 100,000 idle clients those
    // tables would be a sixth of the hub's memory. Its methods create the table on the first
    // listener (they all accept `_events` undefined), so the one allocated here dies young.
    this._events = undefined
    this.#hub = hub
    /** Hub-unique id of this client. */
    this.id = id
    /** The `Last-Event-ID` it connected with (header, or the hub's `lastEventIdQuery`), or ''. */
    this.lastEventId = lastEventId
    /** 'native' when Rust writes the socket, 'node' when batches are written through Node. */
    this.transport = transport
    /**
     * What its `lastEventId` resumed to: 'replayed' (it gets every event after that one,
     * then live), 'reset' (it could not be placed: it got the reset event and starts live), or
     * 'none' (no id, or no history to resume from).
     */
    this.resume = sharedWord(resume)
    /** With resume 'reset': 'unknown', 'foreign' (another hub's or process's), 'expired', or
     *  'ambiguous' (an id the application gave several events still held). */
    this.resetReason = sharedWord(resetReason)
  }

  /**
   * A client the hub refused: attach() answered 503 with Retry-After. It is closed from the
   * start (closeReason 'refused'; 'close' fires on the next tick) and sending to it does
   * nothing, so a handler that does not test it still behaves.
   */
  static _refused (hub, reason) {
    const client = new Client(hub, 0, '', null, 'none', null)
    client.#refusal = reason
    client.#closeReason = 'refused'
    process.nextTick(() => client.emit('close', 'refused'))
    return client
  }

  /**
   * The client of a HEAD request: attach() answered the head a GET would get and no body. It
   * never connected (no 'connect', not counted): closed from the start (closeReason 'head';
   * 'close' fires on the next tick), and sending to it does nothing.
   */
  static _headOnly (hub) {
    const client = new Client(hub, 0, '', null, 'none', null)
    client.#closeReason = 'head'
    process.nextTick(() => client.emit('close', 'head'))
    return client
  }

  /** Why attach() refused it: 'hub-full', 'channel-full' or 'closing'; null when attached. */
  get refusal () {
    return this.#refusal
  }

  /** The peer's IP address when it attached, or null when unknown. */
  get remoteAddress () {
    return this.#remoteAddress
  }

  /** The peer's port when it attached, or null when unknown. */
  get remotePort () {
    return this.#remotePort
  }

  /** True when it resumed from its `lastEventId` without a gap. */
  get resumed () {
    return this.resume === 'replayed'
  }

  /**
   * Queues one event for this client. Returns true while the producer may go on; false when
   * the event was not queued (the client left or close() was called) or when it was queued
   * but what this client was sent is above the hub's `highWaterMark`: then wait for
   * `await client.drain()` (or the 'drain' event) before sending more, as with Node's streams.
   */
  send (message) {
    if (this.#ended()) return false
    return this.#accepted(this.#hub._sendTo(this, message))
  }

  /** Queues a comment (never dispatched as an event by clients). Returns as send() does. */
  comment (text) {
    if (this.#ended()) return false
    return this.#accepted(this.#hub._commentTo(this.id, text))
  }

  /**
   * Subscribes this client to `channel` from now on (it gets what is published there after
   * this call). Returns false if it was subscribed already or has left.
   */
  subscribe (channel, options) {
    if (this.#ended()) return false
    return this.#hub._subscribe(this, channel, options)
  }

  /** Ends its subscription to `channel` at once. Returns false if it was not subscribed. */
  unsubscribe (channel) {
    if (this.#closeReason !== null) return false
    return this.#hub._unsubscribe(this, channel)
  }

  /** Who it was authorized as (a rule's grant, or attach's `user`), or null. */
  get user () {
    return this._auth?.user ?? null
  }

  /** True after a send() returned false for the high-water mark, until 'drain'. */
  get needDrain () {
    return this.#needDrain
  }

  /**
   * Resolves once the producer may go on: at once when nothing waits, else at the next
   * 'drain'. Rejects with ERR_SSE_CLIENT_CLOSED when the client has left or leaves first.
   */
  drain () {
    return this.#waitForDrain().then((open) => {
      if (!open) throw clientClosedError(this.id)
    })
  }

  /**
   * Sends every item of `source` (an async or sync iterable, or a Readable), pulling the next
   * one only while the client keeps up. Strings, Buffers and typed arrays are sent as the
   * `data` of an event; other items must be messages like send()'s. Resolves with
   * `{ sent, completed }` once the source ends (`completed: true`) or the client leaves first
   * (`completed: false`; the source is then closed). Rejects if the source throws or an item is
   * invalid.
   */
  async stream (source) {
    if (source === null || typeof source !== 'object' ||
        (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function')) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', 'client.stream(source): source must be an async iterable, an iterable or a Readable')
    }
    if (typeof source[Symbol.asyncIterator] !== 'function') return this.#streamSync(source[Symbol.iterator]())
    let sent = 0
    for await (const item of source) {
      if (this.#ended()) return { sent, completed: false }
      const queued = this.send(messageOf(item))
      if (this.#ended()) return { sent, completed: false }
      sent++
      if (!queued) {
        if (!(await this.#waitForDrain())) return { sent, completed: false }
      } else if (sent % YIELD_EVERY === 0) {
        await yieldToEventLoop()
      }
    }
    return { sent, completed: true }
  }

  /** stream() of a synchronous iterable: what it has at hand goes in batches. */
  async #streamSync (iterator) {
    let sent = 0
    let sinceYield = 0
    let completed = false
    try {
      for (;;) {
        if (this.#ended()) return { sent, completed: false }
        const items = []
        let chars = 0
        let done = false
        while (items.length < BATCH_ITEMS && chars < BATCH_CHARS) {
          const next = iterator.next()
          if (next.done) {
            done = true
            break
          }
          items.push(next.value)
          chars += typeof next.value === 'string' ? next.value.length : 64
        }
        if (items.length > 0) {
          const queued = this.#sendBatch(items)
          if (this.#ended()) return { sent, completed: false }
          sent += items.length
          sinceYield += items.length
          if (!queued) {
            if (!(await this.#waitForDrain())) return { sent, completed: false }
            sinceYield = 0
          } else if (sinceYield >= YIELD_EVERY) {
            sinceYield = 0
            await yieldToEventLoop()
          }
        }
        if (done) {
          completed = true
          return { sent, completed }
        }
      }
    } finally {
      if (!completed && typeof iterator.return === 'function') iterator.return()
    }
  }

  /**
   * Sends items as send() would, in one native call; returns as send() does. When one is
   * invalid none is queued by that call, so the ones before it are sent one by one and its own
   * error is thrown, as if each had been sent alone.
   */
  #sendBatch (items) {
    if (this.#ended()) return false
    let delivery
    try {
      delivery = this.#hub._sendItemsTo(this, items)
    } catch (error) {
      for (const item of items) this.send(messageOf(item))
      throw error
    }
    return this.#accepted(delivery)
  }

  /**
   * A Writable (object mode) that sends what is written to it, with backpressure: use it with
   * `stream.pipeline(source, client.writable())`. Items are sent as stream() sends them. When
   * the writable ends, the client is closed gracefully (pass `{ end: false }` to keep it open);
   * when the client leaves first, the writable is destroyed with ERR_SSE_CLIENT_CLOSED, which
   * stops the pipeline and its source.
   */
  writable (options) {
    const { end } = writableOptions(options)
    const onClose = () => writable.destroy(clientClosedError(this.id))
    const writable = new Writable({
      objectMode: true,
      write: (item, _encoding, callback) => {
        try {
          this.#afterWrite(this.send(messageOf(item)), callback)
        } catch (error) {
          callback(error)
        }
      },
      // What piled up while the writable waited goes in one call.
      writev: (chunks, callback) => {
        try {
          this.#afterWrite(this.#sendBatch(chunks.map((c) => c.chunk)), callback)
        } catch (error) {
          callback(error)
        }
      },
      final: (callback) => {
        if (end) this.close()
        callback()
      },
      destroy: (error, callback) => {
        this.removeListener('close', onClose)
        callback(error)
      }
    })
    if (this.#closeReason !== null) process.nextTick(onClose)
    else this.once('close', onClose)
    return writable
  }

  /** Ends the stream after what is already queued (later sends return false); 'close' follows with reason 'server'. */
  close () {
    if (this.#closeReason === null && !this.#closeRequested) {
      this.#closeRequested = true
      this.#hub._closeClient(this.id)
    }
  }

  /** True once the client has left. */
  get closed () {
    return this.#closeReason !== null
  }

  /** Why the client left ('client', 'error', 'timeout', 'slow', 'server', 'refused' or 'head'), or null. */
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

  /** Called by the hub once attached. */
  _connected ({ remoteAddress, remotePort }) {
    this.#remoteAddress = sharedAddress(remoteAddress)
    this.#remotePort = remotePort
    this.#connectedAt = Math.floor(performance.now() - EPOCH)
  }

  /** The hub's 'disconnect' info: what it got, from the hub's close event. */
  _departureInfo (channels, reason, events, bytes) {
    return { ...this._info(channels), reason, durationMs: performance.now() - EPOCH - this.#connectedAt, events, bytes }
  }

  /** The hub's 'connect' info. */
  _info (channels) {
    return {
      id: this.id,
      transport: this.transport,
      channels,
      remoteAddress: this.#remoteAddress,
      remotePort: this.#remotePort,
      lastEventId: this.lastEventId,
      resume: this.resume,
      resumed: this.resumed
    }
  }

  /** Called by the hub when a producer may go on. */
  _drained () {
    if (!this.#needDrain) return
    this.#needDrain = false
    this.emit('drain')
  }

  /** Called by the hub, exactly once. */
  _closed (reason) {
    this.#closeReason = reason
    if (this.#controller !== null) this.#controller.abort(reason)
    this.emit('close', reason)
  }

  /**
   * A client whose attach waited for an asynchronous authorization and was refused: it
   * becomes what attach would have returned at once, a refused client.
   */
  _refuse (reason) {
    this.#refusal = reason
    this.#closeReason = 'refused'
    if (this.#controller !== null) this.#controller.abort('refused')
    process.nextTick(() => this.emit('close', 'refused'))
  }

  /** Whether the producer may go on after a send: `delivery` is null for one that waits for
   *  the end of the turn, which answers from what the last delivery said. */
  #accepted (delivery) {
    if (delivery === null) return !this.#needDrain && !this.#gone
    this._delivered(delivery)
    return delivery === QUEUED
  }

  /** Called by the hub with the delivery of sends that crossed to Rust (see `_sendTo`). */
  _delivered (delivery) {
    if (delivery === ABOVE_HIGH_WATER) this.#needDrain = true
    else if (delivery === GONE) this.#gone = true
  }

  /** No more sending: it left, it is leaving, or close() was called. */
  #ended () {
    return this.#closeReason !== null || this.#closeRequested || this.#gone
  }

  /** Completes a write of writable(): at once, at the next 'drain', or with an error if the client left. */
  #afterWrite (queued, callback) {
    if (queued) return callback()
    if (this.#ended()) return callback(clientClosedError(this.id))
    this.#waitForDrain().then((open) => callback(open ? null : clientClosedError(this.id)))
  }

  /** Resolves true at the next 'drain' (at once when none is awaited), false if the client leaves. */
  #waitForDrain () {
    if (this.#closeReason !== null || this.#gone) return Promise.resolve(false)
    if (!this.#needDrain) return Promise.resolve(true)
    return new Promise((resolve) => {
      const onDrain = () => {
        this.removeListener('close', onClose)
        resolve(true)
      }
      const onClose = () => {
        this.removeListener('drain', onDrain)
        resolve(false)
      }
      this.once('drain', onDrain)
      this.once('close', onClose)
    })
  }
}

/**
 * A synchronous source to a client that keeps up would otherwise run in microtasks only, and
 * no timer or socket of the whole server would be served until it ended.
 */
function yieldToEventLoop () {
  return new Promise((resolve) => setImmediate(resolve))
}

module.exports = { Client }
