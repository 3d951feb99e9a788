'use strict'

// Resumable streams: an async iterable (an LLM SDK's stream, a ReadableStream, a generator)
// published into a channel as numbered events, so any number of clients follow it and one that
// reloads or reconnects, on any process of a Redis-linked hub, resumes exactly where it was.
// Nothing new underneath: while the stream runs, and for its history's age bound after, the
// channel keeps at least the stream's history (a hold in the core, which then lets the channel
// go back to its own), and resuming is placing the client's cursor past the last id it saw
// (Last-Event-ID, or the `lastEventId` query a reloaded page sends). The stream opens with
// `<id>.0`, which a client that has seen nothing resumes from (attach's `lastEventId` option)
// to get it from its start.

const { randomBytes } = require('node:crypto')
const { sseError } = require('./errors')
const { plainObject, rejectUnknownKeys, describe } = require('./checks')
const { messageOf, bufferOf } = require('./messages')
const { channelOptions } = require('./options')

/**
 * What the stream's channel keeps unless `history` says otherwise: a long answer whole, for ten
 * minutes after its last event, so a stream nobody reads still completes into it.
 */
const STREAM_HISTORY = Object.freeze({ maxEvents: 100_000, maxBytes: 16 * 1024 * 1024, maxAgeMs: 10 * 60 * 1000 })
const STREAM_KEYS = new Set(['id', 'event', 'startEvent', 'endEvent', 'errorEvent', 'errorData', 'history', 'signal'])
/** Items taken from a synchronous source before the event loop gets a turn. */
const YIELD_EVERY = 1024
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}$/
/**
 * What subscribers are told when the source fails and no `errorData` says otherwise: a
 * source's error text (an SDK's, with keys and account names in it) is the server's business.
 */
const GENERIC_ERROR = Object.freeze({ message: 'stream failed' })
/** How long an ended stream waits for its source's `return()` before settling `done`. */
const RETURN_WAIT_MS = 1000

function noop () {}

function streamOptions (options) {
  const given = plainObject(options, 'publishStream options')
  rejectUnknownKeys(given, STREAM_KEYS, 'publishStream option')
  const id = given.id ?? randomBytes(9).toString('base64url')
  if (typeof id !== 'string' || !STREAM_ID.test(id)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream id must be 1 to 128 letters, digits, '_' or '-', got ${describe(id)}`)
  }
  const name = (key, fallback) => {
    const value = given[key] ?? fallback
    // Checked once here: the stream's tokens go to the core without a per-token check.
    if (value !== undefined && (typeof value !== 'string' || value === '' || !value.isWellFormed() || /[\r\n]/.test(value))) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream ${key} must be a non-empty, well-formed string without CR or LF, got ${describe(value)}`)
    }
    return value
  }
  if (given.errorData !== undefined && typeof given.errorData !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream errorData must be a function (error) => data, got ${describe(given.errorData)}`)
  }
  const signal = given.signal
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' ||
      typeof signal.addEventListener !== 'function' || typeof signal.removeEventListener !== 'function')) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream signal must be an AbortSignal, got ${describe(signal)}`)
  }
  return {
    id,
    event: name('event', undefined),
    startEvent: name('startEvent', 'start'),
    endEvent: name('endEvent', 'end'),
    errorEvent: name('errorEvent', 'stream-error'),
    errorData: given.errorData,
    signal,
    history: given.history === false ? null : { ...STREAM_HISTORY, ...plainObject(given.history, 'publishStream history') }
  }
}

/** The message for one item: its data, the stream's numbered id, the stream's event name. */
function itemMessage (item, id, event) {
  if (item !== null && typeof item === 'object' && typeof item.then === 'function') {
    // A sync iterable of promises (an array of fetches): read as a message, it "has no data".
    throw sseError(TypeError, 'ERR_SSE_INVALID_MESSAGE',
      'publishStream items must be text, bytes or messages, got a Promise: give an async iterable (an async generator that awaits each one) to publish what promises resolve to')
  }
  const message = messageOf(item)
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return message // publish() says what is wrong
  if (message.id !== undefined) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_MESSAGE', 'publishStream numbers its events itself; leave id out of the items')
  }
  return event !== undefined && message.event === undefined ? { ...message, id, event } : { ...message, id }
}

/**
 * The streams of one hub that are running: their ids (one live stream per id, or two would
 * interleave `<id>.1` twice and neither could be resumed) and how to stop each.
 */
class ResumableStreams {
  #hub
  #native
  #call
  #publishData
  /** Live stream id -> its LiveStream. */
  #live = new Map()

  /**
   * @param hub the Hub (publish, closed)
   * @param native the NativeHub (history holds)
   * @param call runs a native call as the hub does (queued sends first, errors translated)
   * @param publishData `(channel, data, event, id)`: a string or Buffer item, checked only by the core
   */
  constructor (hub, native, call, publishData) {
    this.#hub = hub
    this.#native = native
    this.#call = call
    this.#publishData = publishData
  }

  /** Streams running now. */
  get size () {
    return this.#live.size
  }

  /** Publishes `source` into `channel`, a name Hub#publishStream checked (see there). */
  start (channel, source, options) {
    const iterable = source !== null && typeof source === 'object'
    if (!iterable || (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function')) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
        `publishStream(channel, source): source must be an async iterable (an LLM SDK stream, a ReadableStream, a generator) or an iterable, got ${describe(source)}`)
    }
    const settings = streamOptions(options)
    const { id, startEvent, history } = settings
    if (this.#live.has(id)) {
      throw sseError(Error, 'ERR_SSE_STREAM_LIVE',
        `publishStream: a stream with id '${id}' is still running; give each stream its own id (or leave id out for a random one), or stop the first one (its signal option) before reusing it`)
    }
    if (this.#hub.closed) {
      throw sseError(Error, 'ERR_SSE_HUB_CLOSED', 'publishStream: the hub is closed')
    }
    // Its ids again beside the first run's: a resume into either would be ambiguous.
    if (this.#call(() => this.#native.channelHoldsStream(channel, id, [`${id}.end`, `${id}.error`]))) {
      throw sseError(Error, 'ERR_SSE_STREAM_HELD',
        `publishStream: channel '${channel}' still holds events with the ids of stream '${id}' ('${id}.1', '${id}.end', … of an earlier stream), and a second one with that id would make resumes into either ambiguous. ` +
        'Give each stream its own id (or leave id out for a random one). The channel lets them go as its history does: the stream\'s history.maxAgeMs after it ended, or later where the channel keeps history of its own')
    }
    const hold = history === null ? null : this.#hold(channel, history)
    const startId = `${id}.0`
    try {
      this.#hub.publish(channel, { event: startEvent, id: startId, data: id })
    } catch (error) {
      if (hold !== null) this.#native.releaseChannelHistory(channel, hold)
      throw error
    }
    const stream = new LiveStream(this.#hub, this.#publishData, channel, settings, () => {
      this.#live.delete(id)
      if (hold !== null) releaseQuietly(this.#native, channel, hold)
    })
    this.#live.set(id, stream)
    return { id, startId, done: stream.run(source) }
  }

  /** Keeps `channel`'s history at least as `history` says while the stream runs; its hold's id. */
  #hold (channel, history) {
    const { historyMaxEvents, historyMaxBytes, historyMaxAgeMs } = channelOptions({ history }).history
    return this.#call(() => this.#native.holdChannelHistory(channel, historyMaxEvents, historyMaxBytes, historyMaxAgeMs))
  }

  /** Ends every running stream (the hub is closing): each `done` settles with `error`. */
  stopAll (error) {
    for (const stream of [...this.#live.values()]) stream.stop(error)
  }
}

/**
 * One running stream: its source's items published as `<id>.<n>` until the source ends, fails
 * or is stopped, then its end or error event (once, whichever comes first: a stop publishes its
 * error event at once, before the hub ends anyone). A live stream holds this object, its two
 * pull callbacks and its `done` for as long as the source runs (an answer streams for
 * minutes, a server runs many at once): nothing else is kept per stream, and nothing is built
 * per item that publishing a string or bytes item does not need (an async loop would allocate
 * an await's promises and a stop race per item). A stop ends the stream at once, even while
 * the source is stuck in an await; what it answers later is dropped.
 */
class LiveStream {
  #hub
  #publishData
  #channel
  #settings
  /** Called once the outcome is decided: the stream leaves the live set, its hold goes. */
  #released
  #iterator = undefined
  #sync = false
  /** Items published. */
  #events = 0
  /** Whether the end or error event went out. */
  #ended = false
  /** Whether the outcome is decided: what the source answers after it is dropped. */
  #over = false
  /** `{ error }` once stopped (the signal aborted, the hub is closing). */
  #stopped = undefined
  #resolve = noop
  #onNext = (next) => this.#next(next)
  #onError = (error) => this.#failed(error)
  #onAbort = null

  constructor (hub, publishData, channel, settings, released) {
    this.#hub = hub
    this.#publishData = publishData
    this.#channel = channel
    this.#settings = settings
    this.#released = released
  }

  /** Runs the source until its outcome; resolves with it (never rejects). */
  run (source) {
    return new Promise((resolve) => {
      this.#resolve = resolve
      try {
        const { signal, id } = this.#settings
        if (signal !== undefined) {
          this.#onAbort = () => this.stop(signal.reason ?? sseError(Error, 'ERR_SSE_STOPPED', `publishStream '${id}' was aborted`))
          if (signal.aborted) this.#onAbort()
          else signal.addEventListener('abort', this.#onAbort, { once: true })
        }
        this.#sync = typeof source[Symbol.asyncIterator] !== 'function'
        this.#iterator = this.#sync ? source[Symbol.iterator]() : source[Symbol.asyncIterator]()
        if (this.#stopped !== undefined) throw this.#stopped.error
        if (this.#sync) this.#pumpSync()
        else this.#pull()
      } catch (error) {
        this.#failed(error)
      }
    })
  }

  /** Stops the stream: its error event goes out now, and `done` settles with `error`. */
  stop (error) {
    this.#fail(error)
    if (this.#stopped !== undefined) return
    this.#stopped = { error }
    // A synchronous source is checked between items; an async one may be stuck in an await.
    if (!this.#sync && this.#iterator !== undefined) this.#failed(error)
  }

  #pull () {
    Promise.resolve(this.#iterator.next()).then(this.#onNext, this.#onError)
  }

  #next (next) {
    if (this.#over) return
    try {
      if (this.#stopped !== undefined) throw this.#stopped.error
      if (next.done) return this.#finished()
      this.#publishItem(next.value)
      this.#pull()
    } catch (error) {
      this.#failed(error)
    }
  }

  /** A synchronous source, checked for a stop between items: nothing else runs while it yields. */
  async #pumpSync () {
    try {
      for (;;) {
        if (this.#stopped !== undefined) throw this.#stopped.error
        const next = this.#iterator.next()
        // Stopped from inside next() (an abort the source itself caused): its item is dropped,
        // as an async source's is.
        if (this.#stopped !== undefined) throw this.#stopped.error
        if (next.done) break
        this.#publishItem(next.value)
        if (this.#events % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve))
      }
    } catch (error) {
      return this.#failed(error)
    }
    this.#finished()
  }

  #publishItem (item) {
    const n = this.#events + 1
    const { id, event } = this.#settings
    const itemId = `${id}.${n}`
    if (typeof item === 'string') this.#publishData(this.#channel, item, event, itemId)
    else if (ArrayBuffer.isView(item)) this.#publishData(this.#channel, bufferOf(item), event, itemId)
    else this.#hub.publish(this.#channel, itemMessage(item, itemId, event))
    this.#events = n
  }

  /** The source ended: the end event, unless a stop's error event went out first. */
  #finished () {
    if (this.#over) return
    this.#over = true
    const { id } = this.#settings
    const events = this.#events
    let outcome
    try {
      outcome = this.#finish(events) ? { id, events, completed: true } : this.#outcome(this.#stopped?.error)
    } catch (error) {
      // The hub closed, or Redis is away with its buffer full, just as the source ended.
      outcome = this.#outcome(error)
    }
    this.#settle(outcome)
  }

  /** The source failed, or the stream was stopped: the error event, and the source is told. */
  #failed (error) {
    if (this.#over) return
    this.#over = true
    this.#fail(error)
    const outcome = this.#outcome(error)
    const settle = () => this.#settle(outcome)
    endSource(this.#iterator).then(settle, settle)
  }

  #outcome (error) {
    return { id: this.#settings.id, events: this.#events, completed: false, error }
  }

  /** Settles `done` once the outcome is decided; whatever the signal's removal does, it settles. */
  #settle (outcome) {
    try {
      if (this.#onAbort !== null) this.#settings.signal.removeEventListener('abort', this.#onAbort)
    } catch {}
    this.#released()
    this.#resolve(outcome)
  }

  #fail (error) {
    if (this.#ended) return
    this.#ended = true
    const { id, errorEvent, errorData } = this.#settings
    publishError(this.#hub, this.#channel, { event: errorEvent, id: `${id}.error` }, errorData, error)
  }

  #finish (events) {
    if (this.#ended) return false
    this.#ended = true
    const { id, endEvent } = this.#settings
    this.#hub.publish(this.#channel, { event: endEvent, id: `${id}.end`, data: JSON.stringify({ events }) })
    return true
  }
}

/**
 * Tells the source to stop (`iterator.return()`: an SDK aborts its request, a ReadableStream
 * is cancelled). A source stuck in an await may never answer: waited for only a moment.
 */
async function endSource (iterator) {
  let timer
  try {
    // An iterator may be anything its source made (null, a return getter that throws).
    if (iterator == null || typeof iterator.return !== 'function') return
    await Promise.race([
      Promise.resolve(iterator.return()).catch(noop),
      new Promise((resolve) => { timer = setTimeout(resolve, RETURN_WAIT_MS) })
    ])
  } catch {
    // A return() that throws synchronously: the source is left as it is.
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Publishes the error event with what the app's `errorData(error)` returns as its data, or
 * the generic message when there is no errorData, it throws, returns undefined or something
 * publish() refuses. Never throws: the hub may be closed, or Redis away with its buffer full;
 * the error is in `done` either way.
 */
function publishError (hub, channel, fields, errorData, error) {
  if (errorData !== undefined) {
    try {
      const data = errorData(error)
      if (data !== undefined) {
        hub.publish(channel, { ...fields, data })
        return
      }
    } catch {}
  }
  try {
    hub.publish(channel, { ...fields, data: GENERIC_ERROR })
  } catch {}
}

function releaseQuietly (native, channel, hold) {
  try {
    native.releaseChannelHistory(channel, hold)
  } catch {
    // The hub shut down: its channels went with it.
  }
}

module.exports = { ResumableStreams, STREAM_HISTORY }
