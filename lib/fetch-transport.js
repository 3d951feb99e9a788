'use strict'

// The Fetch transport: for frameworks and runtimes that answer a WHATWG `Request` with a
// `Response` (Hono, Next.js route handlers, Bun.serve, Deno.serve). There is no socket or `res`
// to take over, so the hub feeds the body of the `Response` it returns: a ReadableStream that
// gets the same batches as the Node transport (node-transport.js), from the same writer in Rust.
// A batch is acknowledged once the stream's queue has room (at once, or at the next pull), so a
// reader that stops backs up into the hub's bounded lag exactly as a socket would: its batch
// stays unacknowledged, the write deadline runs, and the client is cut ('slow' or 'timeout').

const { STREAM_HEADERS } = require('./head')

/**
 * Bytes the stream may hold before the writer waits for its reader: Node's default
 * writableHighWaterMark, so the Fetch transport holds what a response holds on the Node one.
 */
const QUEUE_BYTES = 16 * 1024

const byteLength = (chunk) => chunk.byteLength

/**
 * How often the stall watch looks, as a share of writeTimeoutMs: a body is cut between
 * writeTimeoutMs and 1.25 x writeTimeoutMs after its reader last took anything.
 */
const WATCH_STEPS = 4

/** One client's response body, written by the hub. */
class StreamSink {
  #native
  #id
  #controller = null
  /** A batch was enqueued above the queue's mark: acknowledge it at the next pull. */
  #awaitingPull = false
  /** The stream is closed, errored or cancelled: nothing more goes in. */
  #done = false
  #signal
  #onAbort = () => this.#leave()
  /** Bytes enqueued since the start, and how many of them the reader had taken at the last look. */
  #enqueued = 0
  #takenAtLastLook = 0
  /** Looks in a row at which the reader had something to take and took nothing. */
  #stalledLooks = 0

  /**
   * @param signal the request's AbortSignal (aborted when the peer leaves), or undefined
   */
  constructor (native, id, signal) {
    this.#native = native
    this.#id = id
    this.#signal = signal
    this.stream = new ReadableStream({
      start: (controller) => { this.#controller = controller },
      pull: () => {
        if (!this.#awaitingPull) return
        this.#awaitingPull = false
        this.#native.relayWritable(this.#id)
      },
      // The framework stops reading the body when the peer goes away (or the runtime
      // cancels it): the client has left.
      cancel: () => {
        this.#done = true
        this.#leave()
      }
    }, { highWaterMark: QUEUE_BYTES, size: byteLength })
    if (signal !== undefined) signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** True when the request was aborted before the sink could watch it. */
  get alreadyClosed () {
    return this.#signal !== undefined && this.#signal.aborted
  }

  /** Enqueues one batch. True when the stream has room for more (acknowledge it now). */
  write (bytes) {
    if (this.#done) return false
    this.#enqueued += bytes.byteLength
    this.#controller.enqueue(bytes)
    if (this.#controller.desiredSize > 0) return true
    this.#awaitingPull = true
    return false
  }

  /** Ends the body after what was enqueued: the reader sees a complete stream. */
  end () {
    if (this.#done) return
    this.#done = true
    this.#controller.close()
  }

  /**
   * Cuts the body: the queue is dropped and the framework aborts the response, as a destroyed
   * socket would be. The error is a premature close, which frameworks take for a peer that
   * went away (Hono logs one line at info level) rather than a failure to answer with a 500
   * written into the stream.
   */
  destroy () {
    if (this.#done) return
    this.#done = true
    const cut = new Error(`Premature close: the hub cut event stream ${this.#id}`)
    cut.code = 'ERR_STREAM_PREMATURE_CLOSE'
    this.#controller.error(cut)
  }

  /** Stops listening once the client is gone; a body still open is cut, as in NodeSink. */
  detach () {
    if (this.#signal !== undefined) this.#signal.removeEventListener('abort', this.#onAbort)
    this.destroy()
  }

  /**
   * One look of the stall watch: true when the body had bytes waiting at `limit` looks in a
   * row and its reader took none of them. A body nobody reads (a Response created and
   * dropped, a framework that never started reading because its peer left first) holds only
   * its opening and heartbeats, a few bytes, so its queue would take about a day to fill.
   */
  stalled (limit) {
    if (this.#done) return false
    const waiting = QUEUE_BYTES - this.#controller.desiredSize
    const taken = this.#enqueued - waiting
    if (waiting <= 0 || taken !== this.#takenAtLastLook) {
      this.#takenAtLastLook = taken
      this.#stalledLooks = 0
      return false
    }
    return ++this.#stalledLooks >= limit
  }

  /** Cuts a body whose reader stopped taking anything, as the write deadline cuts a socket. */
  timeOut () {
    this.#native.closeClient(this.#id, 'timeout')
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

/** Whether `value` looks like a WHATWG Request (of any runtime's or polyfill's making). */
function isFetchRequest (value) {
  return value !== null && typeof value === 'object' && typeof value.url === 'string' &&
    value.headers !== null && typeof value.headers === 'object' && typeof value.headers.get === 'function'
}

/** The event-stream head, with the application's own headers (CORS, ids) under it. */
function streamHeaders (extra) {
  const headers = new Headers(extra)
  for (const [name, value] of Object.entries(STREAM_HEADERS)) headers.set(name, value)
  // A length or an encoding would corrupt an endless body.
  headers.delete('content-length')
  headers.delete('content-encoding')
  return headers
}

module.exports = { StreamSink, StallWatch, isFetchRequest, streamHeaders }
