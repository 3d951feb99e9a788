'use strict'

// The Fetch transport: for frameworks and runtimes that answer a WHATWG `Request` with a
// `Response` (Hono, Next.js route handlers, Bun.serve, Deno.serve). There is no socket or `res`
// to take over, so the hub feeds the body of the `Response` it returns: a ReadableStream that
// gets the same batches as the Node transport (node-transport.js), from the same writer in Rust.
// Batches are acknowledged while the body's queue has room (relay-credit.js) and refused once
// it is full, until the runtime next reads, so a reader that stops backs up into the hub's
// bounded lag exactly as a socket would: the hub hands it nothing more, the stall watch runs,
// and the client is cut ('slow' or 'timeout').

const { sseError } = require('./errors')
const { STREAM_HEADERS } = require('./head')
const { Credit, FETCH_ACKNOWLEDGE_AT } = require('./relay-credit')

/**
 * Bytes the stream may hold before the writer waits for its reader: Node's default
 * writableHighWaterMark, so the Fetch transport holds what a response holds on the Node one.
 */
const QUEUE_BYTES = 16 * 1024

/**
 * How often the stall watch looks, as a share of writeTimeoutMs: a body is cut between
 * writeTimeoutMs and 1.25 x writeTimeoutMs after its reader last took anything.
 */
const WATCH_STEPS = 4

/**
 * A body whose reader waits keeps the process alive, as a socket being read does: the hub
 * writes it from Rust's threads, which the event loop does not see, so a script or a test that
 * reads a body with nothing else pending (`await reader.read()` after the last timer) would
 * exit before its events came. One handle for every body, referenced while any reader waits;
 * a body nobody reads holds nothing. A read given up without a cancel (`releaseLock()` while
 * it waits) tells the body nothing: it counts as waiting until the next write, a heartbeat
 * at the latest.
 */
let readersWaiting = 0
let readerHold = null
function readerWaits () {
  if (readersWaiting++ > 0) return
  if (readerHold === null) readerHold = setInterval(noop, 2 ** 31 - 1)
  else readerHold.ref()
}
function readerServed () {
  if (--readersWaiting === 0) readerHold.unref()
}
function noop () {}

/**
 * One client's response body, written by the hub. It keeps its own queue and gives the stream
 * (highWaterMark 0) bytes only when the runtime reads: a pull then always means that the
 * runtime is done with what it took before and asks for more. That is what lets the end be
 * handed over exactly: the body closes at the pull that finds nothing left, so `handedOver`
 * settles once the runtime has taken every byte and the end (hub.close() waits for it), where a
 * stream's own queue would let close() resolve with bytes the runtime never read.
 */
class StreamSink {
  #native
  #id
  #controller = null
  /** Batches written by the hub that the runtime has not asked for yet, and their bytes. */
  #queue = []
  #queuedBytes = 0
  /** The runtime's read is waiting: the next batch goes straight to it. */
  #readerWaiting = false
  /** A batch was queued above QUEUE_BYTES: acknowledge it once the runtime takes enough. */
  #awaitingTake = false
  #credit = new Credit(FETCH_ACKNOWLEDGE_AT)
  /** The hub wrote everything: the body closes once the queue is taken. */
  #ending = false
  /** The stream is closed, errored or cancelled: nothing more goes in. */
  #done = false
  #signal
  #onAbort = () => this.#leave()
  /** Bytes the runtime has taken since the start, and as many at the last look. */
  #taken = 0
  #takenAtLastLook = 0
  /** Looks in a row at which the runtime had something to take and took nothing. */
  #stalledLooks = 0
  #settle
  /**
   * Settles when the body is over: closed after the runtime took every byte (true), or cut,
   * cancelled or left (false).
   */
  handedOver = new Promise((resolve) => { this.#settle = resolve })

  /**
   * @param signal the request's AbortSignal (aborted when the peer leaves), or undefined
   */
  constructor (native, id, signal) {
    this.#native = native
    this.#id = id
    this.#signal = signal
    this.stream = new ReadableStream({
      start: (controller) => { this.#controller = controller },
      pull: () => this.#give(),
      // The framework stops reading the body when the peer goes away (or the runtime
      // cancels it): the client has left.
      cancel: () => {
        this.#finish(false)
        this.#leave()
      }
    }, { highWaterMark: 0 })
    if (signal !== undefined) signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** True when the request was aborted before the sink could watch it. */
  get alreadyClosed () {
    return this.#signal !== undefined && this.#signal.aborted
  }

  /**
   * Takes one batch. Returns what the relay acknowledges now (relay-credit.js): a count, 0, or
   * REFUSED once the queue is full (acknowledged when the runtime takes it).
   */
  write (bytes) {
    if (this.#done || this.#ending) return 0
    if (this.#readerWaiting) {
      this.#served()
      this.#taken += bytes.byteLength
      this.#controller.enqueue(bytes)
      return this.#credit.took(bytes.byteLength, true)
    }
    this.#queue.push(bytes)
    this.#queuedBytes += bytes.byteLength
    const room = this.#queuedBytes < QUEUE_BYTES
    if (!room) this.#awaitingTake = true
    return this.#credit.took(bytes.byteLength, room)
  }

  /** Ends the body after what was written: the reader sees a complete stream. */
  end () {
    if (this.#done || this.#ending) return
    this.#ending = true
    if (this.#readerWaiting) this.#give()
  }

  /**
   * Cuts the body: the queue is dropped and the framework aborts the response, as a destroyed
   * socket would be. The error is a premature close, which frameworks take for a peer that
   * went away (Hono logs one line at info level) rather than a failure to answer with a 500
   * written into the stream.
   */
  destroy () {
    if (this.#done) return
    this.#finish(false)
    const cut = new Error(`Premature close: the hub cut event stream ${this.#id}`)
    cut.code = 'ERR_STREAM_PREMATURE_CLOSE'
    this.#controller.error(cut)
  }

  /**
   * Stops listening once the client is gone. A body still open is cut, as in NodeSink; one
   * that is ending keeps its last bytes for the runtime to take.
   */
  detach () {
    if (this.#signal !== undefined) this.#signal.removeEventListener('abort', this.#onAbort)
    if (!this.#ending) this.destroy()
  }

  /**
   * One look of the stall watch: true when the body had bytes waiting at `limit` looks in a
   * row and the runtime took none of them. A body nobody reads (a Response created and
   * dropped, a framework that never started reading because its peer left first) holds only
   * its opening and heartbeats, a few bytes, so its queue would take about a day to fill.
   */
  stalled (limit) {
    if (this.#done) return false
    if (this.#queuedBytes === 0 || this.#taken !== this.#takenAtLastLook) {
      this.#takenAtLastLook = this.#taken
      this.#stalledLooks = 0
      return false
    }
    return ++this.#stalledLooks >= limit
  }

  /** Cuts a body whose reader stopped taking anything, as the write deadline cuts a socket. */
  timeOut () {
    this.#native.closeClient(this.#id, 'timeout')
  }

  /**
   * The runtime asks for more: it gets everything queued, as one chunk (a runtime writes each
   * chunk it reads on its own), or the end once everything was taken.
   */
  #give () {
    if (this.#done) return
    if (this.#queue.length === 0) {
      if (this.#ending) {
        this.#finish(true)
        this.#controller.close()
      } else if (!this.#readerWaiting) {
        this.#readerWaiting = true
        readerWaits()
      }
      return
    }
    const chunk = this.#queue.length === 1 ? this.#queue[0] : Buffer.concat(this.#queue, this.#queuedBytes)
    this.#taken += this.#queuedBytes
    this.#queue = []
    this.#queuedBytes = 0
    this.#controller.enqueue(chunk)
    if (this.#awaitingTake) {
      this.#awaitingTake = false
      this.#native.relayAcknowledged(this.#id, this.#credit.all())
    }
  }

  /** The waiting reader got something, or the body is over. */
  #served () {
    if (!this.#readerWaiting) return
    this.#readerWaiting = false
    readerServed()
  }

  #finish (handedOver) {
    this.#served()
    this.#done = true
    this.#queue = []
    this.#queuedBytes = 0
    this.#settle(handedOver)
  }

  #leave () {
    this.#native.closeClient(this.#id, 'client')
  }
}

/**
 * The write deadline of `hub.response()` bodies: one timer per hub, running while it has any,
 * that cuts each body whose reader took nothing for writeTimeoutMs while bytes waited for it
 * ('timeout', as a stalled socket). Rust's own deadline cannot see it: a batch is acknowledged
 * as soon as the body's queue has room, which an unread body keeps for hours.
 */
class StallWatch {
  #sinks = new Set()
  #timer = null
  #periodMs

  constructor (writeTimeoutMs) {
    this.#periodMs = Math.max(1, Math.ceil(writeTimeoutMs / WATCH_STEPS))
  }

  add (sink) {
    this.#sinks.add(sink)
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#look(), this.#periodMs)
      // A body someone reads keeps the process alive through its server, not through this.
      this.#timer.unref()
    }
  }

  delete (sink) {
    this.#sinks.delete(sink)
    if (this.#sinks.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }

  #look () {
    for (const sink of this.#sinks) {
      if (sink.stalled(WATCH_STEPS)) sink.timeOut()
    }
  }
}

/**
 * The most a Fetch body stays quiet under Bun: Bun.serve closes a response that wrote nothing
 * for its `idleTimeout`, 10 s unless set, which the hub's 15 s heartbeat would never beat.
 */
const BUN_QUIET_MS = 8000

/**
 * A Fetch body's own heartbeat period when the runtime needs one below the hub's (Bun), else
 * undefined (the hub's).
 */
function fetchHeartbeatMs (hubHeartbeatMs) {
  return typeof globalThis.Bun !== 'undefined' && hubHeartbeatMs > BUN_QUIET_MS ? BUN_QUIET_MS : undefined
}

/** Whether `value` looks like a WHATWG Request (of any runtime's or polyfill's making). */
function isFetchRequest (value) {
  return value !== null && typeof value === 'object' && typeof value.url === 'string' &&
    value.headers !== null && typeof value.headers === 'object' && typeof value.headers.get === 'function'
}

/** The event-stream head, with the application's own headers (CORS, ids) under it. */
function streamHeaders (extra) {
  let headers
  try {
    headers = new Headers(extra)
  } catch (error) {
    // The runtime's own TypeError (undici, Bun, Deno) has no code and names no option.
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
      `headers must be valid HTTP headers (names of token characters, values without CR, LF or NUL): ${error.message}`, error)
  }
  for (const [name, value] of Object.entries(STREAM_HEADERS)) headers.set(name, value)
  // A length or an encoding would corrupt an endless body.
  headers.delete('content-length')
  headers.delete('content-encoding')
  return headers
}

module.exports = { StreamSink, StallWatch, isFetchRequest, streamHeaders, fetchHeartbeatMs }
