'use strict'

// native-sse/testing: an in-process client for SSE routes, for tests. openStream(target) opens
// one stream to an Express app, a node:http server or listener, a Fastify instance, a Hono app
// or any Fetch handler, and hands back what arrives as parsed events. It needs no test
// framework (node:test, Jest, Vitest, Mocha... or none), no port from the caller and no
// dependency: node-style targets are served on 127.0.0.1 port 0 by a server of its own, closed
// with the stream; Fetch handlers are called with a real Request, no socket at all. Nothing
// here sleeps: every timeout only bounds a wait that should succeed.

const http = require('node:http')
const net = require('node:net')

const HOST = '127.0.0.1'
const DEFAULT_TIMEOUT_MS = 2000

/**
 * The event stream interpretation of the WHATWG HTML standard (9.2.6): text in any chunking
 * in; each dispatched event (`{ event, data, id }`, `id` being the last event ID then, as
 * `MessageEvent.lastEventId`), each comment and each valid `retry:` out.
 */
function createParser ({ onEvent, onComment, onRetry }, lastEventId = '') {
  let pending = ''
  let afterCR = false
  let data = null
  let type = ''
  let id = lastEventId
  const line = (text) => {
    if (text === '') {
      if (data !== null) onEvent({ event: type || 'message', data, id })
      data = null
      type = ''
      return
    }
    const colon = text.indexOf(':')
    if (colon === 0) return onComment(text.slice(text.charCodeAt(1) === 32 ? 2 : 1))
    const field = colon < 0 ? text : text.slice(0, colon)
    const value = colon < 0 ? '' : text.slice(text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
    if (field === 'data') data = data === null ? value : `${data}\n${value}`
    else if (field === 'event') type = value
    else if (field === 'id') { if (!value.includes('\0')) id = value } else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value))
  }
  const feed = (chunk) => {
    const text = pending + chunk
    let start = afterCR && text.charCodeAt(0) === 10 ? 1 : 0
    afterCR = false
    const breaks = /[\r\n]/g
    breaks.lastIndex = start
    for (let match; (match = breaks.exec(text)) !== null;) {
      const end = match.index
      line(text.slice(start, end))
      start = end + 1
      if (text.charCodeAt(end) === 13) {
        if (start === text.length) afterCR = true
        else if (text.charCodeAt(start) === 10) start++
        breaks.lastIndex = start
      }
    }
    pending = text.slice(start)
  }
  return { feed, lastEventId: () => id }
}

/** `'price'`, or the predicate's name, for failure messages. */
function describe (wanted) {
  if (typeof wanted === 'function') return `an event matching ${wanted.name ? wanted.name : 'the predicate'}`
  return `event '${wanted}'`
}

function describeEvents (events) {
  if (events.length === 0) return 'got none'
  const shown = events.slice(0, 10).map((e) => `'${e.event}'`).join(', ')
  return `got ${shown}${events.length > 10 ? ` and ${events.length - 10} more` : ''}`
}

/**
 * What `target` is: `{ kind: 'fetch', handler }`, `{ kind: 'listen', listener }` (served by a
 * server of our own) or `{ kind: 'connect', server }` (a node:http server already listening).
 */
async function resolveTarget (target) {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) {
    throw new TypeError('openStream(target): target must be an Express app, a node:http Server or request listener, a Fastify instance, a Hono app or a Fetch handler')
  }
  // Fastify: its routes exist once it is ready; its node:http server handles the requests.
  if (typeof target.ready === 'function' && target.server instanceof net.Server) {
    await target.ready()
    const server = target.server
    return { kind: 'listen', listener: (req, res) => server.emit('request', req, res) }
  }
  if (target instanceof net.Server) {
    const address = target.listening ? target.address() : null
    if (address !== null && typeof address === 'object') return { kind: 'connect', port: address.port, host: address.address }
    return { kind: 'listen', listener: (req, res) => target.emit('request', req, res) }
  }
  if (typeof target === 'object' && typeof target.fetch === 'function') {
    return { kind: 'fetch', handler: (request) => target.fetch(request) }
  }
  if (typeof target === 'function') {
    // Express apps have .listen; a request listener takes (req, res).
    if (typeof target.listen === 'function' || target.length >= 2) return { kind: 'listen', listener: target }
    return { kind: 'fetch', handler: target }
  }
  throw new TypeError('openStream(target): target is neither a request listener, a server, a Fastify instance nor a Fetch handler')
}

/**
 * Opens one event stream to `target` and resolves once its response head arrived (whatever
 * its status). See testing.d.ts for every option and member.
 */
async function openStream (target, options = {}) {
  const {
    path = '/',
    method = 'GET',
    headers = {},
    lastEventId,
    timeoutMs = DEFAULT_TIMEOUT_MS
  } = options
  const resolved = await resolveTarget(target)
  const requestHeaders = { accept: 'text/event-stream' }
  for (const [name, value] of Object.entries(headers)) requestHeaders[name.toLowerCase()] = String(value)
  if (lastEventId !== undefined && lastEventId !== null) requestHeaders['last-event-id'] = String(lastEventId)

  const stream = new TestStream(target, options, timeoutMs, lastEventId)
  if (resolved.kind === 'fetch') await stream._openFetch(resolved.handler, path, method, requestHeaders)
  else await stream._openSocket(resolved, path, method, requestHeaders)
  return stream
}

class TestStream {
  /** The response's status code. */
  status = 0
  /** The response's headers, names lower-cased. */
  headers = {}
  /** Every event received so far, in order. */
  events = []
  /** Every comment received so far (the text after `:`), in order. */
  comments = []
  /** Every valid `retry:` received so far, in order. */
  retries = []
  /** The body as text so far (de-chunked, UTF-8): a refusal's message, or the stream's. */
  body = ''

  #target
  #options
  #timeoutMs
  #parser
  #read = 0
  #waiters = new Set()
  #closedHow = null
  #resolveClosed
  #closing = false
  #paused = false
  #resume = null
  #socket = null
  #server = null
  #reader = null
  #abort = null
  #decoder = new TextDecoder()
  #finished

  constructor (target, options, timeoutMs, lastEventId) {
    this.#target = target
    this.#options = options
    this.#timeoutMs = timeoutMs
    this.#parser = createParser({
      onEvent: (event) => { this.events.push(event); this.#wake() },
      onComment: (comment) => this.comments.push(comment),
      onRetry: (ms) => this.retries.push(ms)
    }, lastEventId === undefined || lastEventId === null ? '' : String(lastEventId))
    /** Resolves when the stream ends: `'end'` (the body ended by its framing, or FIN for a
     *  body without one), `'reset'` (an error or RST cut it, or a FIN before its last chunk)
     *  or `'client'` (`close()` closed it first). Never rejects. */
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve })
    // All cleanup done (server closed, reader released).
    this.#finished = this.closed
  }

  /** The last event ID: the one a reconnect sends as `Last-Event-ID` (`''` before any). */
  get lastEventId () { return this.#parser.lastEventId() }

  /** Whether the stream has ended (server, error, or `close()`). */
  get ended () { return this.#closedHow !== null }

  /** Whether `pause()` is in effect. */
  get paused () { return this.#paused }

  #text (text) {
    if (this.#closing) return
    this.body += text
    this.#parser.feed(text)
  }

  #end (how) {
    if (this.#closedHow !== null) return
    this.#closedHow = this.#closing ? 'client' : how
    const tail = this.#decoder.decode()
    if (tail !== '') this.#text(tail)
    const server = this.#server
    this.#server = null
    const done = server === null
      ? Promise.resolve()
      : new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    this.#finished = done.then(() => this.#closedHow)
    done.then(() => this.#resolveClosed(this.#closedHow))
    this.#wake()
  }

  #wake () {
    for (const waiter of [...this.#waiters]) waiter()
  }

  // ---- node-style targets: a real socket, HTTP/1.1 spoken by hand so pause() is exact ----

  async _openSocket (resolved, path, method, requestHeaders) {
    let port, host
    if (resolved.kind === 'connect') {
      ({ port } = resolved)
      host = resolved.host === '::' || resolved.host === '0.0.0.0' ? HOST : resolved.host
    } else {
      const server = http.createServer(resolved.listener)
      await new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, HOST, () => { server.off('error', reject); resolve() })
      })
      this.#server = server
      port = server.address().port
      host = HOST
    }
    const socket = net.connect(port, host)
    this.#socket = socket
    let raw = Buffer.alloc(0)
    let headDone = false
    let body = Buffer.alloc(0)
    let framing = 'close' // 'chunked' | 'length' | 'close'
    let remaining = 0
    let onHead
    const head = new Promise((resolve, reject) => { onHead = { resolve, reject } })

    const feedBody = () => {
      if (framing === 'close') {
        if (body.length > 0) this.#text(this.#decoder.decode(body, { stream: true }))
        body = Buffer.alloc(0)
        return
      }
      if (framing === 'length') {
        const take = body.subarray(0, remaining)
        remaining -= take.length
        if (take.length > 0) this.#text(this.#decoder.decode(take, { stream: true }))
        body = Buffer.alloc(0)
        if (remaining === 0) this.#bodyDone()
        return
      }
      for (;;) {
        const lineEnd = body.indexOf('\r\n')
        if (lineEnd < 0) return
        const size = parseInt(body.subarray(0, lineEnd).toString('latin1'), 16)
        if (size === 0) {
          body = Buffer.alloc(0)
          this.#bodyDone()
          return
        }
        if (body.length < lineEnd + 2 + size + 2) return
        this.#text(this.#decoder.decode(body.subarray(lineEnd + 2, lineEnd + 2 + size), { stream: true }))
        body = body.subarray(lineEnd + 2 + size + 2)
      }
    }
    socket.on('data', (data) => {
      if (headDone) {
        body = body.length === 0 ? data : Buffer.concat([body, data])
        return feedBody()
      }
      raw = Buffer.concat([raw, data])
      const at = raw.indexOf('\r\n\r\n')
      if (at < 0) return
      const lines = raw.subarray(0, at).toString('latin1').split('\r\n')
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0])
      if (status === null) return onHead.reject(new Error(`openStream: not an HTTP response: ${JSON.stringify(lines[0])}`))
      this.status = Number(status[1])
      const headers = {}
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        if (colon < 1) continue
        const name = line.slice(0, colon).trim().toLowerCase()
        const value = line.slice(colon + 1).trim()
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value
      }
      this.headers = headers
      headDone = true
      if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) framing = 'chunked'
      else if (headers['content-length'] !== undefined) { framing = 'length'; remaining = Number(headers['content-length']) }
      if (method === 'HEAD' || this.status === 204 || this.status === 304) { framing = 'length'; remaining = 0 }
      body = raw.subarray(at + 4)
      raw = null
      onHead.resolve()
      if (framing === 'length' && remaining === 0) this.#bodyDone()
      else feedBody()
    })
    // A FIN ends a body framed by the connection; one framed by chunks or a Content-Length
    // and not complete yet was cut short, as a Fetch body that errors ('reset').
    const fin = () => headDone && framing !== 'close' ? 'reset' : 'end'
    socket.on('end', () => this.#end(fin()))
    let socketError = null
    socket.on('error', (error) => { socketError = error; this.#end('reset') })
    socket.on('close', (hadError) => {
      this.#end(hadError ? 'reset' : fin())
      // Says what the socket saw, so a refusal or a reset before any answer can be told apart.
      const why = socketError ? `${socketError.code ?? socketError.message}` : 'closed by the server'
      onHead.reject(new Error(`openStream: the connection to ${host}:${port} ended before a response head arrived (${why}, ${raw === null ? 'head parsed' : `${raw.length} bytes received`}) for ${method} ${path}`))
    })
    const extra = Object.entries(requestHeaders).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.write(`${method} ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\n${extra}\r\n`)
    await this.#bounded(head, () => `openStream: no response head within ${this.#timeoutMs} ms`)
  }

  /** The body ended by its framing (last chunk, or Content-Length reached): the stream is over. */
  #bodyDone () {
    this.#end('end')
    this.#socket?.end()
  }

  // ---- Fetch handlers: a real Request, the Response's body read as it comes ----

  async _openFetch (handler, path, method, requestHeaders) {
    this.#abort = new AbortController()
    const request = new Request(new URL(path, `http://${HOST}`), { method, headers: requestHeaders, signal: this.#abort.signal })
    const response = await this.#bounded(Promise.resolve().then(() => handler(request)),
      () => `openStream: the Fetch handler gave no Response within ${this.#timeoutMs} ms`)
    if (!(response instanceof Response)) throw new TypeError('openStream: the Fetch handler did not return a Response')
    this.status = response.status
    this.headers = Object.fromEntries(response.headers)
    if (response.body === null) return this.#end('end')
    this.#reader = response.body.getReader()
    this.#pump()
  }

  async #pump () {
    const reader = this.#reader
    try {
      const unpaused = () => this.#paused ? new Promise((resolve) => { this.#resume = resolve }) : undefined
      for (;;) {
        await unpaused()
        if (this.#closing) return
        const { done, value } = await reader.read()
        // A chunk pulled just before pause() waits for resume() too: nothing is parsed while paused.
        await unpaused()
        if (this.#closing) return
        if (done) return this.#end('end')
        this.#text(this.#decoder.decode(value, { stream: true }))
      }
    } catch {
      this.#end('reset')
    }
  }

  // ---- waiting ----

  /** Rejects with `message()` unless `promise` settles within the stream's timeout. */
  #bounded (promise, message, timeoutMs = this.#timeoutMs) {
    let timer
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(message())), timeoutMs)
    })
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
  }

  /**
   * Resolves with the first event from the read position on that `matches`, moving the read
   * position past it; rejects after `timeoutMs`, or once the stream ended without one.
   */
  #take (matches, what, timeoutMs) {
    const from = this.#read
    return new Promise((resolve, reject) => {
      let timer = null
      const finish = () => {
        this.#waiters.delete(check)
        if (timer !== null) clearTimeout(timer)
      }
      const check = () => {
        while (this.#read < this.events.length) {
          const event = this.events[this.#read++]
          if (matches(event)) {
            finish()
            return resolve(event)
          }
        }
        if (this.#closedHow !== null) {
          finish()
          const how = this.#closedHow === 'client' ? 'was closed' : `ended ('${this.#closedHow}')`
          reject(new Error(`expected ${what}; the stream ${how} first; ${describeEvents(this.events.slice(from))}`))
        }
      }
      this.#waiters.add(check)
      timer = setTimeout(() => {
        finish()
        reject(new Error(`expected ${what} within ${timeoutMs} ms; ${describeEvents(this.events.slice(from))}`))
      }, timeoutMs)
      check()
    })
  }

  /** The next event not yet taken by `next()`, `waitFor()` or the iterator. */
  next ({ timeoutMs = this.#timeoutMs } = {}) {
    return this.#take(() => true, 'an event', timeoutMs)
  }

  /**
   * The next event (not yet taken) of type `wanted`, or for which `wanted(event)` is true;
   * events before it are taken too.
   */
  waitFor (wanted, { timeoutMs = this.#timeoutMs } = {}) {
    const matches = typeof wanted === 'function' ? wanted : (event) => event.event === wanted
    return this.#take(matches, describe(wanted), timeoutMs)
  }

  /** Each event not yet taken, as it arrives, until the stream ends. Waits are unbounded. */
  async * [Symbol.asyncIterator] () {
    for (;;) {
      if (this.#read < this.events.length) {
        yield this.events[this.#read++]
        continue
      }
      if (this.#closedHow !== null) return
      await new Promise((resolve) => {
        const wake = () => { this.#waiters.delete(wake); resolve() }
        this.#waiters.add(wake)
      })
    }
  }

  /** Stops reading: the server's writes back up (a slow client). */
  pause () {
    this.#paused = true
    this.#socket?.pause()
  }

  /** Reads again, taking what backed up. */
  resume () {
    this.#paused = false
    this.#socket?.resume()
    const resume = this.#resume
    this.#resume = null
    if (resume !== null) resume()
  }

  /**
   * Closes the connection (FIN; a Fetch body is cancelled and its request aborted) and
   * resolves once it is closed and the stream's own server too. Events arriving after this
   * call are not kept.
   */
  async close () {
    if (this.#closedHow === null) {
      this.#closing = true
      if (this.#socket !== null) {
        // Read on (and discard) so the server's FIN that answers ours is seen.
        this.#socket.resume()
        this.#socket.end()
        const gone = new Promise((resolve) => this.#socket.once('close', resolve))
        const timer = setTimeout(() => this.#socket.destroy(), this.#timeoutMs)
        await gone
        clearTimeout(timer)
      } else {
        const reader = this.#reader
        this.#abort?.abort()
        this.#end('client')
        const resume = this.#resume
        this.#resume = null
        if (resume !== null) resume()
        if (reader !== null) await reader.cancel().catch(() => {})
      }
    }
    await this.#finished
  }

  /**
   * Closes this stream if open, then opens a new one to the same target with the same
   * options and `Last-Event-ID` set to this stream's last event ID (`options` override).
   */
  async reconnect (options = {}) {
    await this.close()
    const lastEventId = this.lastEventId
    return openStream(this.#target, {
      ...this.#options,
      ...(lastEventId === '' ? {} : { lastEventId }),
      ...options
    })
  }
}

module.exports = { openStream, createParser }
