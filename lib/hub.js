'use strict'

// The public Hub: what an application calls. Accepting requests is accept.js's (with one file
// per kind of request in requests/), sends to one client wait in send-queue.js, the writes JS
// makes for Rust are relay.js's, resumable streams are publish-stream.js's; this file ties them
// to the native hub and turns its events into the hub's and each client's.

const { EventEmitter } = require('node:events')
const { NativeHub, HubEventKind } = require('./native')
const { sseError, fromNative } = require('./errors')
const { hubOptions, channelOptions, closeOptions, attachOptions, responseOptions, subscribeOptions, revokeSelector, channelName } = require('./options')
const { messageArgs, commentText } = require('./messages')
const { metricsText, expositionOptions } = require('./metrics')
const { ResumableStreams } = require('./publish-stream')
const { SendQueue } = require('./send-queue')
const { Relay } = require('./relay')
const { Acceptor } = require('./accept')
const { Route } = require('./route')
const { Channel } = require('./channel')
const { nodeRequest, checkFetchArguments, fetchRequest } = require('./requests/of')
const { Subscriptions } = require('./subscriptions')
const observed = require('./diagnostics')
const { PublishTracer } = require('./publish-trace')
const { BackendLink } = require('./backend-link')

/** How long hub.close() lets writer tasks drain before cutting them, beyond writeTimeoutMs. */
const SHUTDOWN_GRACE_MS = 1000
/** How long stopping the runtime may block the JS thread once every client had its chance. */
const RUNTIME_STOP_MS = 100
/** How long hub.close() waits for events and signals still on their way to Redis. */
const REDIS_FLUSH_MS = 2000

const { Closed: CLOSED, Flush: FLUSH, End: END, Destroy: DESTROY, Drained: DRAINED, Backend: BACKEND, Signal: SIGNAL, Delivered: DELIVERED } = HubEventKind

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
  #closing = null
  #emptyWaiters = []
  /** Readiness, the process's hold and 'backend' events of a Redis-linked hub. */
  #backend
  #sends
  #relay
  #acceptor
  #tracer
  /** Channels through the authorization rules, and presence (subscriptions.js). */
  #subscriptions
  /** publishStream()'s running streams. */
  #streams

  constructor (options) {
    super()
    this.#options = hubOptions(options)
    const { retryMs, lastEventIdQuery, retryAfterSeconds, channels, requireAuthorization, authorizeTimeoutMs, revokedEvent, presenceEvent, listenBacklog, ...nativeOptions } = this.#options
    try {
      this.#native = new NativeHub(nativeOptions, (kind, id, payload, events, bytes, channels) =>
        this.#onNativeEvent(kind, id, payload, events, bytes, channels))
    } catch (error) {
      throw fromNative(error)
    }
    const call = (fn) => this.#call(fn)
    this.#sends = new SendQueue(this.#native, this.#clients, call, this.#options)
    this.#relay = new Relay(this.#native, this.#options.writeTimeoutMs)
    this.#tracer = new PublishTracer(this, nativeOptions.redis !== undefined)
    // A stream's token straight to the core, with no message object to build and check per
    // token, unless publishes are traced or observed.
    this.#streams = new ResumableStreams(this, this.#native, call, (channel, data, event, id) => {
      if (this.#tracer.active || observed.publish.hasSubscribers) return this.publish(channel, { data, event, id })
      this.#sends.flush()
      try { return this.#native.publish(channel, data, event, id) } catch (error) { throw fromNative(error) }
    })
    const subscriptions = this.#subscriptions = new Subscriptions(this, this.#native, call, this.#sends, { requireAuthorization, authorizeTimeoutMs, revokedEvent, presenceEvent })
    this.#acceptor = new Acceptor(this, this.#native, this.#options, this.#clients, this.#relay, subscriptions.authorization,
      (client, channels) => subscriptions.opened(client, channels), call, (client) => subscriptions.gone(client))
    for (const [name, { history, maxClients, compression }] of channels) {
      this.#call(() => this.#native.setStandingChannel(name, { ownHistory: history !== undefined, ...history, maxClients: maxClients ?? undefined, compression }))
    }
    this.#backend = new BackendLink(this, this.#native, nativeOptions.redis !== undefined, () => subscriptions.presence.onBackendUp())
  }

  /**
   * Resolves once the hub can serve: at once without Redis; with Redis, once it is connected
   * and the history Redis keeps is loaded, so that a client resuming here finds it. Until then
   * publishes wait in the outbound buffer. Never rejects: while Redis is unreachable the hub
   * keeps retrying ('backend' events say so).
   */
  ready () {
    return this.#backend.ready
  }

  /**
   * Takes over an HTTP response as an event stream and returns its Client. The response head
   * is sent at once; from then on the connection belongs to the hub. Also accepts a raw
   * HTTP/2 stream and its request headers: attach(stream, headers, options).
   *
   * When the hub is full (`maxClients`), a channel asked for is full, or the hub is closing,
   * attach answers the request itself with `503` and `Retry-After`, and returns a Client whose
   * `refusal` is set (already closed; sending to it does nothing). Nobody is disconnected.
   */
  attach (req, res, options) {
    return this._attach(req, res, options, req)
  }

  /**
   * Serves `path` of a node:http `server` (Express's, Fastify's) from the connection up: a new
   * connection whose first request is a GET for it is taken before Node parses it, with the
   * options `open(request)` returns; other requests go to the app as before. See route.js.
   */
  route (server, path, open, options) {
    return new Route(this, server, path, open, options)
  }

  /** A request route.js took: accepted on the native transport. */
  _acceptRoute (request, options, context) {
    return this.#acceptor.accept(request, { ...attachOptions(options, this.#options.retryMs), transport: 'native' }, context)
  }

  /** The accept queue a server this hub streams on is given (null: the server's own). */
  get _listenBacklog () {
    return this.#options.listenBacklog
  }

  /** Whether close() was called: routes then leave new connections to Node (a 503 there). */
  get _closing () {
    return this.#closing !== null
  }

  /** attach(), with the request as the framework gives it to rules (Fastify's `request`). */
  _attach (req, res, options, context) {
    return this.#acceptor.accept(nodeRequest(req, res), attachOptions(options, this.#options.retryMs), context)
  }

  /**
   * The Fetch API form of attach(), for frameworks and runtimes that answer a WHATWG
   * `Request` with a `Response` (Hono, Next.js route handlers, Bun, Deno): returns a `Response`
   * whose body is this client's event stream, fed by the hub. `onClient(client)`, when given,
   * runs before it returns, so what it sends is the first thing the client gets. The client
   * leaves when `request.signal` aborts or the framework stops reading the body.
   *
   * Refused (hub full, channel full, closing): a `503` with `Retry-After`, and `onClient` gets
   * a Client whose `refusal` is set. A Hono context on Node is served from Node's own response
   * (requests/node-server.js).
   */
  response (request, options, onClient) {
    if (typeof options === 'function' && onClient === undefined) {
      onClient = options
      options = undefined
    }
    const raw = checkFetchArguments(request, onClient)
    const { headers, heartbeatMs, transport, ...accepting } = responseOptions(options, this.#options.retryMs)
    const served = fetchRequest(request, raw, { headers, heartbeatMs, transport }, this.#options.heartbeatMs)
    const client = this.#acceptor.accept(served.request, { ...accepting, transport: served.transport }, raw)
    // An async authorization check decides first: the Response is then a promise of it.
    const admission = client._auth?.admission
    const answer = () => served.request.answerWith(client, onClient, (id) => this.#native.closeClient(id, 'error'))
    return admission != null ? admission.then(answer) : answer()
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
    if (this.#tracer.active) return this.#tracer.run(null, message, (watch) => this.#publishTo(null, message, watch))
    return this.#publishTo(null, message)
  }

  /** Sends one event to the clients subscribed to `channel`. Returns the recipients. */
  publish (channel, message) {
    if (this.#tracer.active) return this.#tracer.run(channel, message, (watch) => this.#publishTo(channelName(channel), message, watch))
    return this.#publishTo(channelName(channel), message)
  }

  /** publish() (`name` null: broadcast()); `watch` traces its delivery (publish-trace.js). */
  #publishTo (name, message, watch) {
    const args = messageArgs(message)
    const recipients = this.#call(() => name === null ? this.#native.broadcast(...args, watch) : this.#native.publish(name, ...args, watch))
    if (observed.publish.hasSubscribers) observed.publish.publish({ hub: this, channel: name, message, recipients })
    return recipients
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

  /**
   * A handle on one channel: `hub.channel('prices').publish(message)`, `.size`. With
   * `{ history }`, the channel keeps its own history from now on instead of the hub's; with
   * `{ maxClients }`, attaches that ask for it are refused once it has that many subscribers
   * (`null` lifts the cap). These settings live on the channel and go with it (it stays while
   * it has subscribers or keeps events, and 10 s after this call); `createHub({ channels })`
   * gives settings for good.
   */
  /**
   * Adds an authorization rule: channels matching `pattern` (`user:{id}`, segments between
   * ':' or '/', a `{name}` parameter matching one segment) are subscribed only when
   * `check({ channel, params, request, client, user, renewal })` allows: `true`, or a grant
   * `{ expiresAt?, user?, data? }`; `false` (or `{ allow: false }`) denies. Sync or async,
   * within `authorizeTimeoutMs`. Asked once per subscription, at attach/response and at
   * client.subscribe(), never per event. The most specific pattern matching a channel decides.
   * With `{ renew: true }`, a grant that expires is asked for again shortly before
   * (`renewal: true`, `request: null`); a later expiry keeps the subscription.
   */
  authorize (pattern, check, options) {
    this.#subscriptions.authorization.add(pattern, check, options)
    return this
  }

  /**
   * Ends the grants rules gave: of `user`, in `channel`, or both; each client is unsubscribed
   * and sent the `revokedEvent` (`{ channel, reason: 'revoked' }`). With Redis, every process
   * of the namespace does the same. Returns the grants ended in this process.
   */
  revoke (selector) {
    return this.#subscriptions.authorization.revoke(revokeSelector(selector))
  }

  /**
   * Tracks who is in the channels matching `pattern` (as `authorize()`'s): each subscribed
   * client with a `user` (attach's, or a rule's grant) is a member, collapsed by user with its
   * connection count and its grant's `data`, across every process of a Redis namespace. With
   * `events` (default true) each subscriber gets a snapshot when it joins, then one
   * `presenceEvent` per channel per second at most: `{ channel, joins: [{ user, data }],
   * leaves: [user] }`. Returns the hub.
   */
  presence (pattern, options) {
    this.#subscriptions.presence.add(pattern, options)
    return this
  }

  /** The members of `channel` now: `{ users, connections, members: [{ user, connections, data }] }`. */
  members (channel) {
    return this.#subscriptions.presence.members(channelName(channel))
  }

  /** `{ users, connections }` of `channel`, read in O(1). */
  memberCount (channel) {
    return this.#subscriptions.presence.count(channelName(channel))
  }

  channel (name, options) {
    const checked = channelName(name)
    const { history, maxClients, compression } = channelOptions(options, this.#options.compression)
    if (compression !== undefined) this.#call(() => this.#native.setChannelCompression(checked, compression))
    if (history !== undefined) {
      this.#call(() => this.#native.setChannelHistory(checked, history.historyMaxEvents, history.historyMaxBytes, history.historyMaxAgeMs))
    }
    if (maxClients !== undefined) {
      this.#call(() => this.#native.setChannelCap(checked, maxClients ?? undefined))
    }
    return new Channel(this, this.#native, checked)
  }

  /**
   * What metrics() leaves out, for leak checks and tests: how far behind the clients are,
   * which costs a visit of every client, and deadlinesExtended. Monitor with metrics().
   */
  stats () {
    this.#sends.flush()
    return this.#native.stats()
  }

  /**
   * What an operator watches, as a plain object: connections, closes by reason, refusals,
   * events, deliveries, bytes, lag, drops, resumes, history. Costs O(channels), not O(clients).
   * `{ perChannel: true }` adds an entry for each of the 1,000 most subscribed channels,
   * `{ perChannel: n }` for each of the n most (at most 10,000), in name order.
   */
  metrics (options) {
    const { perChannel } = expositionOptions(options, 'metrics', ['perChannel'])
    this.#sends.flush()
    return this.#native.metrics(perChannel)
  }

  /**
   * metrics() in the Prometheus text exposition format (0.0.4): `prefix` (default 'sse_')
   * starts every name, `labels` are added to every sample, `perChannel` adds per-channel
   * series labelled by channel name (as metrics(): the 1,000 or n most subscribed).
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
    const plan = this._checkClose(options)
    if (this.#closing === null) {
      // Started here, not in the async body, so a refused plan (checked above) throws before
      // anything closes.
      let limit = this.#options.writeTimeoutMs + SHUTDOWN_GRACE_MS
      // Running streams end first, so their subscribers get the error event before the end.
      this.#streams.stopAll(sseError(Error, 'ERR_SSE_HUB_CLOSED', 'publishStream: the hub closed before the stream ended'))
      // The other processes drop this one's members at once rather than after GONE_MS.
      this.#subscriptions.presence.close()
      this.#sends.flush()
      this.#acceptor.withdrawHeld()
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

  /**
   * `options` of close(), checked as the staged close will take them, starting nothing; the
   * plan. Throws what close(options) would (a range, a final event's field), so a framework's
   * plugin refuses them at registration rather than at shutdown.
   */
  _checkClose (options) {
    const plan = closeOptions(options, this.#options.retryMs)
    if (plan !== null && this.#closing === null) {
      this.#call(() => this.#native.checkCloseStaged(plan.drainMs, plan.spreadMs, plan.retryMs, plan.retryJitterMs, ...plan.finalEvent))
    }
    return plan
  }

  async #shutdown (limit) {
    const deadline = Date.now() + limit
    await this.#backend.flush(REDIS_FLUSH_MS)
    if (this.#clients.size > 0) {
      let timer
      await Promise.race([
        new Promise((resolve) => this.#emptyWaiters.push(resolve)),
        new Promise((resolve) => { timer = setTimeout(resolve, limit) })
      ])
      clearTimeout(timer)
    }
    // A Fetch body's client is gone once Rust handed JS its last bytes; the runtime still has
    // to read them. close() resolves once it has (within the same limit), so that what was
    // written is the runtime's to deliver, as the kernel's is for a socket.
    await this.#relay.handedOver(Math.max(0, deadline - Date.now()))
    // Cuts whatever is left (their guards report 'server' through the event callback). The
    // drain already had its time above, so the runtime gets only a moment to stop.
    this.#sends.flush()
    this.#sends.closed = true
    this.#native.shutdown(RUNTIME_STOP_MS)
    // Close notifications queued by the shutdown arrive on the next turns of the loop.
    for (let i = 0; i < 10 && this.#clients.size > 0; i++) await new Promise((resolve) => setImmediate(resolve))
    for (const id of [...this.#clients.keys()]) {
      this.#relay.destroy(id)
      this.#onClosed(id, 'server')
    }
    this.#backend.release()
    this.#tracer.clear()
  }

  /** client.send(): the native delivery code, or null when the send waits (send-queue.js). */
  _sendTo (client, message) {
    return this.#sends.send(client, message)
  }

  /** client.stream()'s batches: one native call, all checked before any is queued. */
  _sendItemsTo (client, items) {
    return this.#sends.sendItems(client, items)
  }

  _commentTo (id, text) {
    const checked = commentText(text)
    return this.#call(() => this.#native.comment(id, checked))
  }

  /** client.subscribe(channel, { request }): through the rules (subscriptions.js). */
  _subscribe (client, channel, options) {
    return this.#subscriptions.subscribe(client, channelName(channel), subscribeOptions(options))
  }

  _unsubscribe (client, channel) {
    return this.#subscriptions.unsubscribe(client, channelName(channel))
  }

  /**
   * Sends `payload` (a string, at most 64 KiB of UTF-8) to every process of the Redis
   * namespace, this one included, where `_onSignal(payload)` gets it; false without Redis.
   */
  _sendSignal (payload) {
    return this.#call(() => this.#native.sendSignal(payload))
  }

  /** A signal from a process of the Redis namespace (this one's included): revokes, presence. */
  _onSignal (payload) {
    this.#subscriptions.onSignal(payload)
  }

  _closeClient (id) {
    this.#sends.flush()
    this.#native.closeClient(id, 'server')
  }

  #onNativeEvent (kind, id, payload, events, bytes, channels) {
    if (kind === CLOSED) return this.#onClosed(id, payload, events, bytes, channels)
    if (kind === DRAINED) {
      const client = this.#clients.get(id)
      if (client === undefined) return
      this.#sends.drained(client)
      return client._drained()
    }
    if (kind === FLUSH) return this.#relay.flush()
    if (kind === BACKEND) return this.#backend.changed(payload, channels?.[0] ?? '')
    if (kind === SIGNAL) return this._onSignal?.(payload)
    if (kind === DELIVERED) return this.#tracer.delivered(id, payload, events, bytes, channels)
    if (kind === END) this.#relay.end(id)
    else if (kind === DESTROY) this.#relay.destroy(id)
  }

  #onClosed (id, reason, events = 0, bytes = 0, channels = []) {
    this.#relay.remove(id)
    const client = this.#clients.get(id)
    if (client === undefined) return
    this.#clients.delete(id)
    this.#subscriptions.gone(client)
    client._closed(reason)
    if (this.listenerCount('disconnect') > 0) {
      this.emit('disconnect', client._departureInfo(channels, reason, events, bytes))
    }
    if (observed.close.hasSubscribers) observed.close.publish({ hub: this, client, reason, events, bytes, channels })
    if (this.#clients.size === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve()
    }
  }

  /** A native call; what waits to be sent goes first, so nothing is reordered around it. */
  #call (fn) {
    this.#sends.flush()
    try {
      return fn()
    } catch (error) {
      throw fromNative(error)
    }
  }
}

module.exports = { Hub }
