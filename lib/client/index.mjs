// native-sse/client: a dependency-free EventSource client for browsers and Node 20+, typed by
// the same event map as createHub<Events>(). Two transports: the browser's EventSource where it
// suffices, and a fetch stream reader when the app needs request headers, a body or credentials
// control. Either way it resumes with Last-Event-ID, honours `retry:`, stops where the spec
// says to, and backs off with jitter on failures in a row.

import { createParser } from './parse.mjs'
import { reconnectDelay, retryAfterMs } from './backoff.mjs'
import { PresenceLists } from './presence.mjs'

// Each option: its default, a check, and what the check expects (for the error message).
const oneOf = (...values) => [(v) => values.includes(v), `one of ${values.join(', ')}`]
const NAMES = [(v) => Array.isArray(v) && v.every((n) => typeof n === 'string'), 'an array of event names']
const DELAY = [(v) => typeof v === 'number' && v >= 0 && v < Infinity, 'a non-negative number']
const FUNCTION = [(v) => v === undefined || typeof v === 'function', 'a function']
const BOOLEAN = [(v) => typeof v === 'boolean', 'a boolean']
const NAME = [(v) => typeof v === 'string' && v !== '', 'a non-empty string']
const OPTIONS = {
  transport: ['auto', oneOf('auto', 'eventsource', 'fetch')],
  headers: [undefined, [(v) => v === undefined || typeof v === 'function' || (typeof v === 'object' && v !== null),
    'an object or a function returning one']],
  method: ['GET', NAME],
  body: [undefined, [() => true]],
  credentials: ['same-origin', oneOf('omit', 'same-origin', 'include')],
  lastEventId: ['', [(v) => typeof v === 'string' && !/[\r\n\0]/.test(v), 'a string without CR, LF or NUL']],
  lastEventIdQuery: ['lastEventId', [(v) => v === false || NAME[0](v), 'a non-empty string or false']],
  retryMs: [1000, DELAY],
  maxRetryMs: [30000, DELAY],
  text: [[], NAMES],
  events: [[], NAMES],
  resetEvent: ['sse-reset', NAME],
  revokedEvent: ['sse-revoked', NAME],
  presenceEvent: ['sse-presence', NAME],
  pauseWhenHidden: [false, BOOLEAN],
  pauseWhenOffline: [true, BOOLEAN],
  fetch: [undefined, FUNCTION],
  EventSource: [undefined, FUNCTION],
  onOpen: [undefined, FUNCTION],
  onError: [undefined, FUNCTION],
  onReset: [undefined, FUNCTION],
  onRevoke: [undefined, FUNCTION],
  onPresence: [undefined, FUNCTION],
  onClose: [undefined, FUNCTION]
}
const CONNECTING = 0
/** The longest delay setTimeout keeps (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

/** `text` as its UTF-8 bytes, one character each: the form a header value can carry. */
function utf8Bytes (text) {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text
  let out = ''
  for (const byte of new TextEncoder().encode(text)) out += String.fromCharCode(byte)
  return out
}

function fail (Kind, code, message) {
  const error = new Kind(message)
  error.code = code
  return error
}

function check (ok, name, expected, value) {
  if (!ok) {
    const got = value === null ? 'null' : typeof value === 'string' ? JSON.stringify(value) : typeof value
    throw fail(TypeError, 'ERR_SSE_INVALID_OPTION', `connect(): ${name} must be ${expected}, got ${got}`)
  }
}

/**
 * `url` as an absolute http(s) URL: a relative one resolves against the page (as EventSource and
 * fetch would). Throws where it cannot: a relative URL with no page (Node, server-side
 * rendering) would otherwise fail every attempt and retry forever.
 */
function resolveUrl (url) {
  let base
  try {
    base = globalThis.document?.baseURI ?? globalThis.location?.href
  } catch {} // A runtime whose `location` getter throws when it has none.
  const given = String(url)
  let resolved
  try {
    resolved = new URL(given, base)
  } catch {}
  if (resolved === undefined && base === undefined && !/^[a-z][a-z\d+.-]*:/i.test(given)) {
    throw fail(TypeError, 'ERR_SSE_INVALID_OPTION', `connect(): url ${JSON.stringify(given)} is relative and ` +
      'there is no page to resolve it against (no document or location): outside a browser pass an ' +
      'absolute http(s) URL; during server-side rendering, connect in an effect or after mount')
  }
  check(/^https?:$/.test(resolved?.protocol), 'url', 'an http(s) URL', given)
  return resolved.href
}

function optionsOf (given) {
  check(typeof given === 'object' && given !== null, 'options', 'an object', given)
  for (const key in given) {
    if (!(key in OPTIONS)) {
      throw fail(TypeError, 'ERR_SSE_UNKNOWN_OPTION',
        `connect(): unknown option '${key}'; allowed: ${Object.keys(OPTIONS).join(', ')}`)
    }
  }
  const o = {}
  for (const [key, [fallback, [valid, expected]]] of Object.entries(OPTIONS)) {
    const value = given[key] === undefined ? fallback : given[key]
    check(valid(value), key, expected, value)
    o[key] = value
  }
  return o
}

/** What an HTTP answer means for the stream: read it, stop for good, or try again later. */
function verdict (response, probing) {
  const status = response.status
  if (status === 204) return 'stop'
  if (response.ok) return /^text\/event-stream\b/i.test(response.headers.get('content-type') ?? '') ? 'ok' : 'stop'
  // A HEAD refused as a method says nothing about the stream.
  if (probing && (status === 405 || status === 501)) return 'retry'
  return status >= 400 && status < 500 && status !== 408 && status !== 429 ? 'stop' : 'retry'
}

function report (error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error)
  else setTimeout(() => { throw error })
}

class SseClient {
  #url
  #o
  #fetch
  #EventSource
  #useFetch
  #state = 'connecting'
  #lastEventId
  #retryMs
  #failures = 0
  #timer = null
  #abort = null
  #source = null
  #listened = new Set()
  #handlers = new Map()
  #iterators = new Set()
  /** Who is in each channel, from the hub's presence events. */
  #presence = new PresenceLists()
  #stopped = null
  #unwatch = () => {}

  constructor (url, options) {
    check(typeof url === 'string' || url instanceof URL, 'url', 'a string or a URL', url)
    const o = optionsOf(options)
    this.#o = o
    this.#url = resolveUrl(url)
    this.#fetch = o.fetch ?? globalThis.fetch
    this.#EventSource = o.EventSource ?? globalThis.EventSource
    const needsFetch = o.headers !== undefined || o.method !== 'GET' || o.body !== undefined ||
      o.credentials !== 'same-origin' || this.#EventSource === undefined
    this.#useFetch = o.transport === 'fetch' || (o.transport === 'auto' && needsFetch)
    if (this.#useFetch && this.#fetch === undefined) {
      throw fail(Error, 'ERR_SSE_TRANSPORT_UNAVAILABLE', 'connect(): no fetch() here; pass options.fetch')
    }
    if (!this.#useFetch && this.#EventSource === undefined) {
      throw fail(Error, 'ERR_SSE_TRANSPORT_UNAVAILABLE', "connect(): no EventSource here; use transport: 'fetch'")
    }
    this.#lastEventId = o.lastEventId
    this.#retryMs = o.retryMs
    this.#watchPage()
    this.#connect()
  }

  /** `'connecting'`, `'open'`, `'paused'` (hidden or offline) or `'closed'` (for good). */
  get state () { return this.#state }
  /** The id of the last event received (or given as `lastEventId`): what a reconnect resumes from. */
  get lastEventId () { return this.#lastEventId }
  /** The reconnection delay: the server's last `retry:`, else the `retryMs` option. */
  get retryMs () { return this.#retryMs }
  /** `'fetch'` or `'eventsource'`. */
  get transport () { return this.#useFetch ? 'fetch' : 'eventsource' }

  on (event, handler) {
    this.#checkListener(event, handler)
    let set = this.#handlers.get(event)
    if (set === undefined) this.#handlers.set(event, set = new Set())
    set.add(handler)
    this.#listen(event)
    return this
  }

  /** Who is in `channel` now: `[{ user, data }]`, a new array each call; `[]` before its snapshot. */
  members (channel) {
    return this.#presence.members(channel)
  }

  off (event, handler) {
    this.#checkListener(event, handler)
    this.#handlers.get(event)?.delete(handler)
    return this
  }

  /** Closes the stream for good; iterators end. */
  close () {
    this.#stop({ reason: 'closed' })
  }

  [Symbol.asyncIterator] () {
    const queue = []
    let wake = null
    const sink = { push: (item) => { queue.push(item); wake?.() }, wake: () => wake?.() }
    this.#iterators.add(sink)
    const done = () => {
      this.#iterators.delete(sink)
      return { value: undefined, done: true }
    }
    return {
      next: async () => {
        for (;;) {
          if (queue.length > 0) return { value: queue.shift(), done: false }
          if (this.#stopped !== null) {
            const stopped = this.#stopped
            done()
            if (stopped.reason === 'closed') return { value: undefined, done: true }
            const error = fail(Error, 'ERR_SSE_STOPPED',
              `the server ended the stream for good (${stopped.reason}${stopped.status ? ` ${stopped.status}` : ''})`)
            Object.assign(error, stopped)
            throw error
          }
          await new Promise((resolve) => { wake = resolve })
          wake = null
        }
      },
      return: async () => done(),
      [Symbol.asyncIterator] () { return this }
    }
  }

  #checkListener (event, handler) {
    if (typeof event !== 'string' || event === '' || typeof handler !== 'function') {
      throw fail(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
        `on()/off() take an event name (a non-empty string) and a function, got ${typeof event} and ${typeof handler}`)
    }
  }

  #pausedNow () {
    const o = this.#o
    return (o.pauseWhenHidden && globalThis.document?.visibilityState === 'hidden') ||
      (o.pauseWhenOffline && globalThis.navigator?.onLine === false)
  }

  #watchPage () {
    const { document, addEventListener, removeEventListener } = globalThis
    if (typeof addEventListener !== 'function' || document === undefined) return
    const onChange = () => {
      if (this.#state === 'paused' && !this.#pausedNow()) {
        this.#failures = 0
        this.#connect()
      } else if (this.#state !== 'closed' && this.#state !== 'paused' && this.#pausedNow()) {
        this.#disconnect()
        this.#state = 'paused'
      }
    }
    document.addEventListener('visibilitychange', onChange)
    addEventListener('online', onChange)
    addEventListener('offline', onChange)
    this.#unwatch = () => {
      document.removeEventListener('visibilitychange', onChange)
      removeEventListener('online', onChange)
      removeEventListener('offline', onChange)
    }
  }

  #connect () {
    this.#timer = null
    this.#state = this.#pausedNow() ? 'paused' : 'connecting'
    if (this.#state === 'paused') return
    if (this.#useFetch) this.#openFetch()
    else this.#openEventSource()
  }

  /** Drops the current connection, if any, and any pending reconnect. */
  #disconnect () {
    clearTimeout(this.#timer)
    this.#timer = null
    this.#abort?.abort()
    this.#abort = null
    this.#source?.close()
    this.#source = null
  }

  #opened () {
    this.#failures = 0
    this.#state = 'open'
    this.#callback('onOpen')
  }

  /** The stream was open and ended (or broke): back after `retry`. */
  #ended (error) {
    this.#failures = 0
    this.#schedule(this.#retryMs, { error })
  }

  /** An attempt failed: back after a jittered, growing delay (after `Retry-After`, if sent). */
  #failed ({ retryAfterMs = 0, ...info }) {
    this.#failures++
    this.#schedule(retryAfterMs + reconnectDelay(this.#failures, this.#retryMs, this.#o.maxRetryMs), info)
  }

  #schedule (wanted, info) {
    // A longer delay would overflow setTimeout, which then fires at once: a reconnect storm.
    const delay = Math.min(wanted, MAX_TIMER_MS)
    this.#disconnect()
    this.#state = this.#pausedNow() ? 'paused' : 'connecting'
    this.#callback('onError', { ...info, retryInMs: delay })
    if (this.#state === 'connecting') this.#timer = setTimeout(() => this.#connect(), delay)
  }

  #stop (info) {
    if (this.#state === 'closed') return
    this.#disconnect()
    this.#unwatch()
    this.#state = 'closed'
    this.#stopped = info
    for (const sink of this.#iterators) sink.wake()
    this.#callback('onClose', info)
  }

  #callback (name, info) {
    const callback = this.#o[name]
    if (callback === undefined) return
    try {
      callback(info)
    } catch (error) {
      report(error)
    }
  }

  #dispatch (event, data, id) {
    this.#lastEventId = id
    if (data === null) return
    // The hub's own events, for callbacks only: who came and went, a resume that failed, a
    // grant that ended.
    const o = this.#o
    if (event === o.presenceEvent) {
      // Anything but the hub's JSON is dropped: it must not break the stream.
      try {
        this.#callback('onPresence', this.#presence.apply(JSON.parse(data)))
      } catch {}
      return
    }
    const own = event === o.resetEvent ? 'onReset' : event === o.revokedEvent ? 'onRevoke' : null
    if (own !== null) {
      let info
      try {
        info = JSON.parse(data)
      } catch {
        info = { reason: data }
      }
      if (own === 'onRevoke') this.#presence.forget(info?.channel)
      return this.#callback(own, info)
    }
    const handlers = this.#handlers.get(event)
    if (handlers === undefined && this.#iterators.size === 0) return
    let value = data
    if (!o.text.includes(event)) {
      try {
        value = JSON.parse(data)
      } catch {}
    }
    for (const handler of handlers ?? []) {
      try {
        handler(value, { event, id })
      } catch (error) {
        report(error)
      }
    }
    for (const sink of this.#iterators) sink.push({ event, data: value, id })
  }

  async #openFetch () {
    const abort = new AbortController()
    this.#abort = abort
    const o = this.#o
    let response
    try {
      const extra = typeof o.headers === 'function' ? await o.headers() : o.headers
      const headers = new Headers(extra)
      headers.set('accept', 'text/event-stream')
      // As a browser sends it: UTF-8 bytes, which Headers only takes one per character.
      if (this.#lastEventId !== '') headers.set('last-event-id', utf8Bytes(this.#lastEventId))
      const fetch = this.#fetch
      response = await fetch(this.#url, {
        method: o.method, headers, body: o.body, credentials: o.credentials, cache: 'no-store', signal: abort.signal
      })
    } catch (error) {
      if (!abort.signal.aborted) this.#failed({ error })
      return
    }
    const outcome = verdict(response, false)
    if (abort.signal.aborted || outcome !== 'ok') {
      response.body?.cancel().catch(() => {})
      if (!abort.signal.aborted) this.#refused(response, outcome)
      return
    }
    this.#opened()
    const decoder = new TextDecoder()
    const feed = createParser((event, data, id) => this.#dispatch(event, data, id), (ms) => { this.#retryMs = ms }, this.#lastEventId)
    const reader = response.body.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (abort.signal.aborted) return
        if (done) break
        feed(decoder.decode(value, { stream: true }))
      }
    } catch (error) {
      if (!abort.signal.aborted) this.#ended(error)
      return
    }
    this.#ended()
  }

  #openEventSource () {
    let target = this.#url
    const query = this.#o.lastEventIdQuery
    if (this.#lastEventId !== '' && query !== false) {
      const url = new URL(target)
      url.searchParams.set(query, this.#lastEventId)
      target = url.href
    }
    const source = new this.#EventSource(target, { withCredentials: this.#o.credentials === 'include' })
    this.#source = source
    this.#listened = new Set()
    source.onopen = () => this.#opened()
    source.onerror = () => this.#eventSourceError(source, target)
    const o = this.#o
    for (const name of ['message', o.resetEvent, o.revokedEvent, o.presenceEvent, ...o.events, ...this.#handlers.keys()]) this.#listen(name)
  }

  /** EventSource dispatches only the event types listened to: one listener per name. */
  #listen (name) {
    const source = this.#source
    if (source === null || this.#listened.has(name)) return
    this.#listened.add(name)
    source.addEventListener(name, (e) => this.#dispatch(name, e.data, e.lastEventId))
  }

  #eventSourceError (source, target) {
    if (source !== this.#source) return
    const connecting = source.readyState === CONNECTING
    if (connecting && this.#state === 'open') {
      // The open stream ended or broke: the browser reconnects by itself after `retry:` (which
      // it does not expose) and sends Last-Event-ID. A reconnect that fails too is ours.
      this.#state = 'connecting'
      this.#callback('onError', { retryInMs: null })
      return
    }
    if (connecting) return this.#failed({})
    // The browser failed the connection for good: an HTTP status or content type it refuses,
    // which it does not expose. A HEAD request tells a 204 or 4xx (stop) from a 5xx (retry).
    this.#disconnect()
    this.#probe(target)
  }

  async #probe (target) {
    const abort = new AbortController()
    this.#abort = abort
    let response
    try {
      const fetch = this.#fetch
      response = await fetch(target, { method: 'HEAD', credentials: this.#o.credentials, cache: 'no-store', signal: abort.signal })
    } catch (error) {
      if (!abort.signal.aborted) this.#failed({ error })
      return
    }
    if (!abort.signal.aborted) this.#refused(response, verdict(response, true))
  }

  /** An answer with no stream to read: stop for good, or try again after a backoff. */
  #refused (response, outcome) {
    if (outcome === 'stop') return this.#stop({ reason: 'status', status: response.status })
    this.#failed({ status: response.status, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) })
  }
}

/**
 * Opens an event stream and keeps it open: see client.d.mts for every option and its default.
 * @returns {SseClient}
 */
export function connect (url, options = {}) {
  return new SseClient(url, options)
}
