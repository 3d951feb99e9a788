'use strict'

// Sends to single clients wait here until the end of the current turn of the event loop and
// cross to Rust together: one native call, one encode pass and one writer wakeup per client per
// turn instead of one of each per send. Only sends JS can tell the core will take wait (so a
// bad one still throws at its own call, with nothing of it sent); every other hub call sends
// what waits first (`flush()`), so the order of calls is the order on the wire.

const { messageArgs, messageOf } = require('./messages')
const { DeliveryCode } = require('./native')

/**
 * A turn that sends more than this (a synchronous loop) crosses every BATCH_ITEMS sends or
 * BATCH_CHARS characters; client.stream() takes a synchronous source in batches of the same size.
 */
const BATCH_ITEMS = 512
const BATCH_CHARS = 32 * 1024
/** A client's count of queued bytes after a send that did not wait: its next send that waits
 *  asks Rust first. */
const UNCOUNTED = Infinity
/** What a frame adds beyond its data, at most: `data: ` and line ends (8), and the `event:`,
 *  `id:` and `retry:` lines' names and ends. */
const FRAME_OVERHEAD = 64
const LINE_BREAK = /[\r\n]/
const LINE_BREAK_OR_NUL = /[\r\n\0]/

const { Gone: GONE, Queued: QUEUED, AboveHighWater: ABOVE_HIGH_WATER } = DeliveryCode

function isString (value) {
  return typeof value === 'string'
}

/** `message.data` when the message is `{ data: string }` and nothing else; else undefined. */
function dataAlone (message) {
  if (message === null || typeof message !== 'object') return undefined
  const data = message.data
  if (typeof data !== 'string') return undefined
  for (const key in message) if (key !== 'data') return undefined
  return data
}

/**
 * Messages (a string for data alone, else messageArgs()' array) as sendMany's parallel
 * arrays: data, then event, id and retry, each left out when no message has that field.
 */
function parallelArgs (items) {
  const data = new Array(items.length)
  let events, ids, retries
  for (let i = 0; i < items.length; i++) {
    const item = items[i]
    if (typeof item === 'string') {
      data[i] = item
      continue
    }
    const [itemData, event, eventId, retry] = item
    data[i] = itemData
    if (event !== undefined) (events ??= new Array(items.length))[i] = event
    if (eventId !== undefined) (ids ??= new Array(items.length))[i] = eventId
    if (retry !== undefined) (retries ??= new Array(items.length))[i] = retry
  }
  return [data, events, ids, retries]
}

/** Keeps what a crossing (`Sent`) says the client's queue holds; returns its delivery code. */
function took (client, sent) {
  client._queuedBytes = sent.queuedBytes
  return sent.delivery
}

class SendQueue {
  #native
  #clients
  #call
  #maxEventBytes
  #highWaterMark
  /**
   * The longest `data` alone whose frame is surely within maxEventBytes, with no scan for
   * line breaks: 3 UTF-8 bytes per UTF-16 unit and a `data: ` line (7 bytes) per unit at most.
   */
  #deferredDataChars
  /** Sends waiting for the end of this turn, in call order: the client ids, and for each a
   *  string (an event with data only) or messageArgs()' array; the first #count slots are
   *  used. The arrays are kept between turns: emptied by `length = 0`, V8 would drop their
   *  storage and grow it again seven times per batch. */
  #ids = []
  #items = []
  #count = 0
  #chars = 0
  #flushQueued = false
  #flushSoon = () => {
    this.#flushQueued = false
    this.flush()
  }

  /** No send waits any more: the native hub was shut down, so every call goes straight to it
   *  (and is refused there). */
  closed = false

  /**
   * @param native the NativeHub
   * @param clients the hub's Client by id
   * @param call runs a native call, turning its error into the public one
   */
  constructor (native, clients, call, { maxEventBytes, highWaterMark }) {
    this.#native = native
    this.#clients = clients
    this.#call = call
    this.#maxEventBytes = maxEventBytes
    this.#highWaterMark = highWaterMark
    this.#deferredDataChars = Math.floor((maxEventBytes - FRAME_OVERHEAD - 7) / 10)
  }

  /**
   * Sends `message` to `client`. Returns the native delivery code (gone, queued, queued above
   * the high-water mark), or null when the send waits for the end of the turn; its delivery
   * then reaches the client through `_delivered`.
   */
  send (client, message) {
    // The usual token, `{ data: 'text' }`, is taken without building messageArgs()' array.
    const data = dataAlone(message)
    if (data !== undefined && data.length <= this.#deferredDataChars && !this.closed) return this.#defer(client, data, data)
    const args = messageArgs(message)
    if (this.closed || !this.#surelyValid(args)) {
      this.flush()
      return took(client, this.#call(() => this.#native.send(client.id, ...args)))
    }
    const [text, event, eventId, retry] = args
    return this.#defer(client, event === undefined && eventId === undefined && retry === undefined ? text : args, text)
  }

  /**
   * Sends stream items (see messageOf) as one native call. All are checked before any is
   * queued; an invalid one throws and none is sent.
   */
  sendItems (client, items) {
    this.flush()
    const id = client.id
    let sent
    if (items.every(isString)) {
      sent = this.#call(() => this.#sendTexts(id, items))
    } else {
      const args = items.map((item) => typeof item === 'string' ? item : messageArgs(messageOf(item)))
      sent = this.#call(() => this.#native.sendMany(id, ...parallelArgs(args)))
    }
    return took(client, sent)
  }

  /**
   * Sends what waits, in call order: each run of sends to one client as one native call.
   * Returns the delivery of the run to `lastId` when it is the last run (else null).
   */
  flush (lastId) {
    const count = this.#count
    if (count === 0) return null
    const ids = this.#ids
    const items = this.#items
    let delivery = null
    for (let start = 0; start < count;) {
      const id = ids[start]
      let end = start + 1
      while (end < count && ids[end] === id) end++
      const sent = this.#sendRun(id, items, start, end)
      delivery = sent === null ? null : sent.delivery
      const client = this.#clients.get(id)
      if (client !== undefined) {
        client._delivered(delivery)
        client._queuedBytes = sent === null ? UNCOUNTED : sent.queuedBytes
      }
      start = end
    }
    const last = ids[count - 1]
    // Kept for the next turn's sends (nothing above calls back into JS), without the sent
    // strings: slots past #count stay undefined, which join() reads as ''.
    items.fill(undefined, 0, count)
    this.#count = 0
    this.#chars = 0
    return last === lastId ? delivery : null
  }

  /** Rust said the client's queue is down to half the mark ('drained'). */
  drained (client) {
    client._queuedBytes = Math.min(client._queuedBytes, this.#highWaterMark / 2)
  }

  /**
   * Holds one checked send until the end of the turn, or sends what waits now: when a batch is
   * full, or when this send may take the client past the high-water mark. The client's count
   * of queued bytes (Rust's at the last crossing, plus a bound of each frame held back since)
   * only ever overstates, so the send that crosses the mark is the one told to wait, as if
   * every send had crossed alone.
   */
  #defer (client, item, text) {
    const at = this.#count++
    this.#ids[at] = client.id
    this.#items[at] = item
    this.#chars += text.length
    // 3 UTF-8 bytes per UTF-16 unit at most, and the field name and line ends.
    client._queuedBytes += 3 * text.length + 8
    if ((!client.needDrain && client._queuedBytes > this.#highWaterMark) ||
        this.#count >= BATCH_ITEMS || this.#chars >= BATCH_CHARS) {
      // This call's own delivery is its run's, the last one flushed.
      return this.flush(client.id)
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true
      process.nextTick(this.#flushSoon)
    }
    return null
  }

  /**
   * Whether the core surely accepts these message arguments. Not the wire rules (the core
   * checks those, once): a cheap bound that lets a send wait only when it cannot fail later,
   * so that whatever might fail is sent at once and fails at its own call.
   */
  #surelyValid ([data, event, eventId]) {
    if (typeof data !== 'string') return false
    if (event !== undefined && LINE_BREAK.test(event)) return false
    if (eventId !== undefined && LINE_BREAK_OR_NUL.test(eventId)) return false
    // The encoded frame's bound, in UTF-8 bytes: 3 per UTF-16 unit at most, and a `data: `
    // prefix (7 bytes with its line end) per line.
    const lines = LINE_BREAK.test(data) ? data.length + 1 : 1
    const bound = 3 * (data.length + (event?.length ?? 0) + (eventId?.length ?? 0)) + 7 * lines + FRAME_OVERHEAD
    return bound <= this.#maxEventBytes
  }

  /** One client's waiting sends, `items[start..end)`, as one native call; each was checked
   *  when it was made. */
  #sendRun (id, items, start, end) {
    try {
      let texts = true
      for (let i = start; i < end && texts; i++) texts = typeof items[i] === 'string'
      if (texts) return this.#sendTexts(id, items, start, end)
      return this.#native.sendMany(id, ...parallelArgs(items.slice(start, end)))
    } catch (error) {
      // Not expected (each was checked): said, not thrown into whichever call flushed.
      process.emitWarning(`native-sse: ${end - start} sends to client ${id} failed: ${error.message}`, { code: error.code })
      return null
    }
  }

  /** Strings `texts[start..end)` as the data of events, in one native call (one string and
   *  their lengths). */
  #sendTexts (id, texts, start = 0, end = texts.length) {
    const lengths = new Uint32Array(end - start)
    for (let i = start; i < end; i++) lengths[i - start] = texts[i].length
    // The whole queue joins as it is (its unused slots are undefined: '').
    const joined = start === 0 && (end === texts.length || texts[end] === undefined)
      ? texts.join('')
      : texts.slice(start, end).join('')
    return this.#native.sendTexts(id, joined, lengths)
  }
}

module.exports = { SendQueue, BATCH_ITEMS, BATCH_CHARS, GONE, QUEUED, ABOVE_HIGH_WATER }
