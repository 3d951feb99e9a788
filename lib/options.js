'use strict'

const native = require('./native')
const { sseError } = require('./errors')
const { rejectUnknownKeys, withDefaults, plainObject, number, MAX_RETRY_MS, retryValue, describe } = require('./checks')
const { messageArgs } = require('./messages')
const { backlogOption } = require('./accept-queue')

// Every default is defined once, in Rust, where the core uses it (HubConfig::default,
// History::DEFAULT_ON, RedisConfig::with_url, StagedClose, and the names the browser client
// shares with the hub), and read here once.
const NATIVE_DEFAULTS = native.defaults()

/**
 * Defaults of `createHub(options)`, documented with each option in index.d.ts.
 * `workerThreads: undefined` means the core's choice for this machine.
 */
const HUB_DEFAULTS = Object.freeze({
  heartbeatMs: NATIVE_DEFAULTS.hub.heartbeatMs,
  writeTimeoutMs: NATIVE_DEFAULTS.hub.writeTimeoutMs,
  maxLagEvents: NATIVE_DEFAULTS.hub.maxLagEvents,
  maxLagBytes: NATIVE_DEFAULTS.hub.maxLagBytes,
  maxEventBytes: NATIVE_DEFAULTS.hub.maxEventBytes,
  overflow: NATIVE_DEFAULTS.hub.overflow,
  highWaterMark: NATIVE_DEFAULTS.hub.highWaterMark,
  history: undefined,
  resetEvent: NATIVE_DEFAULTS.hub.resetEvent,
  // What native-sse/client sends when it reconnects an EventSource itself (a new EventSource
  // cannot set the Last-Event-ID header); `false` turns it off.
  lastEventIdQuery: NATIVE_DEFAULTS.lastEventIdQuery,
  retryMs: undefined,
  workerThreads: undefined,
  maxClients: undefined,
  maxChannelsPerClient: NATIVE_DEFAULTS.hub.maxChannelsPerClient,
  retryAfterSeconds: NATIVE_DEFAULTS.retryAfterSeconds,
  redis: undefined,
  compression: false,
  // The accept queue of servers attach() serves (accept-queue.js), JS only.
  listenBacklog: true,
  // Authorization (authorization.js), JS only: rules live with the app's checks.
  requireAuthorization: false,
  authorizeTimeoutMs: 10_000,
  revokedEvent: 'sse-revoked',
  // Presence (presence.js), JS only.
  presenceEvent: 'sse-presence'
})

/** What `redis: 'redis://...'` or `redis: { url }` leaves out. */
const REDIS_DEFAULTS = Object.freeze({ ...NATIVE_DEFAULTS.redis, url: undefined })

/** What `compression: true` or `compression: {}` does; each can be set on its own. */
const COMPRESSION_DEFAULTS = Object.freeze({ ...NATIVE_DEFAULTS.compression })

/** What `history: true` or `history: {}` keeps; each can be set on its own. */
const HISTORY_DEFAULTS = Object.freeze({ ...NATIVE_DEFAULTS.history })

const CHANNEL_KEYS = new Set(['history', 'maxClients', 'compression'])
/** What `hub.close(options)` leaves out (`retryMs`: the hub's, else `CLOSE_RETRY_MS`). */
const CLOSE_DEFAULTS = Object.freeze({
  drainMs: NATIVE_DEFAULTS.close.drainMs,
  spreadMs: NATIVE_DEFAULTS.close.spreadMs,
  retryMs: undefined,
  retryJitterMs: NATIVE_DEFAULTS.close.retryJitterMs,
  finalEvent: undefined
})
/** The `retry:` base of a staged close when neither close() nor the hub sets one. */
const CLOSE_RETRY_MS = NATIVE_DEFAULTS.close.retryMs
const ATTACH_KEYS = new Set(['retryMs', 'transport', 'channels', 'lastEventId', 'user'])
const RESPONSE_KEYS = new Set(['retryMs', 'channels', 'headers', 'lastEventId', 'heartbeatMs', 'user', 'transport'])
const WRITABLE_KEYS = new Set(['end'])
const SUBSCRIBE_KEYS = new Set(['request'])
const REVOKE_KEYS = new Set(['user', 'channel'])
const TRANSPORTS = new Set(['auto', 'native', 'node'])
/** Longest channel name, in UTF-16 code units: names are keys, not payloads. */
const MAX_CHANNEL_LENGTH = 256







function hubOptions (options) {
  const { channels, ...given } = plainObject(options, 'createHub options')
  const merged = withDefaults(given, HUB_DEFAULTS, 'createHub option')
  // A smaller window than the default event limit lowers that limit with it, so maxLagBytes
  // alone keeps working; an explicit maxEventBytes above maxLagBytes is refused by the core.
  if (given.maxEventBytes === undefined && typeof merged.maxLagBytes === 'number') {
    merged.maxEventBytes = Math.min(HUB_DEFAULTS.maxEventBytes, merged.maxLagBytes)
  }
  if (merged.overflow !== 'disconnect' && merged.overflow !== 'drop-oldest') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
      `overflow must be 'disconnect' or 'drop-oldest', got ${describe(merged.overflow)}`)
  }
  const compression = compressionOptions(merged.compression)
  return {
    heartbeatMs: number(merged.heartbeatMs, 'heartbeatMs'),
    writeTimeoutMs: number(merged.writeTimeoutMs, 'writeTimeoutMs'),
    maxLagEvents: number(merged.maxLagEvents, 'maxLagEvents'),
    maxLagBytes: number(merged.maxLagBytes, 'maxLagBytes'),
    maxEventBytes: number(merged.maxEventBytes, 'maxEventBytes'),
    overflow: merged.overflow,
    highWaterMark: number(merged.highWaterMark, 'highWaterMark'),
    ...historyOptions(merged.history),
    // Its wire rule (one non-empty line) is the core's to check.
    resetEvent: string(merged.resetEvent, 'resetEvent'),
    lastEventIdQuery: merged.lastEventIdQuery === false
      ? undefined
      : nonEmptyString(merged.lastEventIdQuery, 'lastEventIdQuery (or false for none)'),
    workerThreads: merged.workerThreads === undefined
      ? NATIVE_DEFAULTS.hub.workerThreads
      : number(merged.workerThreads, 'workerThreads'),
    retryMs: retryValue(merged.retryMs, 'retryMs'),
    maxClients: merged.maxClients === undefined ? undefined : number(merged.maxClients, 'maxClients'),
    maxChannelsPerClient: number(merged.maxChannelsPerClient, 'maxChannelsPerClient'),
    retryAfterSeconds: retryAfter(merged.retryAfterSeconds),
    redis: redisOptions(merged.redis),
    compression,
    listenBacklog: backlogOption(merged.listenBacklog, 'listenBacklog'),
    channels: standingChannels(channels, compression),
    ...authorizationOptions(merged)
  }
}

/** The authorization options: whether every channel needs a rule, the checks' time bound,
 *  and the event that tells a client a grant ended. */
function authorizationOptions ({ requireAuthorization, authorizeTimeoutMs, revokedEvent, presenceEvent }) {
  if (typeof requireAuthorization !== 'boolean') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `requireAuthorization must be a boolean, got ${describe(requireAuthorization)}`)
  }
  if (typeof authorizeTimeoutMs !== 'number') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `authorizeTimeoutMs must be a number, got ${describe(authorizeTimeoutMs)}`)
  }
  if (!Number.isSafeInteger(authorizeTimeoutMs) || authorizeTimeoutMs < 1 || authorizeTimeoutMs > MAX_RETRY_MS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `authorizeTimeoutMs must be a whole number of milliseconds from 1 to ${MAX_RETRY_MS}, got ${describe(authorizeTimeoutMs)}`)
  }
  // Its wire rule (one non-empty line) is the same as resetEvent's.
  const event = nonEmptyString(revokedEvent, 'revokedEvent')
  if (/[\r\n]/.test(event)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `revokedEvent must be one line, got ${describe(revokedEvent)}`)
  }
  const presence = nonEmptyString(presenceEvent, 'presenceEvent')
  if (/[\r\n]/.test(presence)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `presenceEvent must be one line, got ${describe(presenceEvent)}`)
  }
  return { requireAuthorization, authorizeTimeoutMs, revokedEvent: event, presenceEvent: presence }
}

/**
 * `createHub({ channels: { name: { history, maxClients, compression } } })`: settings for good, by name,
 * as `[name, channelOptions()]` pairs.
 */
function standingChannels (channels, hubCompression) {
  if (channels === undefined) return []
  const given = plainObject(channels, 'channels (an object of channel name -> { history, maxClients, compression })')
  return Object.keys(given).map((name) => [channelName(name), channelOptions(plainObject(given[name], `channels['${name}']`), hubCompression)])
}

/** `redis` as the native options: a URL string, or an object with `url` and the rest. */
function redisOptions (redis) {
  if (redis === undefined) return undefined
  const given = typeof redis === 'string' ? { url: redis } : plainObject(redis, 'redis')
  const merged = withDefaults(given, REDIS_DEFAULTS, 'redis option')
  const url = nonEmptyString(merged.url, 'redis.url (redis://host:port)')
  if (url.startsWith('rediss://')) {
    // The addon is built without a TLS stack for Redis; say so here, not at the first connect.
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', 'redis.url: TLS to Redis (rediss://) is not supported yet; reach Redis over a private network or a local TLS tunnel (stunnel, a sidecar) with redis://')
  }
  if (!url.startsWith('redis://') && !url.startsWith('unix:') && !url.startsWith('redis+unix:')) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `redis.url must start with redis:// or unix:, got ${describe(url)}`)
  }
  return {
    url,
    prefix: nonEmptyString(merged.prefix, 'redis.prefix'),
    maxBufferEvents: number(merged.maxBufferEvents, 'redis.maxBufferEvents'),
    maxBufferBytes: number(merged.maxBufferBytes, 'redis.maxBufferBytes'),
    streamEvents: number(merged.streamEvents, 'redis.streamEvents'),
    recoveryMs: number(merged.recoveryMs, 'redis.recoveryMs'),
    reconnectMinMs: number(merged.reconnectMinMs, 'redis.reconnectMinMs'),
    reconnectMaxMs: number(merged.reconnectMaxMs, 'redis.reconnectMaxMs')
  }
}

/** Whole seconds, as the Retry-After header carries them. */
function retryAfter (value) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION',
      `retryAfterSeconds must be a non-negative whole number of seconds, got ${describe(value)}`)
  }
  return value
}

/**
 * `hub.close(options)` checked, with its defaults; null without options (the plain close).
 * The final event is checked as send() checks a message: a bad one throws before anything
 * closes.
 */
function closeOptions (options, hubRetryMs) {
  if (options === undefined) return null
  const merged = withDefaults(plainObject(options, 'close options'), CLOSE_DEFAULTS, 'close option')
  return {
    drainMs: number(merged.drainMs, 'drainMs'),
    spreadMs: number(merged.spreadMs, 'spreadMs'),
    retryMs: merged.retryMs === undefined ? (hubRetryMs ?? CLOSE_RETRY_MS) : retryValue(merged.retryMs, 'retryMs'),
    retryJitterMs: number(merged.retryJitterMs, 'retryJitterMs'),
    finalEvent: merged.finalEvent === undefined ? [] : messageArgs(merged.finalEvent)
  }
}

/**
 * `compression` as the native options' (undefined: off), each field unset taken from
 * `defaults`; the core checks the ranges.
 */
function compressionOptions (compression, defaults = COMPRESSION_DEFAULTS) {
  if (compression === false) return undefined
  const merged = withDefaults(compression === true ? {} : plainObject(compression, 'compression (true, false or { level, keyframeEvery })'), defaults, 'compression option')
  return { level: number(merged.level, 'compression.level'), keyframeEvery: number(merged.keyframeEvery, 'compression.keyframeEvery') }
}

/**
 * A channel's `compression` as the native setting (undefined: not given): false is off, true
 * the hub's settings, an object the hub's with its fields over them. `hub` is the hub's
 * (undefined: the hub does not compress, so no stream is gzip and only false means anything).
 */
function channelCompression (compression, hub) {
  if (compression === undefined) return undefined
  if (compression === false) return { off: true }
  if (hub === undefined) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', 'a channel\'s compression needs a hub that compresses: createHub({ compression: true }), then a channel may set false or its own { level, keyframeEvery }')
  }
  if (compression === true) return { off: false }
  return { off: false, settings: compressionOptions(plainObject(compression, 'channel compression (true, false or { level, keyframeEvery })'), hub) }
}

/** `history` as the native options' flat fields; all undefined (off) when undefined or false. */
function historyOptions (history) {
  if (history === undefined || history === false) return { historyMaxEvents: undefined, historyMaxBytes: undefined, historyMaxAgeMs: undefined }
  const merged = withDefaults(history === true ? {} : plainObject(history, 'history'), HISTORY_DEFAULTS, 'history option')
  return {
    historyMaxEvents: number(merged.maxEvents, 'history.maxEvents'),
    historyMaxBytes: number(merged.maxBytes, 'history.maxBytes'),
    historyMaxAgeMs: number(merged.maxAgeMs, 'history.maxAgeMs')
  }
}

/**
 * `hub.channel(name, options)`: the channel's own history as native fields (undefined: not
 * given), its cap (undefined: not given; null: none) and its compression (see
 * channelCompression; `hubCompression` is the hub's native compression options).
 */
function channelOptions (options, hubCompression) {
  if (options === undefined) return { history: undefined, maxClients: undefined, compression: undefined }
  const given = plainObject(options, 'channel options')
  rejectUnknownKeys(given, CHANNEL_KEYS, 'channel option')
  const history = given.history === undefined ? undefined : historyOptions(given.history)
  let maxClients
  if (given.maxClients === null) maxClients = null
  else if (given.maxClients !== undefined) maxClients = number(given.maxClients, 'maxClients')
  return { history, maxClients, compression: channelCompression(given.compression, hubCompression) }
}

function nonEmptyString (value, name) {
  if (typeof value !== 'string' || value.length === 0) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} must be a non-empty string, got ${describe(value)}`)
  }
  return value
}

/** A string that reaches Rust as written: a lone surrogate would become U+FFFD on the way. */
function string (value, name) {
  if (typeof value !== 'string') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} must be a string, got ${describe(value)}`)
  }
  if (!value.isWellFormed()) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} ${JSON.stringify(value)} is not well-formed Unicode (a lone surrogate)`)
  }
  return value
}

function attachOptions (options, hubRetryMs) {
  const given = plainObject(options, 'attach options')
  rejectUnknownKeys(given, ATTACH_KEYS, 'attach option')
  const transport = given.transport === undefined ? 'auto' : given.transport
  if (!TRANSPORTS.has(transport)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
      `transport must be 'auto', 'native' or 'node', got ${describe(transport)}`)
  }
  const retryMs = given.retryMs === undefined ? hubRetryMs : retryValue(given.retryMs, 'retryMs')
  const channels = given.channels === undefined ? [] : channelList(given.channels)
  return { transport, retryMs, channels, lastEventId: fallbackLastEventId(given.lastEventId), user: userOption(given.user) }
}

/** `client.subscribe(channel, { request })`: the request a rule's check is shown (else null). */
function subscribeOptions (options) {
  const given = plainObject(options, 'subscribe options')
  rejectUnknownKeys(given, SUBSCRIBE_KEYS, 'subscribe option')
  return given.request ?? null
}

/** `hub.revoke({ user, channel })`: at least one, each a non-empty string. */
function revokeSelector (selector) {
  const given = plainObject(selector, 'revoke selector')
  rejectUnknownKeys(given, REVOKE_KEYS, 'revoke selector key')
  const { user, channel } = given
  if (user === undefined && channel === undefined) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', 'revoke({ user, channel }): give a user, a channel, or both')
  }
  if (user !== undefined && (typeof user !== 'string' || user === '')) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `revoke(): user must be a non-empty string, got ${describe(user)}`)
  }
  return { user, channel: channel === undefined ? undefined : channelName(channel) }
}

/** attach()'s `user`: who the app says the client is (rules then see it, and grants must agree). */
function userOption (user) {
  if (user === undefined || user === null) return null
  if (typeof user !== 'string' || user === '' || !user.isWellFormed()) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `user must be a non-empty well-formed string, got ${describe(user)}`)
  }
  return user
}

/** attach()'s `lastEventId`: where a request that carries no id resumes from ('' for none). */
function fallbackLastEventId (value) {
  if (value === undefined) return ''
  if (typeof value !== 'string' || !value.isWellFormed()) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `lastEventId must be a well-formed string, got ${describe(value)}`)
  }
  return value
}

/** `hub.response(request, options)`: attach()'s options but `transport`, plus the
 *  response's own `headers` (any HeadersInit: CORS, request ids) and `heartbeatMs`. */
function responseOptions (options, hubRetryMs) {
  const given = plainObject(options, 'response options')
  rejectUnknownKeys(given, RESPONSE_KEYS, 'response option')
  const retryMs = given.retryMs === undefined ? hubRetryMs : retryValue(given.retryMs, 'retryMs')
  const channels = given.channels === undefined ? [] : channelList(given.channels)
  const headers = given.headers
  if (headers !== undefined && (headers === null || typeof headers !== 'object')) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `headers must be a Headers, an object or an array of pairs, got ${describe(headers)}`)
  }
  const heartbeatMs = given.heartbeatMs === undefined ? undefined : number(given.heartbeatMs, 'heartbeatMs')
  if (heartbeatMs !== undefined && (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < 1 || heartbeatMs > MAX_RETRY_MS)) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION',
      `heartbeatMs must be a whole number of milliseconds from 1 to ${MAX_RETRY_MS}, got ${describe(heartbeatMs)}`)
  }
  const transport = given.transport === undefined ? 'auto' : given.transport
  if (transport !== 'auto' && transport !== 'fetch') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `transport must be 'auto' or 'fetch', got ${describe(transport)}`)
  }
  return { retryMs, channels, headers, heartbeatMs, transport, lastEventId: fallbackLastEventId(given.lastEventId), user: userOption(given.user) }
}

function channelList (channels) {
  if (!Array.isArray(channels)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `channels must be an array of strings, got ${describe(channels)}`)
  }
  for (const name of channels) channelName(name)
  return [...new Set(channels)]
}

function channelName (name) {
  if (typeof name !== 'string' || name.length === 0) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_CHANNEL', `a channel name must be a non-empty string, got ${describe(name)}`)
  }
  if (name.length > MAX_CHANNEL_LENGTH) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_CHANNEL',
      `channel names are at most ${MAX_CHANNEL_LENGTH} characters, got ${name.length}`)
  }
  // A lone surrogate has no UTF-8 form: crossing into Rust it would become U+FFFD, and two
  // different names would be one channel (and one Redis key).
  if (!name.isWellFormed()) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_CHANNEL',
      `channel name ${JSON.stringify(name)} is not well-formed Unicode (a lone surrogate); use name.toWellFormed() or another name`)
  }
  return name
}






/** `client.writable(options)`: whether ending the Writable closes the client (default true). */
function writableOptions (options) {
  const given = plainObject(options, 'client.writable() options')
  rejectUnknownKeys(given, WRITABLE_KEYS, 'client.writable() option')
  if (given.end !== undefined && typeof given.end !== 'boolean') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `end must be a boolean, got ${describe(given.end)}`)
  }
  return { end: given.end !== false }
}


module.exports = { NATIVE_DEFAULTS, HUB_DEFAULTS, REDIS_DEFAULTS, HISTORY_DEFAULTS, CLOSE_DEFAULTS, hubOptions, channelOptions, closeOptions, attachOptions, responseOptions, subscribeOptions, revokeSelector, writableOptions, channelName }
