'use strict'

// One accept path for every kind of request (requests/: Node's req/res, a raw HTTP/2 stream, a
// Fetch Request): where it resumes from, registration (or the 503 of a refusal), the head, and
// the transport that writes it. attach() and response() differ only in what they take and give.

const { Client } = require('./connection')
const { nativeUnavailableError } = require('./native-transport')

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
  #call

  /**
   * @param hub the Hub (its events, and what each Client calls back)
   * @param clients the hub's Client by id
   * @param relay the sinks JS writes for Rust (relay.js)
   * @param call runs a native call, turning its error into the public one
   */
  constructor (hub, native, options, clients, relay, call) {
    this.#hub = hub
    this.#native = native
    this.#options = options
    this.#clients = clients
    this.#relay = relay
    this.#call = call
  }

  /**
   * Accepts `request` (see requests/) as an event stream and returns its Client (a refused one
   * when the hub or a channel is full, or the hub is closing). `transport`: 'auto', 'native',
   * 'node' or 'fetch'. Throws, with nothing written, when the request cannot become a stream.
   */
  accept (request, { retryMs, channels, lastEventId: fallbackId, transport }) {
    const unusable = request.unusable(ATTACHED)
    if (unusable !== null) throw unusable
    const unavailable = request.nativeUnavailable()
    if (transport === 'native' && unavailable !== null) throw nativeUnavailableError(unavailable)
    const native = transport !== 'node' && transport !== 'fetch' && unavailable === null
    const kind = transport === 'fetch' ? 'fetch' : native ? 'native' : 'node'

    if (request.method === 'HEAD') return this.#answerHead(request, channels)

    const lastEventId = this.#lastEventIdOf(request) || fallbackId
    // Registered before anything is written: an error leaves the response to the caller.
    const { id, resume, resetReason, refused } = this.#call(() => this.#native.register(retryMs, channels, lastEventId || undefined))
    if (refused != null) return this.#refuse(request, refused, channels)
    const client = new Client(this.#hub, id, lastEventId, kind, resume, resetReason ?? null)
    if (request.departed() !== null) {
      // Nothing can be written to it: the client leaves at once, counted and reported as a
      // client that closed ('close' with 'client'), so it never holds a place or a cursor.
      this.#clients.set(id, client)
      this.#native.closeClient(id, 'client')
      return client
    }
    let chunked
    try {
      chunked = request.writeHead()
    } catch (error) {
      // Node refused the head (an invalid header or status set earlier). The client was never
      // seen by the caller, so it leaves quietly; a head already on the wire is cut, not
      // left half-written, and a head never sent leaves the caller free to answer.
      this.#native.closeClient(id, 'error')
      request.headFailed()
      throw error
    }
    if (request.response !== null) ATTACHED.add(request.response)
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
    return client
  }

  /**
   * A HEAD gets the head a GET would get (the stream's, or the 503 of a refusal) and no body;
   * it is not a connection: nothing registers, nothing is counted, no 'connect'. Browsers'
   * EventSource never sends one; native-sse/client asks with one why a stream was refused,
   * and Express routes HEAD to app.get handlers.
   */
  #answerHead (request, channels) {
    const refused = this.#call(() => this.#native.admission(channels))
    if (refused != null) {
      request.refuse(this.refusalAnswer(refused))
      return Client._refused(this.#hub, refused)
    }
    if (request.departed() === null) {
      try {
        request.writeHead()
      } catch (error) {
        request.headFailed()
        throw error
      }
      if (request.response !== null) ATTACHED.add(request.response)
      request.endHead()
    }
    return Client._headOnly(this.#hub)
  }

  /** The 503 a refused request is answered with, whatever its kind. */
  refusalAnswer (reason) {
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
    if (this.#hub.listenerCount('refuse') > 0) this.#hub.emit('refuse', { reason, ...request.peer(), channels })
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
