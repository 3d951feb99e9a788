import type { EventEmitter } from 'node:events'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { HubMetrics, HubStats } from './binding'

/**
 * Event names mapped to their `data` types, e.g.
 * `createHub<{ price: { symbol: string; price: number }; note: string }>()`, as a type alias
 * or an interface (`interface Events { price: Price }`). The `message` key types events sent
 * without an `event` name.
 */
// `object`, not an index signature: an interface has none, and would be refused (TS2344).
export type EventMap = object

/** The event map of an untyped hub: any event name, any data. */
export type AnyEvents = { [event: string]: unknown }

/**
 * Why a client left, reported exactly once per client. What each reason means is stated here
 * only; the `'close'` event, `client.closeReason`, the `'disconnect'` info,
 * `hub.metrics().closes` and the Prometheus counter use these names.
 */
export type CloseReason =
  /** The peer left: it closed the connection (TCP FIN) or reset it (RST, which a write may
   *  see as a broken pipe). Nothing failed on the server's side. */
  | 'client'
  /** The connection failed other than by the peer leaving or a deadline: a socket error on
   *  the server's side, a handoff to the native transport that failed, a panic in the
   *  client's writer; on the Node transport also bytes after the request that Node's HTTP
   *  parser refused. */
  | 'error'
  /** The peer acknowledged nothing for `writeTimeoutMs` while data was pending to it: it
   *  stopped reading, or vanished. */
  | 'timeout'
  /** The client lagged past the window under `overflow: 'disconnect'`. */
  | 'slow'
  /** The server closed it: `client.close()` or `hub.close()`. */
  | 'server'
  /** `attach()` refused it and answered `503` (see `client.refusal`); it never connected. */
  | 'refused'
  /** A `HEAD` request: answered with the head a `GET` would get and no body; it never connected. */
  | 'head'

/** Why `attach()` refused a client: `503` with `Retry-After`, or `403` when `'forbidden'`. */
export type Refusal =
  /** The hub has `maxClients` clients. */
  | 'hub-full'
  /** A channel it asked for has its `maxClients` subscribers. */
  | 'channel-full'
  /** The hub is closing, or closed. */
  | 'closing'
  /** An authorization rule denied a channel it asked for (`403`). */
  | 'forbidden'
  /** An authorization check threw or did not answer within `authorizeTimeoutMs` (`503`). */
  | 'authorization-failed'

/** The fields every message may carry, whatever its event. */
export interface MessageFields {
  /** Event id, echoed back by reconnecting clients as `Last-Event-ID`. One line, no NUL. A number is converted with String(). */
  id?: string | number
  /** Reconnection delay for the client, in milliseconds (non-negative whole number). */
  retry?: number
}

/**
 * A message that only changes the client's reconnection delay. Every other message needs
 * `data`: clients never dispatch an event without a data line, so one without `data` throws
 * `ERR_SSE_INVALID_MESSAGE` (pass `data: ''` for an empty event).
 */
export interface RetryMessage {
  /** Reconnection delay for the client, in milliseconds (non-negative whole number). */
  retry: number
  data?: never
  event?: never
  id?: never
}

/** One event of an untyped hub. */
export interface UntypedMessage extends MessageFields {
  /**
   * The payload, required (`''` for an empty event). A string is sent as is (CR, LF and CRLF
   * each start a new `data:` line, so the client sees LF-joined lines); a Buffer or typed array
   * is sent as UTF-8 text; any other value is sent as `JSON.stringify(data)`, computed once per
   * call, not once per client.
   */
  data: unknown
  /** Event type (`addEventListener(type)` on the client). One line: CR or LF throws `ERR_SSE_INVALID_FIELD`. */
  event?: string
}

/** One event of a typed hub: `event` names a key of the map and `data` has its type. */
export type TypedMessage<Events extends EventMap> = {
  [Name in keyof Events & string]: (Name extends 'message' ? { event?: Name } : { event: Name }) &
    { data: Events[Name] } & MessageFields
}[keyof Events & string]

/** A message for a hub with the event map `Events`. */
export type SseMessage<Events extends EventMap = AnyEvents> =
  (string extends keyof Events ? UntypedMessage : TypedMessage<Events>) | RetryMessage

/** History bounds for `Last-Event-ID` resume; `true` takes the defaults, `false` is off. */
export type HistoryOption = boolean | {
  /** Events kept per log. Default `1000`. */
  maxEvents?: number
  /** Bytes kept per log. Default `16777216` (16 MiB). */
  maxBytes?: number
  /** Events older than this are not kept; `0`: no age limit. Default `0`. */
  maxAgeMs?: number
}

/**
 * Options of `hub.channel(name, options)` and of each entry of `createHub({ channels })`.
 * Given to `hub.channel()`, they live on the channel and go with it: it exists from this call,
 * while it has subscribers or keeps events, and at least 10 s after each such call (so an
 * attach or publish a moment later finds them); then the name costs nothing. Settings meant
 * for good, whether the channel is in use or not, go in `createHub({ channels })`.
 */
export interface ChannelOptions {
  /**
   * This channel's own history instead of the hub's `history`, from now on (`false` turns
   * it off for this channel alone). Events published before anyone subscribes are kept, so
   * they can be resumed.
   */
  history?: HistoryOption
  /**
   * The most subscribers this channel takes, from now on: an `attach()` asking for it when
   * full is answered `503` with `Retry-After` (refusal `'channel-full'`), and
   * `client.subscribe()` returns false. Subscribers above a lowered cap stay. `null` lifts it.
   * Default: no cap.
   */
  maxClients?: number | null
  /**
   * How this channel's events are compressed for the gzip clients of a hub created with
   * `compression`, from its next event on: `false` sends them uncompressed inside those
   * streams (5 bytes per event of framing, no deflate work: for payloads that do not shrink,
   * such as already compressed or encrypted data), `true` the hub's settings, an object its
   * own `level` and `keyframeEvery` (each unset one the hub's). Anything but `false` on a hub
   * without `compression` throws `ERR_SSE_INVALID_OPTION`. Default: the hub's.
   */
  compression?: boolean | CompressionOptions
}

/** Options of a staged `hub.close(options)`. */
export interface CloseOptions {
  /** Each client's turn is drawn within this window, so reconnects arrive as a ramp. Default `0`. */
  spreadMs?: number
  /**
   * From its turn on, how long a client may take to receive what is queued for it (and the
   * final event) before its connection is cut. Default `5000`.
   */
  drainMs?: number
  /**
   * Each client gets `retry:` drawn from `retryMs` to `retryMs + retryJitterMs`, so clients
   * closed together still reconnect apart. Default: the hub's `retryMs`, else `1000`.
   */
  retryMs?: number
  /** See `retryMs`. Default `1000`. */
  retryJitterMs?: number
  /** The last event every client gets (e.g. `{ event: 'shutdown', data: '' }`). Default: none. */
  finalEvent?: UntypedMessage
}

/**
 * The context object of the `native-sse:publish` TracingChannel
 * (`diagnostics.tracingChannel('native-sse:publish')`): one per `hub.publish()` or
 * `hub.broadcast()` made while it has subscribers, from `start` to `asyncEnd`. A subscriber may
 * keep its own fields on it (a span).
 */
export interface PublishTraceContext {
  hub: Hub<any>
  /** `null` for `broadcast()`. */
  channel: string | null
  /** Absent on a `backend` delivery's context. */
  message?: UntypedMessage
  /** From `end`: the clients it was queued for. */
  result?: number
  /** From `error`: what the call threw (nothing was sent; no delivery follows). */
  error?: Error
  /**
   * From `asyncStart`/`asyncEnd`: this process wrote the event to every client it was for, or
   * they left (`complete`), or the hub let it go first (`complete: false`: a client lagged out
   * under `overflow: 'drop-oldest'`). `elapsedMs` counts from the publish (from when Redis
   * stored it, for an event that came through Redis).
   */
  delivery?: { recipients: number, complete: boolean, elapsedMs: number }
  /**
   * Set by a `start` subscriber (a W3C `traceparent`, say): with `redis` it travels with the
   * event, and every process's delivery of it comes on a context of its own with
   * `backend: true` and this value. Such a hub's publish contexts end at `end`.
   */
  traceContext?: string
  /** A delivery of an event that came through Redis (this process's own included). */
  backend?: true
  [key: string]: unknown
}

export interface HubOptions {
  /** A heartbeat comment (`:`) is written after this many ms without any write. Default `15000`. */
  heartbeatMs?: number
  /**
   * A connection whose peer acknowledges no bytes for this many ms while data is pending is
   * closed with reason `'timeout'`; also the TCP user timeout for unacknowledged data. A peer
   * that reads slowly is never cut, and a cut client resumes exactly with `Last-Event-ID`.
   * Default `8000`: with keepalive probes after 5 s of silence, a peer that stopped reading or
   * vanished (idle or not) is closed within 10 s. Peers on loopback (a proxy on the same host)
   * get no probes: they cannot vanish without a FIN or an RST.
   */
  writeTimeoutMs?: number
  /**
   * How far a client may lag, in events, before `overflow` applies. Published events are kept
   * once, in a log per channel (and one for `broadcast`), and each client reads them through a
   * cursor: a client that is behind costs a position, not a copy. Each log keeps at most this
   * many events (its window) and releases what every reader has passed; a client's own
   * `send()`s wait in its mailbox, bounded the same way. Default `65536`.
   */
  maxLagEvents?: number
  /**
   * How far a client may lag, in bytes: each log's window and each client's mailbox bound. A
   * publisher burst may run this far ahead of clients that keep reading without cutting them;
   * a channel never holds more than this, whatever its audience.
   * Default `33554432` (32 MiB).
   */
  maxLagBytes?: number
  /**
   * The largest encoded event or comment accepted; a larger one throws
   * `ERR_SSE_EVENT_TOO_LARGE` and is sent to nobody. Checked on the encoded frame, where each
   * line of `data` costs a `data: ` prefix, so a 1 MB payload of many short lines encodes to
   * more than 1 MB. At most `maxLagBytes`. Default `8388608` (8 MiB), which accepts any 1 MiB
   * payload whatever its line structure; when only `maxLagBytes` is set lower, this follows it.
   */
  maxEventBytes?: number
  /**
   * What happens when a client lags past `maxLagEvents` or `maxLagBytes`: `'disconnect'`
   * closes it with reason `'slow'`; `'drop-oldest'` skips it ahead past the events its logs no
   * longer keep (and drops its oldest mailbox frames), counting them in `metrics().dropped`.
   * Default `'disconnect'`.
   */
  overflow?: 'disconnect' | 'drop-oldest'
  /**
   * Bytes sent to one client (`client.send()`, `client.comment()`) and not yet written, above
   * which `send()` returns false: wait for `await client.drain()` before sending more.
   * `client.stream()` and `client.writable()` wait by themselves. Default `65536`.
   */
  highWaterMark?: number
  /**
   * History for `Last-Event-ID` resume, kept by every log (broadcast and each channel). With
   * it on, an event published without an `id` gets one the hub makes (opaque, increasing,
   * carrying this hub's epoch so ids from another hub or process are recognised), app-given
   * ids are indexed, and a reconnecting client gets every event after its `Last-Event-ID`,
   * then live ones, exactly once. A channel with history lives on without subscribers, so
   * each holds up to `maxBytes` for as long as the hub runs. `true` takes the defaults.
   * Default: off.
   */
  history?: HistoryOption
  /**
   * The event a client gets when its `Last-Event-ID` cannot be resumed from (unknown, from
   * another hub or process, older than the history, or an id the application gave several
   * events still held, such as a `publishStream` id run twice), before live events; its data is
   * `{"reason":"unknown"|"foreign"|"expired"|"ambiguous"}`. With Redis, also mid-stream with
   * `{"reason":"gap"}` when events were lost between Redis and this hub (pub/sub dropped them
   * and the stream no longer held them). Default `'sse-reset'`.
   */
  resetEvent?: string
  /**
   * A query parameter read as the `Last-Event-ID` when the request has no such header: a new
   * `EventSource` cannot set headers, so `native-sse/client` passes the id this way when it
   * reconnects one itself. `false` reads no parameter. Default `'lastEventId'`.
   */
  lastEventIdQuery?: string | false
  /** Sent as `retry:` to every client on connect; unset sends nothing. Default `undefined`. */
  retryMs?: number
  /** Threads of the hub's tokio runtime. Default: CPU cores minus one, from 1 to 4. */
  workerThreads?: number
  /**
   * The most clients connected at once. Past it, `attach()` answers `503` with `Retry-After`
   * itself and returns a refused client (`client.refusal`); nobody is disconnected. Note that
   * a browser's `EventSource` does not retry after a `503`. Default: no cap.
   */
  maxClients?: number
  /**
   * The most channels one client may be subscribed to at once. An `attach()` asking for more,
   * or a `client.subscribe()` past it, throws a `RangeError` with code
   * `ERR_SSE_TOO_MANY_CHANNELS` (nothing is written). Each event costs a client's writer
   * O(its channels), so this bounds what one client can cost. Default `1000`.
   */
  maxChannelsPerClient?: number
  /** The `Retry-After` of every `503` the hub answers (full, or closing), in seconds. Default `5`. */
  retryAfterSeconds?: number
  /**
   * Share events with every hub of the same `prefix` through Redis (6.2 or later), from
   * Rust: `hub.publish()` and `hub.broadcast()` go through Redis, which numbers each event,
   * keeps it in a stream (trimmed like the channel's `history`) and announces it; every
   * hub, the publisher's included, delivers it with the same id in the same order, and a
   * client can resume on any of them. `client.send()` and `hub.comment()` stay local. A URL
   * string takes the defaults. Await `hub.ready()` before serving. Default: none.
   */
  redis?: string | RedisOptions
  /**
   * gzip for every client whose `Accept-Encoding` allows it (`Content-Encoding: gzip`, and
   * `Vary: Accept-Encoding` on every stream), on the native, Node and Fetch transports. Each
   * channel's events are compressed once for all its gzip clients, not once per client: no
   * compressor per connection. A client in step with its channel's stream gets the shared
   * bytes; one that is not (just joined, resumed, sent something of its own, or reading
   * several busy channels) gets stored (uncompressed) blocks until the channel's next
   * keyframe. Heartbeats are empty deflate blocks (5 bytes, nothing decoded). Lag bounds
   * count plain bytes; `metrics().compression` gives plain bytes and the bytes they became.
   * `true` takes the defaults. Default `false`.
   */
  compression?: boolean | CompressionOptions
  /**
   * The accept queue the first stream `attach()` opens on a server gives that server's
   * listening socket (once per server; `hub.route()` has its own `backlog`; the Fastify plugin
   * gives it as the server starts listening, before any stream): `true` asks for
   * the most the system allows (`net.core.somaxconn`, 4096 on recent Linux), a number for that
   * many, `false` keeps the server's own (Node's 511, or what `listen()` was given). In a
   * reconnect wave handshakes beyond the queue are dropped by the kernel, and each of those
   * clients waits for its SYN retry (1 s, then 3 s) before the server sees it. A cluster
   * worker under round-robin scheduling (Node's default but on Windows: the primary accepts)
   * has no socket to set; under `SCHED_NONE` the workers share one, and its queue is all of
   * theirs. Default `true`.
   */
  listenBacklog?: boolean | number
  /**
   * Settings for good, by channel name (`{ orders: { history: { maxEvents: 10000 } },
   * typing: { history: false }, lobby: { maxClients: 500 } }`): they apply whenever the channel
   * exists, used or not. `hub.channel(name, options)` overrides them while the channel lives.
   * Default: none.
   */
  channels?: Record<string, ChannelOptions>
  /**
   * Every channel needs an authorization rule (`hub.authorize()`): one no rule matches is
   * denied. Default `false`: a channel no rule matches is open to anyone.
   */
  requireAuthorization?: boolean
  /**
   * How long an authorization check may take; past it the attach is answered `503`
   * (`'authorization-failed'`) and a `subscribe()` rejects. Default `10000`.
   */
  authorizeTimeoutMs?: number
  /**
   * The event that tells a client a grant ended (expired or revoked), data
   * `{ channel, reason: 'expired' | 'revoked' }`. Default `'sse-revoked'`.
   */
  revokedEvent?: string
  /**
   * The event that tells a presence channel's subscribers who is there: first a snapshot
   * (`PresenceSnapshot`), then joins and leaves (`PresenceChange`). Default `'sse-presence'`.
   */
  presenceEvent?: string
}

/** One member of a presence channel: a user, however many connections (tabs) it has. */
export interface Member {
  user: string
  /** Its connections to the channel, in every process. */
  connections: number
  /** Its grant's `data` for the channel (`hub.authorize()`), or `null`. */
  data: unknown
}

/** `hub.members(channel)`. */
export interface Members {
  users: number
  connections: number
  members: Member[]
}

/** The first presence event a subscriber gets for a channel: who is there now. */
export interface PresenceSnapshot {
  channel: string
  members: Member[]
  snapshot: true
}

/**
 * Who came and went since the subscriber last heard (its snapshot, or the last change): at
 * most one a second per channel, a user's first connection a join, its last one gone a leave.
 */
export interface PresenceChange {
  channel: string
  joins: { user: string; data: unknown }[]
  leaves: string[]
}

/** `hub.presence(pattern, options)`. */
export interface PresenceOptions {
  /** Send subscribers the snapshot, then joins and leaves (`presenceEvent`). Default `true`. */
  events?: boolean
}

/** The parameters a channel pattern names: `'org:{org}/room:{room}'` gives `{ org: string; room: string }`. */
export type PatternParams<Pattern extends string> =
  Pattern extends `${string}{${infer Name}}${infer Rest}`
    ? { [Key in Name]: string } & PatternParams<Rest>
    : {}

/** What an authorization check is given. */
export interface AuthorizationContext<Pattern extends string = string, Request = any, Events extends EventMap = AnyEvents> {
  /** The channel asked for. */
  channel: string
  /** The pattern's parameters, as they appear in the name (never decoded). */
  params: PatternParams<Pattern>
  /**
   * The request as the framework gave it: node:http's or Express's `req`, Fastify's
   * `request`, a Fetch API `Request` for `response()`; for `client.subscribe()` the one given
   * in its options, else `null`; `null` when a grant is renewed.
   */
  request: Request | null
  /** The client (held while checks decide an attach); `null` for a `HEAD`. */
  client: Client<Events> | null
  /** Who the client is so far (attach's `user`, or an earlier grant's), or `null`. */
  user: string | null
  /** True when a `renew: true` rule is asked again before a grant expires. */
  renewal: boolean
}

/**
 * What a check answers: `true` allows; `false`, `null`, `undefined` or `{ allow: false }` deny;
 * a grant allows with an expiry (the subscription ends then, and the client gets the
 * `revokedEvent`), an identity (`client.user`; grants of one client must agree) and data.
 */
export type AuthorizationAnswer = boolean | null | undefined | { allow: false } | {
  allow?: true
  /** When the grant ends: a Date or milliseconds since 1970. Default: never. */
  expiresAt?: number | Date
  user?: string
  data?: unknown
}

/** `hub.authorize(pattern, check, options)`. */
export interface AuthorizeOptions {
  /**
   * Before a grant expires (5 s before, or a quarter of its life when shorter) the check is
   * asked again with `renewal: true`; a grant with a later expiry keeps the subscription.
   * Default `false`: it ends at its expiry.
   */
  renew?: boolean
}

/** `hub.revoke(selector)`: a user, a channel, or both. */
export type RevokeSelector = { user: string; channel?: string } | { user?: string; channel: string }

export interface RedisOptions {
  /** `redis://[user:password@]host:port[/db]` or `unix:`; TLS (`rediss://`) is not supported yet. Required. */
  url: string
  /**
   * Namespace: hubs with the same prefix share events. Every key is `{prefix}:...`, one
   * hash tag, so with Redis Cluster a namespace lives in one slot. Default `'sse'`.
   */
  prefix?: string
  /**
   * Events published here that may wait for Redis (while it is away, or behind). Past it (or
   * `maxBufferBytes`), `publish`/`broadcast` throw `ERR_SSE_BACKEND_UNAVAILABLE` and nothing
   * is sent. Default `100000`.
   */
  maxBufferEvents?: number
  /** Bytes of the events waiting for Redis; see `maxBufferEvents`. Default 64 MiB. */
  maxBufferBytes?: number
  /**
   * Events Redis keeps per channel without `history` (with history: `history.maxEvents`):
   * what a hub can recover when pub/sub dropped announcements. Default `1000`.
   */
  streamEvents?: number
  /**
   * How long Redis keeps the stream of a channel without `history` after its last event: what
   * a hub that was away or behind can recover. Past it the stream and its bookkeeping go, so
   * one-off channels do not pile up in Redis. Default `300000` (5 minutes).
   */
  recoveryMs?: number
  /** First reconnect delay; each next one doubles, with jitter, up to `reconnectMaxMs`. Default `100`. */
  reconnectMinMs?: number
  /** Longest reconnect delay. Default `5000`. */
  reconnectMaxMs?: number
}

export interface AttachOptions {
  /** `retry:` sent on connect to this client, overriding the hub's `retryMs`. Default: the hub's. */
  retryMs?: number
  /**
   * `'auto'` (the default) hands plain HTTP/1.x sockets to the Rust runtime and serves the rest
   * (TLS, HTTP/2, Windows) through Node; `'native'` insists on the handoff and throws
   * `ERR_SSE_TRANSPORT_UNAVAILABLE` where it is impossible; `'node'` always serves through Node.
   * Queues, bounds, heartbeats and close reasons behave the same on both.
   */
  transport?: 'auto' | 'native' | 'node'
  /** Channels this client receives `hub.publish(channel, ...)` events from. Default `[]`. */
  channels?: readonly string[]
  /**
   * Where a request that carries no `Last-Event-ID` (header or query) resumes from, e.g. a
   * `hub.publishStream()` stream's `startId`, so a new tab gets the stream from its start.
   * Default none.
   */
  lastEventId?: string
  /** Who the client is (`client.user`), for authorization rules; their grants must agree. Default none. */
  user?: string
}

/** What a route's `open(request)` is shown of a request for its path. */
export interface RouteRequest {
  /** `'GET'` (or `'HEAD'` when Node parsed it). */
  method: string
  /** The request target: path and query (`/events?room=a`). */
  url: string
  /** Request headers, names lower-cased, repeated ones as Node's `req.headers` has them (the first Host or Authorization, cookies joined with '; ', `set-cookie` an array). */
  headers: Record<string, string | string[] | undefined>
  /** The peer's address and port, or null when unknown. */
  remoteAddress: string | null
  remotePort: number | null
}

/** What a route's `open(request)` returns: attach()'s options (the route picks the transport), plus the stream's headers. */
export interface RouteOpenOptions extends Omit<AttachOptions, 'transport'> {
  /**
   * More headers for the stream's response (CORS, request ids), checked as Node checks them
   * (a value with a character Node refuses answers 500); an array gives a line per value
   * (`set-cookie`). The event-stream head (`content-type`, `cache-control`,
   * `x-accel-buffering`, framing) is set over them; a `vary` is merged. Default none.
   */
  headers?: Record<string, string | number | readonly string[]>
}

/** `hub.route(server, path, open, options)`. */
export interface RouteOptions<Events extends EventMap = AnyEvents> {
  /**
   * The accept queue given to the server's listening socket: `true` (the default) asks for the
   * most the system allows (`net.core.somaxconn`, 4096 on recent Linux), a number for that
   * many, `false` keeps Node's (511, or what `listen()` was given). A wave's handshakes beyond
   * the queue are dropped, and each client then waits for its SYN retry (1 s).
   */
  backlog?: boolean | number
  /** Called with each stream the route opens (after its authorization checks), and the request. A throw closes the client. */
  onClient?: (client: Client<Events>, request: RouteRequest) => void
  /** How long an async `open` may take; past it the request is answered 503 with `Retry-After: 1`. Default `10000`. */
  openTimeoutMs?: number
}

/** What `hub.route()` returns. */
export interface Route {
  /** Whether new connections are looked at before Node parses them: true once the server listens on TCP (false: TLS, HTTP/2, a Unix socket, not listening yet, or closed). */
  readonly fronting: boolean
  /** New connections whose first request this route answered (a stream, or a refusal Node writes), and new connections of the server left to Node. */
  readonly counts: { taken: number, passed: number }
  /** Gives the path back to the app; streams already open stay. */
  close(): void
}

/** What response() reads of a Hono context (`c`): its request, and on Node the adapter's `env`. */
export interface HonoContextLike {
  req: { raw: Request }
  env: unknown
  res?: Response
}

/** `hub.response(request, options)`: attach()'s options, for a Fetch API `Response`. */
export interface ResponseOptions {
  /** `retry:` sent on connect to this client, overriding the hub's `retryMs`. Default: the hub's. */
  retryMs?: number
  /** Channels this client receives `hub.publish(channel, ...)` events from. Default `[]`. */
  channels?: readonly string[]
  /**
   * More headers for the response (CORS, request ids). The event-stream head
   * (`content-type`, `cache-control`, `x-accel-buffering`) is set over them. Default none.
   */
  headers?: HeadersInit
  /** As attach()'s `lastEventId`. */
  lastEventId?: string
  /**
   * This body's heartbeat period, for a runtime or proxy that cuts a response quiet for less
   * than the hub's `heartbeatMs`. Default: the hub's; under Bun at most 8000, because
   * `Bun.serve` closes a response idle for its `idleTimeout` (10 s unless set).
   */
  heartbeatMs?: number
  /** As attach()'s `user`. */
  user?: string
  /**
   * `'auto'` (default): a Hono context on Node is served natively, as attach() serves it.
   * `'fetch'`: always through the Response body.
   */
  transport?: 'auto' | 'fetch'
}

/** The names of `Events` whose data may be a `Data` (any name for an untyped map). */
export type EventsWithData<Events extends EventMap, Data> = string extends keyof Events
  ? string
  : { [Name in keyof Events & string]: Data extends Events[Name] ? Name : never }[keyof Events & string]

/**
 * The events a resumable stream publishes besides its items, under their default names: add
 * them to a typed hub's map (`type Events = { token: string } & StreamEvents`) so clients
 * typed by it can listen to them.
 */
export type StreamEvents = {
  /** `<id>.0`, data the stream's id. */
  start: string
  /** After the last item: how many items were published. */
  end: { events: number }
  /** The source threw or was stopped: `{ message: 'stream failed' }` unless `errorData` says otherwise. */
  'stream-error': { message: string }
}

/**
 * One item of a resumable stream: text (a string, or UTF-8 bytes) that becomes the data of an
 * event named by the `event` option, or a message of the hub's map without `id` (the stream
 * numbers its events).
 */
export type StreamItem<Events extends EventMap = AnyEvents> =
  | string
  | Uint8Array
  | (Exclude<SseMessage<Events>, RetryMessage> & { id?: never })

/** `hub.publishStream(channel, source, options)`; typed by the hub's event map and the source's items. */
export interface PublishStreamOptions<Events extends EventMap = AnyEvents, Item = StreamItem<Events>> {
  /** The stream's id: its events are `<id>.1`, `<id>.2`, …; 1-128 of `[A-Za-z0-9_-]`. Default: random. */
  id?: string
  /**
   * The event name of each item that has none: with text items, an event whose data is a
   * string. Default none (`message`).
   */
  event?: [Item] extends [string | Uint8Array] ? EventsWithData<Events, string> : keyof Events & string
  /** The event `<id>.0` that opens the stream, data the id. Default `'start'`. */
  startEvent?: EventsWithData<Events, string>
  /** The event after the last item, data `{ events }`. Default `'end'`. */
  endEvent?: EventsWithData<Events, { events: number }>
  /**
   * The event when the source throws or the stream is stopped (`signal`, `hub.close()`), data
   * `{ message: 'stream failed' }` unless `errorData` says otherwise. Default `'stream-error'`.
   */
  errorEvent?: keyof Events & string
  /**
   * The data of the error event, from the error (the source's, or the abort reason): what
   * subscribers may see of it. The source's error itself stays in `done`, never on the wire.
   * Returning `undefined`, throwing or returning data `publish()` refuses sends the default
   * `{ message: 'stream failed' }`.
   */
  errorData?: (error: unknown) => unknown
  /**
   * What the channel keeps at least, while the stream runs and for `maxAgeMs` after it ended,
   * so it can be replayed whole; then the channel's own history applies again. `false` leaves
   * the channel's history as it is. Default `{ maxEvents: 100000, maxBytes: 16 MiB, maxAgeMs: 600000 }`.
   */
  history?: Exclude<HistoryOption, boolean> | false
  /**
   * Stops the stream when aborted: the source is told to stop (`iterator.return()`), the
   * error event is published, and `done` settles with `completed: false` and the abort reason.
   */
  signal?: AbortSignal
}

/** What `hub.publishStream()` returns at once. */
export interface PublishedStream {
  id: string
  /** `<id>.0`: the `lastEventId` that replays the stream from its start. */
  startId: string
  /**
   * Settles when the source ends, throws, is stopped by `signal`, or the hub closes (`error`
   * then has code `ERR_SSE_HUB_CLOSED`); never rejects.
   */
  done: Promise<{ id: string; events: number; completed: boolean; error?: unknown }>
}

/**
 * `hub.metrics()` with its `redis` part, and `hub.stats()`: defined once, in the binding
 * (src/reports.rs), which builds them in this shape.
 */
export type { HubMetrics, RedisMetrics, SignalCounts, HubStats } from './binding'

/** `createHub({ compression })`. */
export interface CompressionOptions {
  /** zlib's level, 1 (fastest) to 9 (smallest). Default `6`. */
  level?: number
  /**
   * Events of a channel between two full flushes: a client out of step with the channel's
   * stream waits at most this many events to rejoin it, and each full flush costs ratio (the
   * next event compresses as if alone). Default `32`.
   */
  keyframeEvery?: number
}

/** The hub's `'backend'` event. */
export interface BackendInfo {
  state: 'up' | 'down'
  /** Why it went down (the error), or what came up. */
  detail: string
}

/** Options of `hub.metricsText()` and of `native-sse/prometheus`. */
export interface ExpositionOptions {
  /** Starts every metric name; at most 256 characters. Default `'sse_'`. */
  prefix?: string
  /** Added to every sample, e.g. `{ hub: 'chat' }`; at most 64 labels and 4,096 characters in all, names and values as written (a backslash, quote or newline in a value counts twice). Default: none. */
  labels?: Record<string, string>
  /**
   * Adds per-channel series labelled `channel` (channel names are unbounded: opt in): `true`
   * for the 1,000 most subscribed channels, a number for that many (1 to 10,000); ties go by
   * name (code point order). The `channels` gauge counts every channel. Default `false`.
   */
  perChannel?: boolean | number
}

/** Fields of the hub's `'connect'` and `'disconnect'` events. */
export interface ConnectInfo {
  id: number
  transport: 'native' | 'node' | 'fetch'
  /** Its channels: as attached (`'connect'`), as subscribed when it left (`'disconnect'`). */
  channels: string[]
  remoteAddress: string | null
  remotePort: number | null
  lastEventId: string
  resume: 'none' | 'replayed' | 'reset'
  resumed: boolean
}

/** The hub's `'disconnect'` event. */
export interface DisconnectInfo extends ConnectInfo {
  reason: Exclude<CloseReason, 'refused' | 'head'>
  /** From attach to the recorded close. */
  durationMs: number
  /** Events written to it (comments, heartbeats and the opening `retry:` excluded). */
  events: number
  /** Body bytes written to it (native transport: HTTP chunk framing included). */
  bytes: number
}

/** The hub's `'refuse'` event. */
export interface RefuseInfo {
  reason: Refusal
  remoteAddress: string | null
  remotePort: number | null
  channels: string[]
  /** With `'forbidden'` and `'authorization-failed'`: why (the check's own error as its `cause`). */
  error?: SseError
}

/** An SSE error. `code` is stable: branch on it, not on the message. */
export interface SseError extends Error {
  code: SseErrorCode
}

/**
 * Every `err.code` native-sse raises, from the one table of codes (`native_sse_core::ErrorCode`
 * in crates/core/src/error.rs). `ERR_SSE_REFUSED` stays inside the hub: a refused attach is
 * answered `503` and returns a refused client instead.
 */
// BEGIN error codes: written by scripts/error-codes.js from the error table
export type SseErrorCode =
  | 'ERR_SSE_INVALID_FIELD'
  | 'ERR_SSE_INVALID_MESSAGE'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_INVALID_COMMENT'
  | 'ERR_SSE_INVALID_CHANNEL'
  | 'ERR_SSE_INVALID_ARGUMENT'
  | 'ERR_SSE_UNKNOWN_OPTION'
  | 'ERR_SSE_INVALID_OPTION'
  | 'ERR_SSE_INVALID_RETRY'
  | 'ERR_SSE_EVENT_TOO_LARGE'
  | 'ERR_SSE_TOO_MANY_CHANNELS'
  | 'ERR_SSE_CLIENT_CLOSED'
  | 'ERR_SSE_HUB_CLOSED'
  | 'ERR_SSE_REFUSED'
  | 'ERR_SSE_TRANSPORT_UNAVAILABLE'
  | 'ERR_SSE_BACKEND_UNAVAILABLE'
  | 'ERR_SSE_HEADERS_SENT'
  | 'ERR_SSE_ALREADY_ATTACHED'
  | 'ERR_SSE_INVALID_STATUS'
  | 'ERR_SSE_STOPPED'
  | 'ERR_SSE_STREAM_LIVE'
  | 'ERR_SSE_STREAM_HELD'
  | 'ERR_SSE_HUB_OPTIONS_CHANGED'
  | 'ERR_SSE_FORBIDDEN'
  | 'ERR_SSE_AUTHORIZATION_FAILED'
  | 'ERR_SSE_MISSING_DEPENDENCY'
  | 'ERR_SSE_NO_BINARY'
  | 'ERR_SSE_BINARY_LOAD_FAILED'
  | 'ERR_SSE_INTERNAL'
// END error codes

/** One attached connection. */
export declare class Client<Events extends EventMap = AnyEvents> extends EventEmitter {
  /** Hub-unique id; `0` for a refused client. */
  readonly id: number
  /**
   * `'native'` when Rust writes the socket, `'node'` when batches are written through Node,
   * `'fetch'` when they feed the body of a `hub.response()`; `null` for a refused client.
   */
  readonly transport: 'native' | 'node' | 'fetch' | null
  /**
   * Why `attach()` refused it and answered `503` with `Retry-After`, or `null` when it
   * attached. A refused client is closed from the start (`closeReason` `'refused'`, `'close'`
   * fires on the next tick) and sends do nothing, so a handler that does not test it still
   * behaves.
   */
  readonly refusal: Refusal | null
  /** The peer's IP address when it attached (`null` when unknown or refused). */
  readonly remoteAddress: string | null
  /** The peer's port when it attached (`null` when unknown or refused). */
  readonly remotePort: number | null
  /** The `Last-Event-ID` it connected with (header, or `lastEventIdQuery`), or `''`. */
  readonly lastEventId: string
  /**
   * What `lastEventId` resumed to: `'replayed'` (every later event, then live), `'reset'` (it
   * got the reset event and starts live) or `'none'` (no id, or no history).
   */
  readonly resume: 'none' | 'replayed' | 'reset'
  /** `resume === 'replayed'`. */
  readonly resumed: boolean
  /** With `resume: 'reset'`, why. */
  readonly resetReason: 'unknown' | 'foreign' | 'expired' | 'ambiguous' | null
  /** True once the client has left. */
  readonly closed: boolean
  /** Why the client left, or `null` while connected. */
  readonly closeReason: CloseReason | null
  /** Aborted when the client leaves, with the close reason as `signal.reason`. */
  readonly signal: AbortSignal
  /**
   * Queues one event for this client. Returns true while the producer may go on; false when
   * the event was not queued (the client left, or `close()` was called) or when it was queued
   * but what this client was sent is above `highWaterMark`: then `await client.drain()`
   * before sending more. Nothing is queued when it throws.
   * @throws {TypeError} `ERR_SSE_INVALID_MESSAGE` (not a message, or no `data`), `ERR_SSE_INVALID_FIELD`
   *   (`event`/`id` not one line, or of the wrong type), `ERR_SSE_INVALID_DATA` (no JSON form),
   *   `ERR_SSE_UNKNOWN_OPTION` (a field no message has).
   * @throws {RangeError} `ERR_SSE_EVENT_TOO_LARGE` (above `maxEventBytes`), `ERR_SSE_INVALID_RETRY`.
   */
  send(message: SseMessage<Events>): boolean
  /**
   * Queues a comment (one `: ` line per line of text). Returns as `send()` does.
   * @throws {TypeError} `ERR_SSE_INVALID_COMMENT` for a text that is not a string.
   * @throws {RangeError} `ERR_SSE_EVENT_TOO_LARGE` above `maxEventBytes`.
   */
  comment(text: string): boolean
  /**
   * Subscribes to `channel` from now on. False if subscribed already, gone, or the channel is
   * at its cap. Where an authorization rule matches, its check decides first (shown
   * `options.request`, else `null`): a denial throws `ERR_SSE_FORBIDDEN`, a failed check
   * `ERR_SSE_AUTHORIZATION_FAILED`; an async check makes this a promise (rejecting instead).
   * @throws {TypeError} `ERR_SSE_INVALID_CHANNEL` for a bad name.
   * @throws {RangeError} `ERR_SSE_TOO_MANY_CHANNELS` past the hub's `maxChannelsPerClient`.
   */
  subscribe(channel: string, options?: { request?: unknown }): boolean | Promise<boolean>
  /** Who it was authorized as (attach's `user`, or a rule's grant), or `null`. */
  readonly user: string | null
  /**
   * Ends the subscription to `channel` at once. False if it was not subscribed.
   * @throws {TypeError} `ERR_SSE_INVALID_CHANNEL` for a bad name.
   */
  unsubscribe(channel: string): boolean
  /** True after `send()` returned false for the high-water mark, until `'drain'`. */
  readonly needDrain: boolean
  /**
   * Resolves once the producer may go on (at once when nothing waits). Rejects with
   * `ERR_SSE_CLIENT_CLOSED` when the client has left, or leaves first.
   */
  drain(): Promise<void>
  /**
   * Sends every item of `source`, pulling the next only while the client keeps up (the LLM
   * token case). Strings, Buffers and typed arrays are sent as an event's `data`; other items
   * must be messages. Resolves once the source ends (`completed: true`) or the client leaves
   * (`completed: false`, and the source is closed).
   */
  stream(source: AsyncIterable<SseMessage<Events> | string | Uint8Array> | Iterable<SseMessage<Events> | string | Uint8Array>): Promise<{ sent: number; completed: boolean }>
  /**
   * A Writable (object mode) that sends what is written to it, with backpressure, for
   * `stream.pipeline(source, client.writable())`. Ending it closes the client gracefully unless
   * `{ end: false }`; the client leaving destroys it with `ERR_SSE_CLIENT_CLOSED`.
   */
  writable(options?: { end?: boolean }): import('node:stream').Writable
  /** Ends the stream after what is already queued (later sends return false); `'close'` follows with `'server'`. */
  close(): void
  /** Fired exactly once, however the client left. */
  on(event: 'close', listener: (reason: CloseReason) => void): this
  /** Fired when a producer that `send()` told to wait may go on. */
  on(event: 'drain', listener: () => void): this
  once(event: 'close', listener: (reason: CloseReason) => void): this
  once(event: 'drain', listener: () => void): this
  off(event: 'close', listener: (reason: CloseReason) => void): this
  off(event: 'drain', listener: () => void): this
}

/** One channel of a hub: `hub.channel('prices')`. */
export declare class Channel<Events extends EventMap = AnyEvents> {
  readonly name: string
  /** Clients subscribed now. */
  readonly size: number
  /**
   * `hub.publish(name, message)`: returns the number of subscribers.
   * @throws as `hub.publish()`.
   */
  publish(message: SseMessage<Events>): number
}

export declare class Hub<Events extends EventMap = AnyEvents> extends EventEmitter {
  constructor(options?: HubOptions)
  /**
   * Sends the event-stream head and hands the connection to the hub. On the native transport
   * the request's socket then belongs to the hub: Node's timeouts and `server.close()` no longer
   * wait for it, and `res.on('close')` fires at once (listen to `client.on('close')` instead).
   * When the hub or a channel is full, or the hub is closing, it answers `503` with
   * `Retry-After` itself and returns a refused client: test `client.refusal`. A request whose
   * connection is already gone (or that was pipelined behind another response) returns a
   * client that closes at once with `'client'`.
   * @throws `ERR_SSE_HEADERS_SENT` when the response ended or its head went out with another
   * status or content type; `ERR_SSE_INVALID_STATUS` when `res.statusCode` is not 200;
   * `ERR_SSE_ALREADY_ATTACHED` for a second attach of one response; `ERR_SSE_INVALID_OPTION`,
   * `ERR_SSE_UNKNOWN_OPTION`, `ERR_SSE_INVALID_CHANNEL`, `ERR_SSE_INVALID_ARGUMENT` for bad
   * arguments (TypeErrors), `ERR_SSE_INVALID_RETRY` and `ERR_SSE_TOO_MANY_CHANNELS`
   * (RangeErrors); `ERR_SSE_TRANSPORT_UNAVAILABLE` for `transport: 'native'` where it cannot be.
   * Nothing is written to the response when it throws.
   */
  attach(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, options?: AttachOptions): Client<Events>
  /** A raw HTTP/2 stream from `server.on('stream', (stream, headers) => ...)`. */
  attach(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options?: AttachOptions): Client<Events>
  /**
   * attach() for frameworks and runtimes that answer a Fetch API `Request` with a `Response`
   * (Hono: `c`; Next.js route handlers; `Bun.serve`; `Deno.serve`). Returns a `200`
   * `Response` whose body is the client's event stream, fed by the hub with the same
   * heartbeats, channels, resume (`Last-Event-ID` header or the `lastEventIdQuery` parameter),
   * lag bounds and close reasons as attach(). A body that is not read backs up into the hub
   * and the client is cut as a stalled socket would be. The client leaves when
   * `request.signal` aborts or the framework cancels the body. `onClient(client)` runs before
   * this returns, so what it sends is what the client gets first. When the hub or a channel
   * is full, or the hub is closing, the `Response` is a `503` with `Retry-After`, and
   * `onClient` gets a refused client.
   *
   * Under Hono pass the context, `hub.response(c)`: on Node (`@hono/node-server`) the stream is
   * then served from Node's own response as attach() serves it, natively on plain HTTP/1.1
   * (no JS per event), with the headers the app's middleware set on `c.res` (CORS, request
   * ids); Hono is answered with a Response it leaves alone. Elsewhere (Bun, Deno, Workers) and
   * with `c.req.raw` it is the Response body. The head goes out on the next turn: headers a
   * middleware sets after an `await` that follows `next()` miss it, and an answer it makes there
   * in place of the stream cuts the stream; `c.req.raw.signal` aborts at the handoff (listen to
   * the client's `'close'`); a 403 or 503 carries none of the middleware's headers.
   * @throws as attach(): `ERR_SSE_INVALID_ARGUMENT` when `request` is not a Request or
   *   `onClient` not a function; `ERR_SSE_UNKNOWN_OPTION`, `ERR_SSE_INVALID_OPTION`,
   *   `ERR_SSE_INVALID_CHANNEL` (TypeErrors), `ERR_SSE_INVALID_RETRY`,
   *   `ERR_SSE_TOO_MANY_CHANNELS` (RangeErrors). An error thrown by `onClient` closes the client
   *   and is thrown on.
   */
  response(request: Request | HonoContextLike, options?: ResponseOptions, onClient?: (client: Client<Events>) => void): Response
  response(request: Request | HonoContextLike, onClient: (client: Client<Events>) => void): Response
  /**
   * Serves `path` of a node:http server (Express's `app.listen()`, Fastify's `fastify.server`)
   * from the connection up, for servers that meet reconnect waves: a new connection whose
   * first request is a GET for the path is taken before Node parses it (no socket object,
   * parser, request or response is made for it; the head goes out with the opening), with the
   * options `open(request)` returns (sync or async). Every other request reaches the app as
   * before; a request for the path that Node parses after all (the second request of a kept-alive
   * connection, TLS) is attached through Node with the same `open`. A throw in `open` is
   * answered as http-errors means it: its 4xx/5xx `status` (else 500), its message when
   * `expose` (default for a 4xx), its `headers`.
   * Authorization rules, caps and a closing hub answer 403/503 as for attach(). Call it once the
   * app is the server's `'request'` listener. A server may have several routes, one per path;
   * streams taken before Node parsed them are not counted by `server.maxConnections` (the hub's
   * `maxClients` bounds them).
   * @throws `ERR_SSE_INVALID_ARGUMENT` (TypeError) for a server that is not a node:http Server,
   *   a path not starting with '/' or carrying a query or routed already on that server, an
   *   `open` that is not a function;
   *   `ERR_SSE_UNKNOWN_OPTION`, `ERR_SSE_INVALID_OPTION` for options.
   */
  route(server: Server, path: string, open?: (request: RouteRequest) => RouteOpenOptions | undefined | Promise<RouteOpenOptions | undefined>, options?: RouteOptions<Events>): Route
  /**
   * Publishes every item of `source` (an LLM SDK's stream, a `ReadableStream`, a generator)
   * into `channel` as events `<id>.1`, `<id>.2`, …, then `endEvent`, or `errorEvent` when the
   * source throws. It runs whether anyone reads or not, and the channel keeps it (`history`).
   * A client attached with `lastEventId: startId` gets it from its start; one that comes back
   * with the last id it saw gets the rest. Strings and Buffers are the data of an event; other
   * items are messages without `id`.
   * @throws `ERR_SSE_INVALID_ARGUMENT` when `source` is not iterable; `ERR_SSE_INVALID_OPTION`,
   *   `ERR_SSE_UNKNOWN_OPTION`, `ERR_SSE_INVALID_CHANNEL`; `ERR_SSE_STREAM_LIVE` when a stream
   *   with this id is still running; `ERR_SSE_STREAM_HELD` while the channel's history still
   *   holds events of an earlier stream with this id (the stream's `history.maxAgeMs` after it
   *   ended, or longer where the channel keeps history of its own); `ERR_SSE_HUB_CLOSED`;
   *   as `hub.publish()` for the opening event.
   */
  publishStream<Item extends StreamItem<Events>>(channel: string, source: AsyncIterable<Item> | Iterable<Item>, options?: PublishStreamOptions<Events, Item>): PublishedStream
  /**
   * Sends one event to every client, encoded once. Returns the number of recipients. Nothing
   * reaches any client when it throws.
   * @throws {TypeError} `ERR_SSE_INVALID_MESSAGE` (not a message, or no `data`), `ERR_SSE_INVALID_FIELD`
   *   (`event`/`id` not one line, or of the wrong type), `ERR_SSE_INVALID_DATA` (no JSON form),
   *   `ERR_SSE_UNKNOWN_OPTION` (a field no message has).
   * @throws {RangeError} `ERR_SSE_EVENT_TOO_LARGE` (above `maxEventBytes`), `ERR_SSE_INVALID_RETRY`.
   * @throws {Error} `ERR_SSE_HUB_CLOSED` once closed; `ERR_SSE_BACKEND_UNAVAILABLE` with `redis`
   *   when the buffer of events waiting for Redis is full.
   */
  broadcast(message: SseMessage<Events>): number
  /**
   * Sends one event to the clients subscribed to `channel`, encoded once. Returns the number
   * of recipients. Nothing reaches any client when it throws.
   * @throws {TypeError} `ERR_SSE_INVALID_CHANNEL` for a bad name, and as `broadcast()`.
   * @throws {RangeError} as `broadcast()`.
   * @throws {Error} as `broadcast()`.
   */
  publish(channel: string, message: SseMessage<Events>): number
    /**
   * Adds an authorization rule: a channel matching `pattern` is subscribed (at attach or
   * response, and at `client.subscribe()`) only when `check` allows it. A pattern is a
   * channel name whose segments (between `:` or `/`) are literal text or a parameter `{name}`
   * matching one segment (never a separator); names are compared as given, never decoded.
   * The most specific pattern matching a channel decides (a literal segment before a
   * parameter, from the left). A check is asked once per subscription, never per event; it may
   * be async, within `authorizeTimeoutMs`. A denial at attach answers `403` (nothing of the
   * stream is written); a check that throws or times out answers `503`. Returns the hub.
   * @throws {TypeError} `ERR_SSE_INVALID_OPTION` for a bad pattern or one with the same
   *   shape as a rule already given; `ERR_SSE_INVALID_ARGUMENT` when `check` is not a function.
   */
  authorize<Pattern extends string, Request = any>(
    pattern: Pattern,
    check: (context: AuthorizationContext<Pattern, Request, Events>) => AuthorizationAnswer | Promise<AuthorizationAnswer>,
    options?: AuthorizeOptions
  ): this
  /**
   * Ends the grants rules gave (of `user`, in `channel`, or both): each client is unsubscribed
   * and sent the `revokedEvent` (`{ channel, reason: 'revoked' }`). With `redis`, every
   * process of the namespace does the same. Channels no rule granted are left alone. Returns
   * how many grants ended in this process.
   */
  revoke(selector: RevokeSelector): number
  /**
   * Tracks who is in the channels matching `pattern` (as `authorize()`'s): every subscribed
   * client with a `user` is a member, collapsed by user (its tabs count once), with its
   * grant's `data`; across every process of a Redis namespace (a process that vanishes has its
   * members leave the others within about 5 s). With `events`, each subscriber gets a
   * `PresenceSnapshot` when it joins, then `PresenceChange`s. Returns the hub.
   */
  presence(pattern: string, options?: PresenceOptions): this
  /** Who is in `channel` now, across processes. */
  members(channel: string): Members
  /** `{ users, connections }` of `channel`, read in O(1). */
  memberCount(channel: string): { users: number; connections: number }
/**
   * A handle on one channel (cheap; holds only the name): its subscribers now (`.size`),
   * `.publish(message)`. With `options.history`, the channel keeps its own history from now
   * on instead of the hub's; `options.maxClients` caps its subscribers. These settings go with
   * the channel (see `ChannelOptions`); for settings that stay, use `createHub({ channels })`.
   */
  channel(name: string, options?: ChannelOptions): Channel<Events>
  /**
   * Sends a comment to every client. Returns the number of recipients.
   * @throws {TypeError} `ERR_SSE_INVALID_COMMENT`; {RangeError} `ERR_SSE_EVENT_TOO_LARGE`;
   *   {Error} `ERR_SSE_HUB_CLOSED`.
   */
  comment(text: string): number
  /** Connected clients (a channel's subscribers: `hub.channel(name).size`). */
  readonly size: number
  /** The `Retry-After` (seconds) a refused request is answered with (`retryAfterSeconds`). */
  readonly retryAfterSeconds: number
  /** True once `close()` was called. */
  readonly closed: boolean
  /**
   * What `metrics()` leaves out, for leak checks and tests: how far behind the clients are
   * (`queuedEvents`, `queuedBytes`, `maxClientQueuedBytes`), which costs a visit of every
   * client, and `deadlinesExtended`. Monitor with `metrics()`, which a scrape can afford.
   */
  stats(): HubStats
  /**
   * Every counter and gauge for monitoring (the Prometheus series are these), O(channels)
   * whatever the number of clients: it never visits clients, so per-client queue levels are
   * in `stats()` instead.
   */
  metrics(options?: { perChannel?: boolean | number }): HubMetrics
  /** `metrics()` in the Prometheus text exposition format 0.0.4. */
  metricsText(options?: ExpositionOptions): string
  /**
   * Refuses new clients (`503` with `Retry-After`), ends every stream and stops the hub's
   * threads; resolves after the last `'close'` event. Without options every stream ends now,
   * after its queued events (within `writeTimeoutMs`). With options the close is staged: each
   * client, at its own moment within `spreadMs`, gets a jittered `retry:` and the `finalEvent`,
   * then its stream ends once its queue is written (within `drainMs`). Later calls return the
   * same promise. When it resolves, the bytes are the kernel's (sockets) or the runtime's
   * (`response()` bodies: its reader took every byte and the end); before exiting the process,
   * let the server finish too (`server.close()`, Deno's `await server.shutdown()`, Bun's
   * `await server.stop()`).
   */
  close(options?: CloseOptions): Promise<void>
  /**
   * Resolves once the hub can serve: at once without `redis`; with it, once Redis is
   * connected and the history it keeps is loaded (so a client resuming here finds it).
   * Never rejects: while Redis is unreachable the hub keeps retrying. A hub with `redis` keeps
   * the process alive (as a socket does) until `close()` resolves, so awaiting this at the top
   * of an ES module waits for Redis instead of ending the process.
   */
  ready(): Promise<void>
  /** A client was attached. */
  on(event: 'connect', listener: (info: ConnectInfo) => void): this
  /** A client left; fired exactly once per attached client. */
  on(event: 'disconnect', listener: (info: DisconnectInfo) => void): this
  /** An attach was answered `503`. */
  on(event: 'refuse', listener: (info: RefuseInfo) => void): this
  /** With `redis`: the connection to Redis was lost (`'down'`) or is back (`'up'`). */
  on(event: 'backend', listener: (info: BackendInfo) => void): this
  once(event: 'connect', listener: (info: ConnectInfo) => void): this
  once(event: 'disconnect', listener: (info: DisconnectInfo) => void): this
  once(event: 'refuse', listener: (info: RefuseInfo) => void): this
  once(event: 'backend', listener: (info: BackendInfo) => void): this
  off(event: 'connect', listener: (info: ConnectInfo) => void): this
  off(event: 'disconnect', listener: (info: DisconnectInfo) => void): this
  off(event: 'refuse', listener: (info: RefuseInfo) => void): this
  off(event: 'backend', listener: (info: BackendInfo) => void): this
}

/**
 * Creates a hub; pass an event map to type its messages: `createHub<{ price: Price }>()`.
 * @throws {TypeError} `ERR_SSE_INVALID_OPTION` (wrong type), `ERR_SSE_UNKNOWN_OPTION`.
 * @throws {RangeError} `ERR_SSE_INVALID_OPTION` (out of range), `ERR_SSE_INVALID_RETRY`.
 */
export declare function createHub<Events extends EventMap = AnyEvents>(options?: HubOptions): Hub<Events>
/**
 * The process's hub registered under `name`: created with `options` by the first call,
 * returned by every later one. A dev server (`next dev`, Vite) evaluates an edited module
 * again in the same process, so a module-level `createHub()` would make a second hub there,
 * and a publish through it would reach none of the streams open on the first (`0`
 * recipients). The registry is kept on `globalThis` (`Symbol.for('native-sse.sharedHubs')`), so
 * a module evaluated again, or a second copy of native-sse, gets the same hub.
 *
 * A closed hub is replaced by a new one (made with this call's options) on the next call.
 * Options are compared as the hub runs with them (checked, defaults filled in: `{}` equals
 * `{ heartbeatMs: 15000 }`); a later call with other options throws
 * `ERR_SSE_HUB_OPTIONS_CHANGED` rather than running with the old ones: restart the process to
 * apply them. Omitting `options` means the defaults, not "whatever it has".
 * @throws {TypeError} `ERR_SSE_INVALID_ARGUMENT` (`name` not a non-empty string), and what `createHub` throws.
 * @throws {Error} `ERR_SSE_HUB_OPTIONS_CHANGED`.
 */
export declare function sharedHub<Events extends EventMap = AnyEvents>(name: string, options?: HubOptions): Hub<Events>
/** `attach()` on the default hub (created on first use with default options). */
export declare function attach(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, options?: AttachOptions): Client
export declare function attach(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options?: AttachOptions): Client
/** The hub behind the module-level `attach()`. */
export declare function getDefaultHub(): Hub
/** The option defaults of `createHub()`. */
export declare const defaults: Readonly<Required<Omit<HubOptions, 'retryMs' | 'workerThreads' | 'history' | 'lastEventIdQuery' | 'maxClients' | 'redis'>>> & {
  readonly redis: undefined
  readonly lastEventIdQuery: 'lastEventId'
  readonly maxClients: undefined
  readonly retryMs: undefined
  readonly workerThreads: undefined
  readonly history: undefined
}
/** What `history: true` keeps; each bound can be set on its own. */
export declare const historyDefaults: Readonly<Required<Exclude<HistoryOption, boolean>>>
/** What `redis: 'redis://...'` leaves out (`url` has no default). */
export declare const redisDefaults: Readonly<Required<Omit<RedisOptions, 'url'>>> & { readonly url: undefined }
/**
 * What `hub.close(options)` leaves out. `retryMs` is the hub's `retryMs`, else 1000;
 * `finalEvent` is none.
 */
export declare const closeDefaults: Readonly<Required<Omit<CloseOptions, 'retryMs' | 'finalEvent'>>> & {
  readonly retryMs: undefined
  readonly finalEvent: undefined
}
