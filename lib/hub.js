'use strict'

const { EventEmitter } = require('node:events')
const { NativeHub, HubEventKind } = require('./native')
const { Client } = require('./connection')
const { sseError, fromNative } = require('./errors')
const { hubOptions, channelOptions, closeOptions, attachOptions, responseOptions, messageArgs, messageOf, commentText, channelName, describe } = require('./options')
const { metricsOf, metricsText, expositionOptions } = require('./metrics')
const { nativeUnavailableReason, nativeUnavailableError, handOff } = require('./native-transport')
const { NodeSink, errorSourcesOf, http1SocketOf, tcpFdOf } = require('./node-transport')
const { writeResponseHead, writeStreamHead } = require('./head')
const { StreamSink, StallWatch, isFetchRequest, streamHeaders } = require('./fetch-transport')
const { ResumableStreams } = require('./publish-stream')

/** How long hub.close() lets writer tasks drain before cutting them, beyond writeTimeoutMs. */
const SHUTDOWN_GRACE_MS = 1000
/** How long stopping the runtime may block the JS thread once every client had its chance. */
const RUNTIME_STOP_MS = 100

const { Closed: CLOSED, Flush: FLUSH, End: END, Destroy: DESTROY, Drained: DRAINED, Backend: BACKEND } = HubEventKind
/** How long hub.close() waits for events still on their way to Redis. */
const REDIS_FLUSH_MS = 2000
/**
 * Sends to single clients wait in JS until the end of the current turn of the event loop and
 * cross to Rust together: one native call, one encode pass and one writer wakeup per client per
 * turn instead of one of each per send. A turn that sends more than this (a synchronous loop)
 * crosses every SEND_BATCH_ITEMS sends or SEND_BATCH_CHARS characters.
 */
const SEND_BATCH_ITEMS = 512
const SEND_BATCH_CHARS = 32 * 1024
/** A client's count of queued bytes after a send that did not wait (see #defer): its next
 *  send that waits asks Rust first. */
const UNCOUNTED = Infinity
const LINE_BREAK = /[\r\n]/
const LINE_BREAK_OR_NUL = /[\r\n\0]/

/** A raw HTTP/2 stream from `server.on('stream', (stream, headers) => ...)`. */
function isHttp2Stream (value) {
  return value !== null && typeof value === 'object' && typeof value.respond === 'function' &&
    typeof value.pushAllowed === 'boolean'
}

/**
 * Why the response can never carry a stream, or null while it can: its connection is gone, or
 * it has none (a request pipelined behind another response on one connection, which for an
 * event stream never ends: typically the second of two requests sent at once, whose socket the
 * first one's handoff then closes). Such a client already left.
 */
function departedReason (req, res, rawStream) {
  if (rawStream) return req.destroyed || req.closed ? 'its HTTP/2 stream is closed' : null
  if (res.stream !== undefined) return res.stream.destroyed ? 'its HTTP/2 stream is closed' : null
  if (!res.socket) return 'the response has no connection (pipelined behind another response)'
  if (res.socket.destroyed || (req.socket && req.socket.destroyed)) return 'its connection is closed'
  return null
}

/** Responses (and raw HTTP/2 streams) some hub attached already: a second attach would
 *  write a second stream into the first, or lose it. */
const ATTACHED = new WeakSet()

/**
 * The error for a response that cannot become an event stream as it stands, or null: ended,
 * attached before, a status other than 200 (every EventSource treats any other as fatal), or
 * a head already sent that is not an event stream's. A head the application wrote itself as
 * `200 text/event-stream` is taken over as it is.
 */
function unusableResponseError (req, res, rawStream) {
  const response = rawStream ? req : res
  if (ATTACHED.has(response)) {
    return sseError(Error, 'ERR_SSE_ALREADY_ATTACHED', 'attach(): this response is attached already; attach each request once')
  }
  if (rawStream) {
    if (!req.headersSent) return null
    const sent = req.sentHeaders ?? {}
    return isEventStreamHead(sent[':status'], sent['content-type']) ? null : headersSentError(sent[':status'], sent['content-type'])
  }
  if (res.writableEnded) {
    return sseError(Error, 'ERR_SSE_HEADERS_SENT', 'attach(): the response has ended (res.end() or res.send() was called); attach instead of answering, not after')
  }
  if (res.headersSent) {
    const contentType = sentContentType(res)
    return isEventStreamHead(res.statusCode, contentType) ? null : headersSentError(res.statusCode, contentType)
  }
  if (res.statusCode !== 200) {
    return sseError(Error, 'ERR_SSE_INVALID_STATUS',
      `attach(): res.statusCode is ${res.statusCode}, but an event stream is answered 200 (an EventSource gives up on any other status). ` +
      'To turn the client away, answer it yourself instead of attaching, e.g. res.status(401).end()')
  }
  return null
}

/** The content type of a head already sent. Headers given to writeHead() are not kept where
 *  getHeader() finds them, only in the head Node wrote (HTTP/1), so that is read first. */
function sentContentType (res) {
  const head = typeof res._header === 'string' ? /\r\ncontent-type:[ \t]*([^\r\n]*)/i.exec(res._header) : null
  return head !== null ? head[1] : res.getHeader('content-type')
}

function isEventStreamHead (status, contentType) {
  return Number(status) === 200 && /^text\/event-stream\b/i.test(String(contentType ?? ''))
}

function headersSentError (status, contentType) {
  return sseError(Error, 'ERR_SSE_HEADERS_SENT',
    `attach(): the response head was already sent (status ${status}, content-type ${contentType === undefined ? 'none' : `'${contentType}'`}), ` +
    'so the stream would not be read as an event stream. Attach before anything is written (res.flushHeaders(), res.writeHead() and res.send() all send the head), ' +
    "or write the head yourself as status 200 with content-type 'text/event-stream'")
}

/** The peer's address and port, as the lifecycle events and the Client report them. */
function peerOf (req, rawStream) {
  const socket = rawStream ? req.session?.socket : req.socket
  return { remoteAddress: socket?.remoteAddress ?? null, remotePort: socket?.remotePort ?? null }
}

function noop () {}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A header value as the client meant it. Browsers send `Last-Event-ID` as UTF-8 (it is the id
 * they were sent, as text), while Node hands header bytes over one per character (latin1): an
 * id like `日本-3` arrives as mojibake. Bytes that form UTF-8 are read as UTF-8; anything else
 * (plain ASCII, or latin1 that is not UTF-8) is kept as it came.
 */
function headerText (value) {
  // eslint-disable-next-line no-control-regex
  if (!/[\u0080-\u00ff]/.test(value) || /[^\u0000-\u00ff]/.test(value)) return value
  try {
    return UTF8.decode(Buffer.from(value, 'latin1'))
  } catch {
    return value
  }
}

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

/** One channel of a hub, by name. Holds nothing but the name: cheap to make, any number. */
class Channel {
  #hub

  constructor (hub, name) {
    this.#hub = hub
    /** The channel's name. */
    this.name = name
  }

  /** Clients subscribed now. */
  get size () {
    return this.#hub.channelSize(this.name)
  }

  /** hub.publish(name, message). */
  publish (message) {
    return this.#hub.publish(this.name, message)
  }
}

/**
 * Events: `'connect'` (info) once a client is attached, `'disconnect'` (info) once it has
 * left, `'refuse'` (info) when an attach was answered 503. Each info is a plain object, ready
 * for a structured logger. Gathered only when someone listens, and never per event sent.
 * With Redis, `'backend'` ({ state: 'up' | 'down', detail }) when the connection to Redis is
 * lost or back.
 */
class Hub extends EventEmitter {
  #native
  #options
  #clients = new Map()
  #sinks = new Map()
  #closing = null
  #emptyWaiters = []
  #ready
  #resolveReady = null
  /** A Redis-linked hub's hold on the event loop, from creation until close() completes. */
  #keepAlive = null
  /** Sends waiting for the end of this turn (see SEND_BATCH_ITEMS), in call order: the client
   *  ids, and for each a string (an event with data only) or messageArgs()' array. */
  #sendIds = []
  #sendItems = []
  #sendChars = 0
  #sendFlushQueued = false
  #flushSendsSoon = () => {
    this.#sendFlushQueued = false
    this.#flushSends()
  }
  /** The native hub was shut down: calls reach it only to be refused. */
  #shutDown = false
  /** Cuts response() bodies nobody reads; made with the first. */
  #stallWatch = null
  /** publishStream()'s running streams. */
  #streams = new ResumableStreams(this, {
    hold: (channel, history) => {
      const { historyMaxEvents, historyMaxBytes, historyMaxAgeMs } = channelOptions({ history }).history
      return this.#call(() => this.#native.holdChannelHistory(channel, historyMaxEvents, historyMaxBytes, historyMaxAgeMs))
    },
    release: (channel, hold) => this.#native.releaseChannelHistory(channel, hold)
  })
  /**
   * The longest `data` alone whose frame is surely within maxEventBytes, with no scan for
   * line breaks: 3 UTF-8 bytes per UTF-16 unit and a `data: ` line (7 bytes) per unit at most.
   */
  #deferredDataChars

  constructor (options) {
    super()
    this.#options = hubOptions(options)
    this.#deferredDataChars = Math.floor((this.#options.maxEventBytes - 64 - 7) / 10)
    const { retryMs, lastEventIdQuery, retryAfterSeconds, channels, ...nativeOptions } = this.#options
    try {
      this.#native = new NativeHub(nativeOptions, (kind, id, payload, events, bytes, channels) =>
        this.#onNativeEvent(kind, id, payload, events, bytes, channels))
    } catch (error) {
      throw fromNative(error)
    }
    for (const [name, { history, maxClients }] of channels) {
      this.#call(() => this.#native.setStandingChannel(name, history !== undefined, history?.historyMaxEvents, history?.historyMaxBytes,
        history?.historyMaxAgeMs, maxClients ?? undefined))
    }
    this.#ready = nativeOptions.redis === undefined
      ? Promise.resolve()
      : new Promise((resolve) => { this.#resolveReady = resolve })
    if (nativeOptions.redis !== undefined) {
      // The link to Redis lives on Rust's threads, which Node's event loop does not see: without
      // a handle of its own, `await hub.ready()` before anything else is listening would end the
      // process (an unsettled top-level await), and a script that publishes and returns would
      // exit with its events still in the outbound buffer. Like a socket, the hub keeps the
      // process alive until it is closed.
      this.#keepAlive = setInterval(noop, 2 ** 31 - 1)
    }
  }

  /**
   * Resolves once the hub can serve: at once without Redis; with Redis, once it is connected
   * and the history Redis keeps is loaded, so that a client resuming here finds it. Until then
   * publishes wait in the outbound buffer. Never rejects: while Redis is unreachable the hub
   * keeps retrying ('backend' events say so).
   */
  ready () {
    return this.#ready
  }

  /**
   * Takes over an HTTP response as an event stream and returns its Client. The response head
   * is sent at once; from then on the connection belongs to the hub. Also accepts a raw
   * HTTP/2 stream and its request headers: attach(stream, headers, options).
   *
   * When the hub is full (`maxClients`), a channel asked for is full, or the hub is closing,
   * attach answers the request itself with `503` and `Retry-After`, and returns a Client whose
   * `refused` is true (already closed; sending to it does nothing). Nobody is disconnected.
   */
  attach (req, res, options) {
    const rawStream = isHttp2Stream(req)
    const isObject = (value) => value !== null && typeof value === 'object'
    if (rawStream) {
      if (!isObject(res)) {
        throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
          `attach(stream, headers): headers must be the stream's request headers, got ${describe(res)}`)
      }
    } else {
      if (!isObject(req) || !isObject(req.headers)) {
        throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
          `attach(req, res): req must be an http.IncomingMessage, http2.Http2ServerRequest or http2 stream, got ${describe(req)}`)
      }
      if (!isObject(res) || typeof res.writeHead !== 'function') {
        throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `attach(req, res): res must be an http.ServerResponse, got ${describe(res)}`)
      }
    }
    const { retryMs, transport, channels, lastEventId: fallbackId } = attachOptions(options, this.#options.retryMs)
    const unusable = unusableResponseError(req, res, rawStream)
    if (unusable !== null) throw unusable
    const unavailable = rawStream ? 'a raw HTTP/2 stream is multiplexed by Node' : nativeUnavailableReason(req, res)
    if (transport === 'native' && unavailable !== null) throw nativeUnavailableError(unavailable)
    const native = transport !== 'node' && unavailable === null

    const requestHeaders = rawStream ? res : req.headers
    const lastEventId = this.#lastEventIdOf((name) => requestHeaders[name], rawStream ? requestHeaders[':path'] : req.url) || fallbackId
    // Registered before anything is written: an error leaves the response to the caller.
    const { id, resume, resetReason, refused } = this.#call(() => this.#native.register(retryMs, channels, lastEventId || undefined))
    if (refused != null) return this.#refuse(req, res, rawStream, refused, channels)
    if (departedReason(req, res, rawStream) !== null) {
      // Nothing can be written to it: the client leaves at once, counted and reported as a
      // client that closed ('close' with 'client'), so it never holds a place or a cursor.
      const client = new Client(this, id, lastEventId, native ? 'native' : 'node', resume, resetReason ?? null)
      this.#clients.set(id, client)
      this.#native.closeClient(id, 'client')
      return client
    }
    let chunked
    try {
      chunked = rawStream ? (writeStreamHead(req), false) : writeResponseHead(req, res)
    } catch (error) {
      // Node refused the head (an invalid header or status set earlier). The client was never
      // seen by the caller, so it leaves quietly; a head already on the wire is cut, not
      // left half-written, and a head never sent leaves the caller free to answer.
      this.#native.closeClient(id, 'error')
      const response = rawStream ? req : res
      if (response.headersSent) response.destroy()
      throw error
    }
    ATTACHED.add(rawStream ? req : res)
    const client = new Client(this, id, lastEventId, native ? 'native' : 'node', resume, resetReason ?? null)
    client._connected(peerOf(req, rawStream))
    this.#clients.set(id, client)

    const method = rawStream ? requestHeaders[':method'] : req.method
    if (method === 'HEAD') {
      // No body for HEAD: the head alone answers it.
      ;(rawStream ? req : res).end()
      this.#native.closeClient(id, 'server')
    } else if (native) {
      this.#startNative(id, req.socket, res, chunked)
    } else {
      this.#startNode(id, rawStream ? req : res, errorSourcesOf(req, res, rawStream), http1SocketOf(req, res, rawStream),
        tcpFdOf(req, res, rawStream))
    }
    if (this.listenerCount('connect') > 0) this.emit('connect', client._info(channels))
    return client
  }

  /** The 503 a refused request is answered with, whatever the transport. */
  #refusalAnswer (reason) {
    return {
      headers: {
        'retry-after': String(this.#options.retryAfterSeconds),
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store'
      },
      body: `event stream unavailable (${reason}); retry later\n`
    }
  }

  /** Answers a refused attach with 503 and Retry-After; returns the refused Client. */
  #refuse (req, res, rawStream, reason, channels) {
    const { headers, body } = this.#refusalAnswer(reason)
    if (rawStream) {
      if (!req.headersSent) {
        req.respond({ ':status': 503, ...headers })
        req.end(body)
      } else {
        req.close()
      }
    } else if (!res.headersSent) {
      res.writeHead(503, headers)
      res.end(body)
    } else {
      res.destroy()
    }
    const client = Client._refused(this, reason)
    if (this.listenerCount('refuse') > 0) this.emit('refuse', { reason, ...peerOf(req, rawStream), channels })
    return client
  }

  /**
   * The Fetch API form of attach(), for frameworks and runtimes that answer a WHATWG
   * `Request` with a `Response` (Hono, Next.js route handlers, Bun, Deno): returns a `Response`
   * whose body is this client's event stream, fed by the hub. `onClient(client)`, when given,
   * runs before it returns, so what it sends is the first thing the client gets. The client
   * leaves when `request.signal` aborts or the framework stops reading the body.
   *
   * Refused (hub full, channel full, closing): a `503` with `Retry-After`, and `onClient` gets
   * a Client whose `refused` is true.
   */
  response (request, options, onClient) {
    if (typeof options === 'function' && onClient === undefined) {
      onClient = options
      options = undefined
    }
    if (!isFetchRequest(request)) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
        `response(request): request must be a Fetch API Request (in Hono c.req.raw, in Next.js the route handler's request), got ${describe(request)}`)
    }
    if (onClient !== undefined && typeof onClient !== 'function') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `response(request, options, onClient): onClient must be a function, got ${describe(onClient)}`)
    }
    const { retryMs, channels, headers, lastEventId: fallbackId } = responseOptions(options, this.#options.retryMs)
    const head = streamHeaders(headers)
    const lastEventId = this.#lastEventIdOf((name) => request.headers.get(name) ?? undefined, request.url) || fallbackId
    const { id, resume, resetReason, refused } = this.#call(() => this.#native.register(retryMs, channels, lastEventId || undefined))
    if (refused != null) {
      const client = Client._refused(this, refused)
      if (this.listenerCount('refuse') > 0) this.emit('refuse', { reason: refused, remoteAddress: null, remotePort: null, channels })
      onClient?.(client)
      const { headers, body } = this.#refusalAnswer(refused)
      return new Response(body, { status: 503, headers })
    }
    const client = new Client(this, id, lastEventId, 'fetch', resume, resetReason ?? null)
    client._connected({ remoteAddress: null, remotePort: null })
    this.#clients.set(id, client)
    const sink = new StreamSink(this.#native, id, request.signal ?? undefined)
    this.#sinks.set(id, sink)
    ;(this.#stallWatch ??= new StallWatch(this.#options.writeTimeoutMs)).add(sink)
    if (request.method === 'HEAD' || sink.alreadyClosed) {
      this.#native.closeClient(id, request.method === 'HEAD' ? 'server' : 'client')
    } else {
      this.#call(() => this.#native.startFetch(id))
    }
    if (this.listenerCount('connect') > 0) this.emit('connect', client._info(channels))
    if (onClient !== undefined) {
      try {
        onClient(client)
      } catch (error) {
        // The framework answers the error; the stream is never read.
        this.#native.closeClient(id, 'error')
        throw error
      }
    }
    return new Response(request.method === 'HEAD' ? null : sink.stream, { status: 200, headers: head })
  }

  /**
   * Publishes every item of `source` (an async iterable: an LLM SDK's stream, a ReadableStream,
   * a generator; or an iterable) into `channel` as events `<id>.1`, `<id>.2`, …, then the end
   * event (`endEvent`, 'end', data `{ events }`), or the error event (`errorEvent`,
   * 'stream-error', data `errorData(error)` or `{ message: 'stream failed' }`) when the source
   * throws or the stream is stopped (`signal`, hub.close()). `<id>.0` opens it (`startEvent`,
   * 'start'): a client attached with `lastEventId: '<id>.0'` gets the stream from its start,
   * one that reconnects or reloads with the last id it saw gets the rest. It runs whether
   * anyone reads or not; the channel keeps it while it runs and for `history.maxAgeMs` after
   * (default 100,000 events, 16 MiB, 10 minutes), then its own history again. One stream per
   * id at a time. Returns `{ id, startId, done }`; `done` resolves with
   * `{ id, events, completed, error? }` and never rejects.
   */
  publishStream (channel, source, options) {
    return this.#streams.start(channelName(channel), source, options)
  }

  /** Sends one event to every client; the frame is encoded once. Returns the recipients. */
  broadcast (message) {
    const args = messageArgs(message)
    return this.#call(() => this.#native.broadcast(...args))
  }

  /** Sends one event to the clients subscribed to `channel`. Returns the recipients. */
  publish (channel, message) {
    const name = channelName(channel)
    const args = messageArgs(message)
    return this.#call(() => this.#native.publish(name, ...args))
  }

  /** Sends a comment to every client. */
  comment (text) {
    const checked = commentText(text)
    return this.#call(() => this.#native.broadcastComment(checked))
  }

  /** Connected clients (including ones whose handoff is in progress). */
  get size () {
    return this.#native.size
  }

  /** Clients subscribed to `channel`. */
  channelSize (channel) {
    return this.#native.channelSize(channelName(channel))
  }

  /**
   * A handle on one channel: `hub.channel('prices').publish(message)`, `.size`. With
   * `{ history }`, the channel keeps its own history from now on instead of the hub's; with
   * `{ maxClients }`, attaches that ask for it are refused once it has that many subscribers
   * (`null` lifts the cap). These settings live on the channel and go with it (it stays while
   * it has subscribers or keeps events, and 10 s after this call); `createHub({ channels })`
   * gives settings for good.
   */
  channel (name, options) {
    const checked = channelName(name)
    const { history, maxClients } = channelOptions(options)
    if (history !== undefined) {
      this.#call(() => this.#native.setChannelHistory(checked, history.historyMaxEvents, history.historyMaxBytes, history.historyMaxAgeMs))
    }
    if (maxClients !== undefined) {
      this.#call(() => this.#native.setChannelCap(checked, maxClients ?? undefined))
    }
    return new Channel(this, checked)
  }

  /**
   * Counters and queue levels, for leak checks and tests: visits every client. For
   * monitoring use metrics(), which does not.
   */
  stats () {
    this.#flushSends()
    return this.#native.stats()
  }

  /**
   * What an operator watches, as a plain object: connections, closes by reason, refusals,
   * events, deliveries, bytes, lag, drops, resumes, history. Costs O(channels), not O(clients).
   * `{ perChannel: true }` adds one entry per channel.
   */
  metrics (options) {
    const { perChannel } = expositionOptions(options, 'metrics', ['perChannel'])
    this.#flushSends()
    return metricsOf(this.#native.metrics(perChannel), this.#native.redisMetrics())
  }

  /**
   * metrics() in the Prometheus text exposition format (0.0.4): `prefix` (default 'sse_')
   * starts every name, `labels` are added to every sample, `perChannel` adds per-channel
   * series labelled by channel name.
   */
  metricsText (options) {
    return metricsText(this, options)
  }

  /** The `Retry-After` (seconds) a refused request is answered with: `retryAfterSeconds`. */
  get retryAfterSeconds () {
    return this.#options.retryAfterSeconds
  }

  /** True once close() was called. */
  get closed () {
    return this.#closing !== null
  }

  /**
   * Refuses new clients (503 with Retry-After), ends every stream, and stops the hub's
   * threads; resolves once every client's 'close' has fired. Later calls return the same
   * promise.
   *
   * Without options every stream ends now, after what is queued for it (within
   * writeTimeoutMs). With options the close is staged, so that clients do not all reconnect
   * to the next instance in the same second: each client, at its own moment within `spreadMs`,
   * gets a `retry:` drawn from `retryMs` to `retryMs + retryJitterMs` and the `finalEvent` if
   * given, and its stream ends once what is queued for it is written, within `drainMs`.
   */
  close (options) {
    const plan = closeOptions(options, this.#options.retryMs)
    if (this.#closing === null) {
      // Started here, not in the async body, so a refused final event throws before
      // anything closes.
      let limit = this.#options.writeTimeoutMs + SHUTDOWN_GRACE_MS
      // Running streams end first, so their subscribers get the error event before the end.
      this.#streams.stopAll(sseError(Error, 'ERR_SSE_HUB_CLOSED', 'publishStream: the hub closed before the stream ended'))
      this.#flushSends()
      if (plan === null) {
        this.#native.closeAll()
      } else {
        this.#call(() => this.#native.closeStaged(plan.drainMs, plan.spreadMs, plan.retryMs, plan.retryJitterMs, ...plan.finalEvent))
        limit = plan.spreadMs + plan.drainMs + SHUTDOWN_GRACE_MS
      }
      this.#closing = this.#shutdown(limit)
    }
    return this.#closing
  }

  async #shutdown (limit) {
    await this.#flushRedis(REDIS_FLUSH_MS)
    if (this.#clients.size > 0) {
      let timer
      await Promise.race([
        new Promise((resolve) => this.#emptyWaiters.push(resolve)),
        new Promise((resolve) => { timer = setTimeout(resolve, limit) })
      ])
      clearTimeout(timer)
    }
    // Cuts whatever is left (their guards report 'server' through the event callback). The
    // drain already had its time above, so the runtime gets only a moment to stop.
    this.#flushSends()
    this.#shutDown = true
    this.#native.shutdown(RUNTIME_STOP_MS)
    // Close notifications queued by the shutdown arrive on the next turns of the loop.
    for (let i = 0; i < 10 && this.#clients.size > 0; i++) await new Promise((resolve) => setImmediate(resolve))
    for (const id of [...this.#clients.keys()]) {
      this.#sinks.get(id)?.destroy()
      this.#onClosed(id, 'server')
    }
    clearInterval(this.#keepAlive)
  }

  /**
   * Returns the native delivery code (gone, queued, queued above the high-water mark), or
   * null when the send waits for the end of the turn (see SEND_BATCH_ITEMS); its delivery then
   * reaches the client through `_delivered`. A message is held back only when JS can tell that
   * the core will take it (data a string, one-line event and id, surely within
   * maxEventBytes), so a bad one still throws at its own call, with nothing of it sent.
   */
  _sendTo (client, message) {
    // The usual token, `{ data: 'text' }`, is taken without building messageArgs()' array.
    const data = dataAlone(message)
    if (data !== undefined && data.length <= this.#deferredDataChars && !this.#shutDown) return this.#defer(client, data, data)
    const args = messageArgs(message)
    if (this.#shutDown || !this.#surelyValid(args)) {
      this.#flushSends()
      const delivery = this.#call(() => this.#native.send(client.id, ...args))
      client._queuedBytes = UNCOUNTED
      return delivery
    }
    const [text, event, eventId, retry] = args
    return this.#defer(client, event === undefined && eventId === undefined && retry === undefined ? text : args, text)
  }

  /**
   * Holds one checked send until the end of the turn, or sends what waits now: when a batch is
   * full, or when this send may take the client past the high-water mark. The client's count
   * of queued bytes (Rust's at the last crossing, plus a bound of each frame held back since)
   * only ever overstates, so the send that crosses the mark is the one told to wait, as if
   * every send had crossed alone.
   */
  #defer (client, item, text) {
    this.#sendIds.push(client.id)
    this.#sendItems.push(item)
    this.#sendChars += text.length
    // 3 UTF-8 bytes per UTF-16 unit at most, and the field name and line ends.
    client._queuedBytes += 3 * text.length + 8
    if ((!client.needDrain && client._queuedBytes > this.#options.highWaterMark) ||
        this.#sendIds.length >= SEND_BATCH_ITEMS || this.#sendChars >= SEND_BATCH_CHARS) {
      // This call's own delivery is its run's, the last one flushed.
      return this.#flushSends(client.id)
    }
    if (!this.#sendFlushQueued) {
      this.#sendFlushQueued = true
      process.nextTick(this.#flushSendsSoon)
    }
    return null
  }

  /** Sets the client's count of queued bytes from Rust's (see #defer). */
  #recount (client) {
    client._queuedBytes = Math.max(0, this.#native.queuedBytes(client.id))
  }

  /** Whether the core surely accepts these message arguments (frame.rs `validate`, the size check). */
  #surelyValid ([data, event, eventId]) {
    if (typeof data !== 'string') return false
    if (event !== undefined && LINE_BREAK.test(event)) return false
    if (eventId !== undefined && LINE_BREAK_OR_NUL.test(eventId)) return false
    // The encoded frame's bound, in UTF-8 bytes: 3 per UTF-16 unit at most, and a `data: `
    // prefix (7 bytes with its line end) per line.
    const lines = LINE_BREAK.test(data) ? data.length + 1 : 1
    const bound = 3 * (data.length + (event?.length ?? 0) + (eventId?.length ?? 0)) + 7 * lines + 64
    return bound <= this.#options.maxEventBytes
  }

  /**
   * Sends what waits, in call order: each run of sends to one client as one native call.
   * Returns the delivery of the run to `lastId` when it is the last run (else null).
   */
  #flushSends (lastId) {
    const ids = this.#sendIds
    if (ids.length === 0) return null
    const items = this.#sendItems
    let delivery = null
    for (let start = 0; start < ids.length;) {
      const id = ids[start]
      let end = start + 1
      while (end < ids.length && ids[end] === id) end++
      delivery = this.#sendRun(id, start === 0 && end === ids.length ? items : items.slice(start, end))
      const client = this.#clients.get(id)
      if (client !== undefined) {
        client._delivered(delivery)
        this.#recount(client)
      }
      start = end
    }
    const last = ids[ids.length - 1]
    // Kept for the next turn's sends (nothing above calls back into JS).
    ids.length = 0
    items.length = 0
    this.#sendChars = 0
    return last === lastId ? delivery : null
  }

  /** One client's waiting sends as one native call; each was checked when it was made. */
  #sendRun (id, items) {
    try {
      if (items.every(isString)) return this._sendTextsTo(id, items)
      return this.#native.sendMany(id, ...parallelArgs(items))
    } catch (error) {
      // Not expected (each was checked): said, not thrown into whichever call flushed.
      process.emitWarning(`native-sse: ${items.length} sends to client ${id} failed: ${error.message}`, { code: error.code })
      return null
    }
  }

  /** Strings as the data of events, in one native call (one string and their lengths). */
  _sendTextsTo (id, texts) {
    const lengths = new Uint32Array(texts.length)
    for (let i = 0; i < texts.length; i++) lengths[i] = texts[i].length
    return this.#native.sendTexts(id, texts.join(''), lengths)
  }

  /**
   * Sends stream items (see messageOf) as one native call. All are checked before any is
   * queued; an invalid one throws and none is sent.
   */
  _sendItemsTo (client, items) {
    this.#flushSends()
    const id = client.id
    let delivery
    if (items.every(isString)) {
      delivery = this.#call(() => this._sendTextsTo(id, items))
    } else {
      const args = items.map((item) => typeof item === 'string' ? item : messageArgs(messageOf(item)))
      delivery = this.#call(() => this.#native.sendMany(id, ...parallelArgs(args)))
    }
    client._queuedBytes = UNCOUNTED
    return delivery
  }

  _commentTo (id, text) {
    const checked = commentText(text)
    return this.#call(() => this.#native.comment(id, checked))
  }

  _subscribe (id, channel) {
    const name = channelName(channel)
    return this.#call(() => this.#native.subscribe(id, name))
  }

  _unsubscribe (id, channel) {
    const name = channelName(channel)
    return this.#call(() => this.#native.unsubscribe(id, name))
  }

  _closeClient (id) {
    this.#flushSends()
    this.#native.closeClient(id, 'server')
  }

  /** The `Last-Event-ID` header, or for a first connect the configured query parameter; ''. */
  #lastEventIdOf (headerOf, url) {
    const header = headerOf('last-event-id')
    if (typeof header === 'string' && header !== '') return headerText(header)
    const query = this.#options.lastEventIdQuery
    if (query === undefined || typeof url !== 'string') return ''
    const at = url.indexOf('?')
    if (at < 0) return ''
    return new URLSearchParams(url.slice(at + 1)).get(query) ?? ''
  }

  #startNative (id, socket, res, chunked) {
    const native = this.#native
    handOff(native, id, socket, res, chunked, this.#options.writeTimeoutMs, (reason) => {
      if (reason !== null) native.closeClient(id, reason)
    })
  }

  #startNode (id, writable, errorSources, socket, tcpFd) {
    const sink = new NodeSink(this.#native, id, writable, errorSources, socket)
    this.#sinks.set(id, sink)
    if (sink.alreadyClosed) {
      this.#native.closeClient(id, 'client')
      return
    }
    this.#call(() => this.#native.startNode(id, tcpFd))
  }

  #onNativeEvent (kind, id, payload, events, bytes, channels) {
    if (kind === CLOSED) return this.#onClosed(id, payload, events, bytes, channels)
    if (kind === DRAINED) {
      const client = this.#clients.get(id)
      if (client === undefined) return
      // Rust says 'drained' once its queue is down to half the mark.
      client._queuedBytes = Math.min(client._queuedBytes, this.#options.highWaterMark / 2)
      return client._drained()
    }
    if (kind === FLUSH) return this.#flushWrites()
    if (kind === BACKEND) return this.#onBackend(payload, channels?.[0] ?? '')
    const sink = this.#sinks.get(id)
    if (sink === undefined) return
    if (kind === END) sink.end()
    else if (kind === DESTROY) sink.destroy()
  }

  #onBackend (state, detail) {
    if (state === 'up' && this.#resolveReady !== null) {
      this.#resolveReady()
      this.#resolveReady = null
    }
    if (this.listenerCount('backend') > 0) this.emit('backend', { state, detail })
  }

  /** Waits (bounded) until what was published here reached Redis. */
  async #flushRedis (limitMs) {
    const deadline = Date.now() + limitMs
    while (this.#native.redisPending() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** Writes every waiting Node-transport batch; the accepted ones are acknowledged at once. */
  #flushWrites () {
    const { ids, chunks, which } = this.#native.takeWrites()
    const accepted = []
    for (let i = 0; i < ids.length; i++) {
      const sink = this.#sinks.get(ids[i])
      if (sink !== undefined && sink.write(chunks[which[i]])) accepted.push(ids[i])
    }
    if (accepted.length > 0) this.#native.nodeWritableMany(accepted)
  }

  #onClosed (id, reason, events = 0, bytes = 0, channels = []) {
    const sink = this.#sinks.get(id)
    if (sink !== undefined) {
      this.#sinks.delete(id)
      this.#stallWatch?.delete(sink)
      sink.detach()
    }
    const client = this.#clients.get(id)
    if (client === undefined) return
    this.#clients.delete(id)
    client._closed(reason)
    if (this.listenerCount('disconnect') > 0) {
      this.emit('disconnect', client._departureInfo(channels, reason, events, bytes))
    }
    if (this.#clients.size === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve()
    }
  }

  /** A native call; what waits to be sent goes first, so nothing is reordered around it. */
  #call (fn) {
    this.#flushSends()
    try {
      return fn()
    } catch (error) {
      throw fromNative(error)
    }
  }
}

module.exports = { Hub, Channel }
