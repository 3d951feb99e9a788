'use strict'

// Who is here: per channel, opt-in by pattern (`hub.presence('room:{room}')`), the members of a
// channel collapsed by user (a user's connections, its data), in this process and, through the
// Redis signal conduit, in every process of the namespace. Each process keeps its own members
// and tells the others the new count of a (channel, user) when it changes: absolute counts, so a
// repeated or reordered signal is harmless. Each process says it is alive every ALIVE_MS; one
// not heard of for GONE_MS (a SIGKILL, a cut network) has its members leave everywhere. The
// same view is computed in every process, so each tells its own subscribers the joins and
// leaves: one coalesced event per channel per FLUSH_MS, never one per member per subscriber.

const { randomBytes } = require('node:crypto')
const { sseError } = require('./errors')
const { describe } = require('./checks')
const { ChannelPattern, ChannelRules } = require('./channel-rules')

/** How often a process says it is alive. */
const ALIVE_MS = 1000
/**
 * How long without a word before a process counts as gone, and its members leave: four missed
 * beats, so a loaded process is not taken for dead; a dead one's members are gone within
 * GONE_MS + ALIVE_MS (Centrifugo: 60 s, Phoenix: 30 s).
 */
const GONE_MS = 4000
/** How long joins and leaves gather before a channel's subscribers are told. */
const FLUSH_MS = 1000
/** Entries per state signal: a signal carries at most 64 KiB. */
const STATE_CHUNK = 200

const PRESENCE = 'presence'

/** One channel's members across processes. */
class ChannelView {
  /** user -> { connections, data, origins: Map<origin, connections> } */
  members = new Map()
  connections = 0
  /** Local subscribers (any user or none) to tell of joins and leaves. */
  subscribers = new Set()
  /** Changes since the last flush: [seq, user, joined (bool), data]. */
  pending = []
}

class Presence {
  #hub
  #rules = new ChannelRules()
  #event
  /** channel -> ChannelView, for channels with members or local subscribers. */
  #views = new Map()
  /** Where this process's signals come from. */
  #origin = randomBytes(8).toString('hex')
  /** origin -> when it was last heard of (Date.now()). */
  #peers = new Map()
  /** Signals waiting for the end of this turn: [channel, user, connections, data]. */
  #outbox = []
  #outboxScheduled = false
  #seq = 0
  #flushTimer = null
  #aliveTimer = null
  #closed = false

  /**
   * @param hub what it reaches back for (subscriptions.js): `_sendSignal(payload)`, `_presenceSend(client, message)`
   */
  constructor (hub, { presenceEvent }) {
    this.#hub = hub
    this.#event = presenceEvent
  }

  get active () {
    return this.#rules.size > 0
  }

  /** Tracks presence in channels matching `pattern`; `events`: tell subscribers of joins and leaves. */
  add (pattern, options) {
    const compiled = new ChannelPattern(pattern)
    const given = options ?? {}
    if (given === null || typeof given !== 'object') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `presence(pattern, options): options must be an object, got ${describe(options)}`)
    }
    for (const key of Object.keys(given)) {
      if (key !== 'events') throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION', `unknown presence option '${key}'; allowed: events`)
    }
    if (given.events !== undefined && typeof given.events !== 'boolean') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `presence option events must be a boolean, got ${describe(given.events)}`)
    }
    this.#rules.add({ pattern: compiled, events: given.events !== false })
    this.#start()
  }

  #start () {
    if (this.#aliveTimer !== null) return
    this.#signal({ kind: 'hello' })
    this.#aliveTimer = setInterval(() => this.#beat(), ALIVE_MS)
    this.#aliveTimer.unref()
  }

  #rule (channel) {
    return this.#rules.match(channel)?.rule ?? null
  }

  #view (channel) {
    let view = this.#views.get(channel)
    if (view === undefined) {
      view = new ChannelView()
      this.#views.set(channel, view)
    }
    return view
  }

  /** `client` is subscribed to `channel` (at attach, or subscribe()). */
  join (client, channel) {
    const rule = this.#rule(channel)
    if (rule === null) return
    const view = this.#view(channel)
    const auth = client._auth ??= { user: null, grants: null, admission: null }
    // channel -> the last change this client was told of (its snapshot, then each batch).
    const joined = auth.presence ??= new Map()
    if (joined.has(channel)) return
    joined.set(channel, this.#seq)
    if (rule.events) {
      view.subscribers.add(client)
      // What the channel holds now, as the first presence event this client gets here: the
      // joins and leaves after it are the ones it has not seen (see #flush).
      this.#hub._presenceSend(client, { event: this.#event, data: { channel, members: this.#list(view), snapshot: true } })
    }
    const user = client.user
    if (user === null) return
    const grant = auth.grants?.get(channel)
    this.#setLocal(channel, user, +1, grant?.data ?? null)
  }

  /** `client` left `channel` (unsubscribed, revoked, or it closed). */
  leave (client, channel) {
    const joined = client._auth?.presence
    if (joined === undefined || !joined.delete(channel)) return
    const view = this.#views.get(channel)
    if (view === undefined) return
    view.subscribers.delete(client)
    if (client.user !== null) this.#setLocal(channel, client.user, -1, null)
    this.#drop(channel, view)
  }

  /** `client` closed: it leaves every presence channel. */
  leaveAll (client) {
    const joined = client._auth?.presence
    if (joined === undefined) return
    for (const channel of [...joined.keys()]) this.leave(client, channel)
  }

  /** Members of `channel` across processes: `{ users, connections, members: [{ user, connections, data }] }`. */
  members (channel) {
    const view = this.#views.get(channel)
    if (view === undefined) return { users: 0, connections: 0, members: [] }
    return { users: view.members.size, connections: view.connections, members: this.#list(view) }
  }

  /** `{ users, connections }` of `channel`, read in O(1). */
  count (channel) {
    const view = this.#views.get(channel)
    return view === undefined ? { users: 0, connections: 0 } : { users: view.members.size, connections: view.connections }
  }

  #list (view) {
    const list = []
    for (const [user, { connections, data }] of view.members) list.push({ user, connections, data })
    return list
  }

  /** This process's count of `user` in `channel` moved by `delta`. */
  #setLocal (channel, user, delta, data) {
    const view = this.#view(channel)
    const member = view.members.get(user)
    const mine = (member?.origins.get(this.#origin) ?? 0) + delta
    this.#apply(channel, view, this.#origin, user, mine, data ?? member?.data ?? null)
    this.#outbox.push([channel, user, mine, mine > 0 ? (data ?? member?.data ?? null) : null])
    if (!this.#outboxScheduled) {
      this.#outboxScheduled = true
      setImmediate(() => this.#sendOutbox())
    }
  }

  #sendOutbox () {
    this.#outboxScheduled = false
    const changes = this.#outbox.splice(0)
    for (let i = 0; i < changes.length; i += STATE_CHUNK) this.#signal({ kind: 'counts', changes: changes.slice(i, i + STATE_CHUNK) })
  }

  /** Sets `origin`'s count of `user` in `channel`; a join or a leave of the whole view is recorded. */
  #apply (channel, view, origin, user, connections, data) {
    let member = view.members.get(user)
    const before = member?.connections ?? 0
    const previous = member?.origins.get(origin) ?? 0
    if (member === undefined) {
      if (connections <= 0) return
      member = { connections: 0, data, origins: new Map() }
      view.members.set(user, member)
    }
    if (connections > 0) member.origins.set(origin, connections)
    else member.origins.delete(origin)
    member.connections += connections - previous
    view.connections += connections - previous
    if (data !== null && connections > 0) member.data = data
    if (member.connections <= 0) view.members.delete(user)
    const after = Math.max(0, member.connections)
    if ((before === 0) !== (after === 0)) this.#record(view, user, after > 0, member.data)
    this.#drop(channel, view)
  }

  #record (view, user, joined, data) {
    if (view.subscribers.size === 0) return
    view.pending.push([++this.#seq, user, joined, data])
    if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.#flush(), FLUSH_MS)
      this.#flushTimer.unref()
    }
  }

  /** Tells each channel's subscribers what changed since they last heard: one event each. */
  #flush () {
    this.#flushTimer = null
    for (const [channel, view] of this.#views) {
      if (view.pending.length === 0) continue
      const pending = view.pending.splice(0)
      const common = netChanges(pending, 0)
      for (const client of view.subscribers) {
        const told = client._auth.presence
        const since = told.get(channel) ?? 0
        // A client that got its snapshot within this batch hears only what came after it.
        const changes = since < pending[0][0] ? common : netChanges(pending, since)
        told.set(channel, pending[pending.length - 1][0])
        if (changes.joins.length + changes.leaves.length > 0) {
          this.#hub._presenceSend(client, { event: this.#event, data: { channel, ...changes } })
        }
      }
    }
  }

  #drop (channel, view) {
    if (view.members.size === 0 && view.subscribers.size === 0 && view.pending.length === 0) this.#views.delete(channel)
  }

  #beat () {
    this.#signal({ kind: 'alive' })
    const now = Date.now()
    for (const [origin, seenAt] of this.#peers) {
      if (now - seenAt > GONE_MS) this.#forget(origin)
    }
  }

  /** `origin` is gone: its members leave. */
  #forget (origin) {
    this.#peers.delete(origin)
    for (const [channel, view] of [...this.#views]) {
      for (const [user, member] of [...view.members]) {
        if (member.origins.has(origin)) this.#apply(channel, view, origin, user, 0, null)
      }
    }
  }

  /** Everything this process holds, for a process that asked (hello). */
  #sendState () {
    const entries = []
    for (const [channel, view] of this.#views) {
      for (const [user, member] of view.members) {
        const mine = member.origins.get(this.#origin)
        if (mine !== undefined) entries.push([channel, user, mine, member.data])
      }
    }
    for (let i = 0; i < entries.length; i += STATE_CHUNK) this.#signal({ kind: 'counts', changes: entries.slice(i, i + STATE_CHUNK) })
  }

  #signal ({ kind, ...body }) {
    if (this.#closed) return
    try {
      this.#hub._sendSignal(JSON.stringify({ kind: PRESENCE, type: kind, origin: this.#origin, ...body }))
    } catch {
      // Over the signal's size bound: the chunks keep under it; nothing else can be done here.
    }
  }

  /** A presence signal from a process of the namespace (this one's echo is skipped). */
  onSignal (signal) {
    if (typeof signal.origin !== 'string' || signal.origin === this.#origin || !this.active) return
    const origin = signal.origin
    const known = this.#peers.has(origin)
    this.#peers.set(origin, Date.now())
    switch (signal.type) {
      case 'hello':
        this.#sendState()
        break
      case 'alive':
        // One we never heard of (we started after it, or missed its state): ask for it.
        if (!known) this.#signal({ kind: 'hello' })
        break
      case 'bye':
        this.#forget(origin)
        break
      case 'counts':
        if (!Array.isArray(signal.changes)) return
        for (const change of signal.changes) {
          if (!Array.isArray(change)) continue
          const [channel, user, connections, data] = change
          if (typeof channel !== 'string' || typeof user !== 'string' || !Number.isSafeInteger(connections) || this.#rule(channel) === null) continue
          this.#apply(channel, this.#view(channel), origin, user, Math.max(0, connections), data ?? null)
        }
        if (!known) this.#signal({ kind: 'hello' })
        break
    }
  }

  /** Redis is back: what was said meanwhile may be lost, so everyone says it again. */
  onBackendUp () {
    if (this.active) this.#signal({ kind: 'hello' })
  }

  close () {
    if (this.active) this.#signal({ kind: 'bye' })
    this.#closed = true
    clearInterval(this.#aliveTimer)
    clearTimeout(this.#flushTimer)
  }
}

/**
 * What `pending` ([seq, user, joined, data], in order) changed for a reader that saw
 * everything up to `since`: per user, its first and its last state among the later entries.
 */
function netChanges (pending, since) {
  const first = new Map()
  const last = new Map()
  for (const [seq, user, joined, data] of pending) {
    if (seq <= since) continue
    if (!first.has(user)) first.set(user, !joined)
    last.set(user, { joined, data })
  }
  const joins = []
  const leaves = []
  for (const [user, { joined, data }] of last) {
    const wasMember = first.get(user)
    if (joined && !wasMember) joins.push({ user, data })
    else if (!joined && wasMember) leaves.push(user)
  }
  return { joins, leaves }
}

module.exports = { Presence, ALIVE_MS, GONE_MS, FLUSH_MS }
