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

/**
 * A stream's stop: why, once stopped, and the one listener a waiting stream gives it. A stop
 * does not wait for the source: a source stuck in an await is left to answer (or never), and
 * what it answers then is dropped.
 */
class Stopper {
  /** `{ error }` once stopped. */
  reason = undefined
  #listener = noop

  stop (error) {
    if (this.reason !== undefined) return
    this.reason = { error }
    this.#listener()
  }

  /** Calls `listener` when the stream is stopped. */
  onStop (listener) {
    this.#listener = listener
  }
}

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
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function')) {
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
  /** Live stream id -> its stop function. */
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

  /** Publishes `source` into `channel` (see Hub#publishStream). */
  start (channel, source, options) {
    const iterable = source !== null && typeof source === 'object'
    if (!iterable || (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function')) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
        `publishStream(channel, source): source must be an async iterable (an LLM SDK stream, a ReadableStream, a generator) or an iterable, got ${describe(source)}`)
    }
    const settings = streamOptions(options)
    const { id, startEvent, history, signal } = settings
    if (this.#live.has(id)) {
      throw sseError(Error, 'ERR_SSE_STREAM_LIVE',
        `publishStream: a stream with id '${id}' is still running; give each stream its own id (or leave id out for a random one), or stop the first one (its signal option) before reusing it`)
    }
    if (this.#hub.closed) {
      throw sseError(Error, 'ERR_SSE_HUB_CLOSED', 'publishStream: the hub is closed')
    }
    const hold = history === null ? null : this.#hold(channel, history)
    const startId = `${id}.0`
    try {
      this.#hub.publish(channel, { event: startEvent, id: startId, data: id })
    } catch (error) {
      if (hold !== null) this.#native.releaseChannelHistory(channel, hold)
      throw error
    }
    // The stream ends once, with the end event or the error event, whichever comes first: a
    // stop (abort, hub closing) publishes its error event at once, before the hub ends anyone.
    let ended = false
    const fail = (error) => {
      if (ended) return
      ended = true
      publishError(this.#hub, channel, { event: settings.errorEvent, id: `${id}.error` }, settings.errorData, error)
    }
    const finish = (events) => {
      if (ended) return false
      ended = true
      this.#hub.publish(channel, { event: settings.endEvent, id: `${id}.end`, data: JSON.stringify({ events }) })
      return true
    }
    const stopper = new Stopper()
    const stop = (reason) => {
      fail(reason)
      stopper.stop(reason)
    }
    this.#live.set(id, stop)
    const onAbort = () => stop(signal.reason ?? sseError(Error, 'ERR_SSE_STOPPED', `publishStream '${id}' was aborted`))
    if (signal !== undefined) {
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
    const done = this.#run(channel, source, settings, stopper, fail, finish)
      .catch((error) => ({ id, events: 0, completed: false, error }))
      .finally(() => {
        this.#live.delete(id)
        if (signal !== undefined) signal.removeEventListener('abort', onAbort)
        if (hold !== null) releaseQuietly(this.#native, channel, hold)
      })
    return { id, startId, done }
  }

  /** Keeps `channel`'s history at least as `history` says while the stream runs; its hold's id. */
  #hold (channel, history) {
    const { historyMaxEvents, historyMaxBytes, historyMaxAgeMs } = channelOptions({ history }).history
    return this.#call(() => this.#native.holdChannelHistory(channel, historyMaxEvents, historyMaxBytes, historyMaxAgeMs))
  }

  /** Ends every running stream (the hub is closing): each `done` settles with `error`. */
  stopAll (error) {
    for (const stop of [...this.#live.values()]) stop(error)
  }

  /**
   * Publishes the source's items until it ends, fails or is stopped; resolves with the
   * stream's outcome. Each item costs what publishing it needs and no more: a token is a
   * fraction of a kilobyte, and a live stream's memory is what its tokens leave behind, so
   * nothing is built per item that a string or bytes item does not need.
   */
  #run (channel, source, { id, event }, stopper, fail, finish) {
    const outcome = (events, error) => ({ id, events, completed: false, error })
    const sync = typeof source[Symbol.asyncIterator] !== 'function'
    let iterator
    try {
      iterator = sync ? source[Symbol.iterator]() : source[Symbol.asyncIterator]()
    } catch (error) {
      fail(error)
      return Promise.resolve(outcome(0, error))
    }
    const publishItem = (item, n) => {
      const itemId = `${id}.${n}`
      if (typeof item === 'string') return this.#publishData(channel, item, event, itemId)
      if (ArrayBuffer.isView(item)) return this.#publishData(channel, bufferOf(item), event, itemId)
      this.#hub.publish(channel, itemMessage(item, itemId, event))
    }
    const failed = async (events, error) => {
      fail(error)
      await endSource(iterator)
      return outcome(events, error)
    }
    const finished = (events) => {
      try {
        if (!finish(events)) return outcome(events, stopper.reason?.error)
      } catch (error) {
        // The hub closed, or Redis is away with its buffer full, just as the source ended.
        return outcome(events, error)
      }
      return { id, events, completed: true }
    }
    return sync
      ? pumpSync(iterator, stopper, publishItem, failed, finished)
      : pumpAsync(iterator, stopper, publishItem, failed, finished)
  }
}

/** A synchronous source, checked for a stop between items: nothing else runs while it yields. */
async function pumpSync (iterator, stopper, publishItem, failed, finished) {
  let events = 0
  try {
    for (;;) {
      if (stopper.reason !== undefined) throw stopper.reason.error
      const next = iterator.next()
      if (next.done) break
      publishItem(next.value, events + 1)
      events++
      if (events % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  } catch (error) {
    return failed(events, error)
  }
  return finished(events)
}

/**
 * An async source, pulled one item at a time by two callbacks made once per stream (an
 * async loop would allocate an await's promises and a stop race per item). A stop ends the
 * stream at once, even while the source is stuck in an await; what it answers later is
 * dropped.
 */
function pumpAsync (iterator, stopper, publishItem, failed, finished) {
  return new Promise((resolve) => {
    let events = 0
    let over = false
    const fail = (error) => {
      if (over) return
      over = true
      resolve(failed(events, error))
    }
    const onNext = (next) => {
      if (over) return
      try {
        if (stopper.reason !== undefined) throw stopper.reason.error
        if (next.done) {
          over = true
          return resolve(finished(events))
        }
        publishItem(next.value, events + 1)
        events++
        pull()
      } catch (error) {
        fail(error)
      }
    }
    const pull = () => {
      Promise.resolve(iterator.next()).then(onNext, fail)
    }
    stopper.onStop(() => fail(stopper.reason.error))
    try {
      if (stopper.reason !== undefined) throw stopper.reason.error
      pull()
    } catch (error) {
      fail(error)
    }
  })
}

/**
 * Tells the source to stop (`iterator.return()`: an SDK aborts its request, a ReadableStream
 * is cancelled). A source stuck in an await may never answer: waited for only a moment.
 */
async function endSource (iterator) {
  if (iterator === undefined || typeof iterator.return !== 'function') return
  let timer
  try {
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
