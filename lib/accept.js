'use strict'

// One accept path for every kind of request (requests/: Node's req/res, a raw HTTP/2 stream, a
// Fetch Request): where it resumes from, registration (or the 503 of a refusal), the head, and
// the transport that writes it. attach() and response() differ only in what they take and give.

const { raiseAcceptQueue } = require('./accept-queue')
const { acceptsGzip } = require('./compression')
const { Client } = require('./connection')
const { sseError } = require('./errors')
const { nativeUnavailableError } = require('./native-transport')
const observed = require('./diagnostics')

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

/** Responses (and raw HTTP/2 streams) some hub attached already: a second attach would
 *  write a second stream into the first, or lose it. */
const ATTACHED = new WeakSet()

class Acceptor {
  #hub
  #native
  #options
  #clients
  #relay
  #authorization
  #opened
  #call
  /** `(client)` once a held client is withdrawn: what it was granted, and its presence, go. */
  #withdrawn
  /** Held attaches by client id: `{ request, client, channels }` while their checks run. */
  #held = new Map()

  /**
   * @param hub the Hub (its events, and what each Client calls back)
   * @param clients the hub's Client by id
   * @param relay the sinks JS writes for Rust (relay.js)
   * @param authorization the hub's rules (authorization.js)
   * @param opened `(client, channels)` once a client's stream started (presence joins)
   * @param call runs a native call, turning its error into the public one
   * @param withdrawn `(client)` once a held client is withdrawn (its grants and presence go)
   */
  constructor (hub, native, options, clients, relay, authorization, opened, call, withdrawn) {
    this.#withdrawn = withdrawn
    this.#hub = hub
    this.#native = native
    this.#options = options
    this.#clients = clients
    this.#relay = relay
    this.#authorization = authorization
    this.#opened = opened
    this.#call = call
  }

  /**
   * Accepts `request` (see requests/) as an event stream and returns its Client (a refused one
   * when the hub or a channel is full, the hub is closing, or a rule denied a channel).
   * `transport`: 'auto', 'native', 'node' or 'fetch'. Throws, with nothing written, when the
   * request cannot become a stream. `context` is the request as the framework gave it, for
   * the rules' checks. When a check is async the client is returned at once, held: it is
   * registered (events published meanwhile wait for it, as do its own sends) but nothing is
   * written until the checks allow it, and `client._auth.admission` settles then.
   */
  accept (request, { retryMs, channels, lastEventId: fallbackId, transport, user = null }, context) {
    const unusable = request.unusable(ATTACHED)
    if (unusable !== null) throw unusable
    const unavailable = request.nativeUnavailable()
    if (transport === 'native' && unavailable !== null) throw nativeUnavailableError(unavailable)
    const native = transport !== 'node' && transport !== 'fetch' && unavailable === null
    const kind = transport === 'fetch' ? 'fetch' : native ? 'native' : 'node'
    const checked = this.#authorization.active && channels.length > 0

    if (request.method === 'HEAD') return this.#answerHead(request, channels, checked ? { request: context, user } : null)

    const lastEventId = this.#lastEventIdOf(request) || fallbackId
    // Registered before anything is written: an error leaves the response to the caller.
    const { id, resume, resetReason, refused } = this.#call(() => checked
      ? this.#native.registerHeld(retryMs, channels, lastEventId || undefined)
      : this.#native.register(retryMs, channels, lastEventId || undefined))
    if (refused != null) return this.#refuse(request, refused, channels)
    const client = new Client(this.#hub, id, lastEventId, kind, resume, resetReason ?? null)
    if (!checked) {
      if (user !== null) client._auth = { user, grants: null, admission: null }
      return this.#open(request, client, channels, native)
    }

    client._auth = { user, grants: null, admission: null }
    this.#clients.set(id, client)
    const decided = this.#authorization.decide(channels, { request: context, client, user })
    if (typeof decided.then !== 'function') return this.#settle(request, client, channels, native, decided, true)
    this.#held.set(id, { request, client, channels })
    client._auth.admission = decided.then((decision) => {
      // Withdrawn meanwhile (hub.close()): answered already.
      if (this.#held.delete(id)) this.#settle(request, client, channels, native, decision, false)
      client._auth.admission = null
    })
    return client
  }

  /**
   * The checks of a held client decided: it opens, or it is withdrawn and the request answered
   * 403 (a rule denied) or 503 (a check failed; a retry may do). `sync`: still inside attach,
   * where a failure to write the head may throw to the caller.
   */
  #settle (request, client, channels, native, decision, sync) {
    const id = client.id
    if (decision.refusal === null && !this.#authorization.stands(client, decision)) {
      decision = { ...decision, refusal: 'forbidden', error: sseError(Error, 'ERR_SSE_FORBIDDEN', 'the grants of this attach name another user than the client\'s, or were revoked while its checks ran') }
    }
    if (client.closed) {
      // Closed while its checks ran (hub.close(), client.close()): 'close' fired already; the
      // request gets what a closing hub answers, whatever the checks said.
      this.#clients.delete(id)
      this.#withdrawn(client)
      request.refuse(this.refusalAnswer('closing'))
      return client
    }
    if (decision.refusal === null && this.#native.admit(id)) {
      this.#authorization.keep(client, decision)
      if (sync) return this.#open(request, client, channels, native)
      try {
        this.#open(request, client, channels, native)
      } catch (error) {
        // The head failed after the caller moved on (attach returned): the client goes, and
        // whoever listens hears of it as a client that errored.
        this.#native.closeClient(id, 'error')
      }
      return client
    }
    // Withdrawn: refused, or closed meanwhile (the hub closes, the peer left while waiting).
    this.#clients.delete(id)
    const refusal = decision.refusal ?? 'closing'
    const withdrawn = this.#native.withdraw(id, refusal)
    if (!withdrawn && decision.refusal === null) {
      // It was closed while its checks ran ('close' has fired): answer what a closing hub does.
      request.refuse(this.refusalAnswer('closing'))
      return client
    }
    request.refuse(this.refusalAnswer(refusal))
    this.#withdrawn(client)
    client._refuse(refusal)
    this.#reportRefusal(request, refusal, channels, decision.error)
    return client
  }

  /**
   * hub.close(): every held attach is refused now ('closing', a 503), whatever its checks say
   * later; it never connected, so it gets no 'disconnect' and counts as a refusal, not a close.
   */
  withdrawHeld () {
    for (const [id, { request, client, channels }] of this.#held) {
      this.#held.delete(id)
      this.#clients.delete(id)
      this.#native.withdraw(id, 'closing')
      this.#withdrawn(client)
      request.refuse(this.refusalAnswer('closing'))
      client._refuse('closing')
      this.#reportRefusal(request, 'closing', channels, null)
    }
  }

  /** Writes the head and starts the transport of a registered client; 'connect'. */
  #open (request, client, channels, native) {
    const id = client.id
    if (request.departed() !== null) {
      // Nothing can be written to it: the client leaves at once, counted and reported as a
      // client that closed ('close' with 'client'), so it never holds a place or a cursor.
      this.#clients.set(id, client)
      this.#native.closeClient(id, 'client')
      return client
    }
    // Undefined when the hub does not compress (no Vary either); else whether this client
    // takes gzip (compression.js).
    const gzip = this.#options.compression === undefined ? undefined : acceptsGzip(request.header('accept-encoding'))
    let chunked
    try {
      chunked = request.writeHead(native, gzip)
      if (gzip === true) this.#native.useGzip(id)
    } catch (error) {
      // Node refused the head (an invalid header or status set earlier). The client was never
      // seen by the caller, so it leaves quietly; a head already on the wire is cut, not
      // left half-written, and a head never sent leaves the caller free to answer.
      this.#native.closeClient(id, 'error')
      request.headFailed()
      throw error
    }
    if (request.response !== null) ATTACHED.add(request.response)
    const listenBacklog = this.#options.listenBacklog
    if (listenBacklog !== null) raiseAcceptQueue(request.server, listenBacklog)
    client._connected(request.peer())
    this.#clients.set(id, client)

    if (native) {
      const nativeHub = this.#native
      request.startNative(nativeHub, id, chunked, this.#options.writeTimeoutMs, (reason) => {
        if (reason !== null) nativeHub.closeClient(id, reason)
      })
    } else {
      const sink = request.relaySink(this.#native, id)
      this.#relay.add(id, sink)
      if (sink.alreadyClosed) this.#native.closeClient(id, 'client')
      else this.#call(() => request.startRelay(this.#native, id))
    }
    if (this.#hub.listenerCount('connect') > 0) this.#hub.emit('connect', client._info(channels))
    if (observed.connect.hasSubscribers) {
      observed.connect.publish({ hub: this.#hub, client, channels, transport: client.transport, resume: client.resume, resetReason: client.resetReason })
    }
    this.#opened(client, channels)
    return client
  }

  /**
   * A HEAD gets the head a GET would get (the stream's, or the 503 or 403 of a refusal) and no
   * body; it is not a connection: nothing registers, nothing is counted, no 'connect'. Browsers'
   * EventSource never sends one; native-sse/client asks with one why a stream was refused,
   * and Express routes HEAD to app.get handlers. `checks`: the rules' context, when they apply.
   */
  #answerHead (request, channels, checks) {
    const refused = this.#call(() => this.#native.admission(channels))
    if (refused != null) {
      request.refuse(this.refusalAnswer(refused))
      return Client._refused(this.#hub, refused)
    }
    const client = Client._headOnly(this.#hub)
    if (checks === null) {
      this.#headOnly(request)
      return client
    }
    const answer = (decision) => {
      if (decision.refusal === null) this.#headOnly(request)
      else request.refuse(this.refusalAnswer(decision.refusal))
    }
    const decided = this.#authorization.decide(channels, { ...checks, client: null })
    if (typeof decided.then !== 'function') answer(decided)
    else client._auth = { user: checks.user, grants: null, admission: decided.then(answer) }
    return client
  }

  #headOnly (request) {
    if (request.departed() !== null) return
    try {
      request.writeHead()
    } catch (error) {
      request.headFailed()
      throw error
    }
    if (request.response !== null) ATTACHED.add(request.response)
    request.endHead()
  }

  #reportRefusal (request, reason, channels, error) {
    if (observed.refuse.hasSubscribers) {
      observed.refuse.publish(error == null ? { hub: this.#hub, reason, channels } : { hub: this.#hub, reason, channels, error })
    }
    if (this.#hub.listenerCount('refuse') > 0) {
      this.#hub.emit('refuse', error === undefined || error === null ? { reason, ...request.peer(), channels } : { reason, ...request.peer(), channels, error })
    } else if (reason === 'authorization-failed') {
      // A check that throws is the app's bug: say so somewhere even when nobody listens.
      console.error('native-sse: an authorization check failed; the request was answered 503:', error)
    }
  }

  /** The answer of a refused request, whatever its kind: 403 when a rule denied, else 503. */
  refusalAnswer (reason) {
    if (reason === 'forbidden') {
      return {
        status: 403,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
        body: 'event stream forbidden\n'
      }
    }
    return {
      status: 503,
      headers: {
        'retry-after': String(this.#options.retryAfterSeconds),
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store'
      },
      body: `event stream unavailable (${reason}); retry later\n`
    }
  }

  #refuse (request, reason, channels) {
    request.refuse(this.refusalAnswer(reason))
    const client = Client._refused(this.#hub, reason)
    this.#reportRefusal(request, reason, channels, null)
    return client
  }

  /** The `Last-Event-ID` header, or for a first connect the configured query parameter; ''. */
  #lastEventIdOf (request) {
    const header = request.header('last-event-id')
    if (typeof header === 'string' && header !== '') return headerText(header)
    const query = this.#options.lastEventIdQuery
    const url = request.url
    if (query === undefined || typeof url !== 'string') return ''
    const at = url.indexOf('?')
    if (at < 0) return ''
    return new URLSearchParams(url.slice(at + 1)).get(query) ?? ''
  }
}

module.exports = { Acceptor }
