// native-sse/client: the browser (and Node 20+) side, typed by the same event map as the hub.
// Standalone: nothing here imports index.d.ts, whose Node types (node:http, Buffer) a browser
// project (`lib: ["dom"]`, no @types/node) does not have.

/**
 * Event names mapped to their `data` types, as given to `createHub<Events>()`: the same type
 * as index.d.ts's `EventMap`, so one event map types both ends.
 */
export type EventMap = object

/** The event map of an untyped client: any event name, any data. As index.d.ts's `AnyEvents`. */
export type AnyEvents = { [event: string]: unknown }

/** The names of `Events` whose data is a string (any name for an untyped map). */
export type TextEvents<Events extends EventMap> = string extends keyof Events
  ? string
  : { [Name in keyof Events & string]: Events[Name] extends string ? Name : never }[keyof Events & string]

/** One event as received: its name, its data as the hub serialized it, and its id. */
export type ReceivedEvent<Events extends EventMap = AnyEvents> = {
  [Name in keyof Events & string]: { event: Name; data: Events[Name]; id: string }
}[keyof Events & string]

/**
 * `'connecting'` (first connect, or waiting to reconnect), `'open'`, `'paused'` (the page is
 * hidden or offline, see `pauseWhenHidden` and `pauseWhenOffline`) or `'closed'` (for good).
 */
export type ClientState = 'connecting' | 'open' | 'paused' | 'closed'

/** Passed to `onError` each time the stream drops or an attempt fails. */
export interface ConnectionErrorInfo {
  /** The HTTP status of a refused attempt (5xx, 408, 429), if one was answered. */
  status?: number
  /** The network or read error, if there was one. */
  error?: unknown
  /** When the next attempt starts; `null` when the browser's EventSource reconnects by itself. */
  retryInMs: number | null
}

/** Passed to `onClose` when the client stops for good. */
export interface ClientCloseInfo {
  /** `'closed'`: `client.close()`; `'status'`: 204, a 4xx other than 408 and 429, or a 2xx that is not `text/event-stream`. */
  reason: 'closed' | 'status'
  status?: number
}

/** What the hub's reset event (`resetEvent`) says: why the `Last-Event-ID` could not be resumed. */
export interface ResetInfo {
  reason: 'unknown' | 'foreign' | 'expired' | 'ambiguous' | 'gap' | (string & {})
}

/**
 * What the hub's revoked event (`revokedEvent`) says: an authorization grant for `channel`
 * ended, so the hub unsubscribed this client from it; the stream goes on for its other channels.
 */
export interface RevokeInfo {
  /** The channel the client no longer receives. */
  channel: string
  /** `'expired'`: the grant's `expiresAt` passed; `'revoked'`: `hub.revoke()`. */
  reason: 'expired' | 'revoked' | (string & {})
}

/**
 * A member of a presence channel (`hub.presence()`): a user, collapsed over its connections
 * (tabs), and its grant's `data` (`hub.authorize()`), `null` when it has none.
 */
export interface PresenceMember<Data = unknown> {
  user: string
  data: Data
}

/**
 * Passed to `onPresence` after each presence event of the hub (`presenceEvent`): the channel's
 * members now, and what changed since the list before (`members` = before + `joins` - `leaves`).
 */
export interface PresenceInfo<Data = unknown> {
  channel: string
  /** Everyone there now, as `client.members(channel)` returns it. */
  members: PresenceMember<Data>[]
  /** Who came: the first snapshot lists everyone. */
  joins: PresenceMember<Data>[]
  /** Who went, with the data they had. */
  leaves: PresenceMember<Data>[]
  /**
   * `true` for a snapshot, which each new connection gets and which replaces the list (after a
   * reconnect, `joins` and `leaves` say who came and went while the client was away).
   */
  snapshot: boolean
}

/** The minimum of the WHATWG `EventSource` interface the client uses. */
export interface EventSourceLike {
  readonly readyState: number
  onopen: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  addEventListener(type: string, listener: (event: { data: string; lastEventId: string }) => void): void
  close(): void
}

/**
 * `Events` types the events; `PresenceData` the `data` of presence members (their grants' `data`,
 * `null` for a member without one: include `null` when some may have none).
 */
export interface ConnectOptions<Events extends EventMap = AnyEvents, PresenceData = unknown> {
  /**
   * `'eventsource'`: the browser's EventSource; `'fetch'`: a fetch stream reader.
   * Default `'auto'`: fetch when `headers`, `method`, `body` or `credentials` is given or there
   * is no EventSource (Node), else EventSource.
   */
  transport?: 'auto' | 'eventsource' | 'fetch'
  /** Request headers (fetch), e.g. `Authorization`; a function is called before each attempt, so a token can be refreshed. Default none. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
  /** The request method (fetch). Default `'GET'`. */
  method?: string
  /** A request body (fetch), sent again on each reconnect. Default none. */
  body?: RequestInit['body']
  /** `'include'` sends cookies cross-origin (`withCredentials` for EventSource). Default `'same-origin'`. */
  credentials?: 'omit' | 'same-origin' | 'include'
  /** Start as if this event had been received: the first request resumes after it. Default `''`. */
  lastEventId?: string
  /**
   * The query parameter that carries the last event id when the client opens a new
   * EventSource itself (it cannot set headers); the hub reads `lastEventId` by default
   * (`lastEventIdQuery` there). `false`: never. Default `'lastEventId'`.
   */
  lastEventIdQuery?: string | false
  /** The reconnection delay until the server sends `retry:`, and the base of the backoff. Default `1000`. */
  retryMs?: number
  /** The cap on a backed-off delay (attempts failing in a row). Default `30000`. */
  maxRetryMs?: number
  /**
   * Events whose data is handed over as the raw string. Every other event's data is parsed as
   * JSON, the way the hub serializes non-strings, and falls back to the raw string when it is
   * not JSON: list the string events whose values could read as JSON (`"42"`, `"true"`).
   * Default `[]`.
   */
  text?: readonly TextEvents<Events>[]
  /**
   * Event names the EventSource transport listens to for the async iterator, besides
   * `message` and the names given to `on()` (EventSource has no "every event" listener). The
   * fetch transport yields every event. Default `[]`.
   */
  events?: readonly (keyof Events & string)[]
  /** The hub's `resetEvent`. Default `'sse-reset'`. */
  resetEvent?: string
  /** The hub's `revokedEvent`. Default `'sse-revoked'`. */
  revokedEvent?: string
  /** The hub's `presenceEvent`. Default `'sse-presence'`. */
  presenceEvent?: string
  /** Drop the stream while the page is hidden and resume when it is visible. Default `false`. */
  pauseWhenHidden?: boolean
  /** Wait for the browser to be online instead of retrying while it is offline. Default `true`. */
  pauseWhenOffline?: boolean
  /** The fetch to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** The EventSource class to use. Default `globalThis.EventSource`. */
  EventSource?: new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike
  /** Called each time a stream opens. */
  onOpen?: () => void
  /** Called each time the stream drops or an attempt fails, before the client retries. */
  onError?: (info: ConnectionErrorInfo) => void
  /** Called when the hub could not resume from the last event id: events were missed, resync. */
  onReset?: (info: ResetInfo) => void
  /**
   * Called for each grant the hub ended (`revokedEvent`): this channel's events stop, the
   * stream stays open. The event never reaches `on()` handlers or the iterator.
   */
  onRevoke?: (info: RevokeInfo) => void
  /**
   * Called after each presence event (`presenceEvent`, for the channels the hub tracks with
   * `hub.presence()`): the channel's members now, and who came and went. The event never
   * reaches `on()` handlers or the iterator.
   */
  onPresence?: (info: PresenceInfo<PresenceData>) => void
  /** Called once when the client stops for good. */
  onClose?: (info: ClientCloseInfo) => void
}

export interface SseClient<Events extends EventMap = AnyEvents, PresenceData = unknown> extends AsyncIterable<ReceivedEvent<Events>> {
  /** The current state. */
  readonly state: ClientState
  /** The id of the last event received (or `lastEventId`): what a reconnect resumes from. */
  readonly lastEventId: string
  /** The reconnection delay: the server's last `retry:`, else `retryMs`. */
  readonly retryMs: number
  /** The transport in use. */
  readonly transport: 'eventsource' | 'fetch'
  /** Calls `handler` with each `event`'s data (`message`: events sent without a name). */
  on<Name extends keyof Events & string>(event: Name, handler: (data: Events[Name], meta: { event: Name; id: string }) => void): this
  off<Name extends keyof Events & string>(event: Name, handler: (data: Events[Name], meta: { event: Name; id: string }) => void): this
  /**
   * Who is in `channel` now, by the hub's presence events: a new array each call, in the order
   * they came; `[]` before the channel's first snapshot, and after its grant ended (`onRevoke`).
   * Between a reconnect and the new connection's snapshot, the list before it.
   */
  members(channel: string): PresenceMember<PresenceData>[]
  /** Closes the stream for good; iterators end. */
  close(): void
  /**
   * Every event from now on (see `events` for the EventSource transport). Ends after
   * `close()`; throws an error with code `ERR_SSE_STOPPED` (and `reason`, `status`) when the
   * server ended the stream for good. Events queue until read.
   */
  [Symbol.asyncIterator](): AsyncIterator<ReceivedEvent<Events>>
}

/**
 * Opens an event stream and keeps it open: resumes with `Last-Event-ID`, honours `retry:`,
 * stops on 204 and on a 4xx other than 408 and 429, and backs off with full jitter on attempts
 * failing in a row. A relative `url` resolves against the page (`document.baseURI`, else
 * `location.href`). Bad options throw a `TypeError` with code `ERR_SSE_INVALID_OPTION` or
 * `ERR_SSE_UNKNOWN_OPTION`, and so, with `ERR_SSE_INVALID_OPTION`, does a `url` that is not
 * http(s) or cannot be resolved: outside a page (Node, server-side rendering) pass an absolute
 * URL, or connect in an effect, after mount.
 */
export declare function connect<Events extends EventMap = AnyEvents, PresenceData = unknown>(url: string | URL, options?: ConnectOptions<Events, PresenceData>): SseClient<Events, PresenceData>
