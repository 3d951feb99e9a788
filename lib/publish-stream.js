'use strict'

// Resumable streams: an async iterable (an LLM SDK's stream, a ReadableStream, a generator)
// published into a channel as numbered events, so any number of clients follow it and one that
// reloads or reconnects, on any process of a Redis-linked hub, resumes exactly where it was.
// Nothing new underneath: the channel keeps its own history for the stream's lifetime, and
// resuming is placing the client's cursor past the last id it saw (Last-Event-ID, or the
// `lastEventId` query a reloaded page sends). The stream opens with `<id>.0`, which a client
// that has seen nothing resumes from (attach's `lastEventId` option) to get it from its start.

const { randomBytes } = require('node:crypto')
const { sseError } = require('./errors')
const { plainObject, rejectUnknownKeys, describe, messageOf } = require('./options')

/**
 * What the stream's channel keeps unless `history` says otherwise: a long answer whole, for ten
 * minutes after its last event, so a stream nobody reads still completes into it.
 */
const STREAM_HISTORY = Object.freeze({ maxEvents: 100_000, maxBytes: 16 * 1024 * 1024, maxAgeMs: 10 * 60 * 1000 })
const STREAM_KEYS = new Set(['id', 'event', 'startEvent', 'endEvent', 'errorEvent', 'history'])
/** Items taken from a synchronous source before the event loop gets a turn. */
const YIELD_EVERY = 1024
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}$/

function streamOptions (options) {
  const given = plainObject(options, 'publishStream options')
  rejectUnknownKeys(given, STREAM_KEYS, 'publishStream option')
  const id = given.id ?? randomBytes(9).toString('base64url')
  if (typeof id !== 'string' || !STREAM_ID.test(id)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream id must be 1 to 128 letters, digits, '_' or '-', got ${describe(id)}`)
  }
  const name = (key, fallback) => {
    const value = given[key] ?? fallback
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `publishStream ${key} must be a non-empty string, got ${describe(value)}`)
    }
    return value
  }
  return {
    id,
    event: name('event', undefined),
    startEvent: name('startEvent', 'start'),
    endEvent: name('endEvent', 'end'),
    errorEvent: name('errorEvent', 'stream-error'),
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
 * Publishes `source` into `channel` on `hub` (see Hub#publishStream). Returns the stream's
 * handle at once; `done` settles when the source ends, throws, or the hub closes.
 */
function publishStream (hub, channel, source, options) {
  const iterable = source !== null && typeof source === 'object'
  if (!iterable || (typeof source[Symbol.asyncIterator] !== 'function' && typeof source[Symbol.iterator] !== 'function')) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
      `publishStream(channel, source): source must be an async iterable (an LLM SDK stream, a ReadableStream, a generator) or an iterable, got ${describe(source)}`)
  }
  const { id, event, startEvent, endEvent, errorEvent, history } = streamOptions(options)
  if (history !== null) hub.channel(channel, { history })
  const startId = `${id}.0`
  hub.publish(channel, { event: startEvent, id: startId, data: id })
  const done = run(hub, channel, source, id, event, endEvent, errorEvent)
  return { id, startId, done }
}

async function run (hub, channel, source, id, event, endEvent, errorEvent) {
  let events = 0
  const sync = typeof source[Symbol.asyncIterator] !== 'function'
  const iterator = sync ? source[Symbol.iterator]() : source[Symbol.asyncIterator]()
  let finished = false
  try {
    for (;;) {
      const next = sync ? iterator.next() : await iterator.next()
      if (next.done) break
      hub.publish(channel, itemMessage(next.value, `${id}.${events + 1}`, event))
      events++
      if (sync && events % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    finished = true
    hub.publish(channel, { event: endEvent, id: `${id}.end`, data: JSON.stringify({ events }) })
    return { id, events, completed: true }
  } catch (error) {
    if (!finished && typeof iterator.return === 'function') {
      try { await iterator.return() } catch {}
    }
    try {
      hub.publish(channel, { event: errorEvent, id: `${id}.error`, data: JSON.stringify({ message: String(error?.message ?? error) }) })
    } catch {
      // The hub is closed, or Redis unreachable with its buffer full: the error is in `done`.
    }
    return { id, events, completed: false, error }
  }
}

module.exports = { publishStream, STREAM_HISTORY }
