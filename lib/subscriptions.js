'use strict'

// A client's channels once it is attached: subscribing through the authorization rules
// (authorization.js), and what follows a subscription's start and end (presence.js), the same
// way whether it began at attach, at client.subscribe(), or ended by unsubscribe(), a revoke, an
// expiry or the client leaving. Also where the processes of a Redis namespace talk to these two
// (signals). The hub only hands over; none of this is on the publish path.

const { sseError } = require('./errors')
const { Authorization } = require('./authorization')
const { Presence } = require('./presence')
const observed = require('./diagnostics')

class Subscriptions {
  #hub
  #native
  #call
  #sends
  authorization
  presence

  /**
   * @param hub the Hub (its `_sendSignal`, and what diagnostics report)
   * @param call runs a native call, turning its error into the public one
   * @param sends the hub's SendQueue (what a client is told: a revoke, presence)
   */
  constructor (hub, native, call, sends, { requireAuthorization, authorizeTimeoutMs, revokedEvent, presenceEvent }) {
    this.#hub = hub
    this.#native = native
    this.#call = call
    this.#sends = sends
    // What the two reach back for: each other's effects through here, signals through the hub.
    const reach = {
      _revokeGrant: (client, channel, reason) => this.revokeGrant(client, channel, reason),
      _presenceSend: (client, message) => this.tell(client, message),
      _sendSignal: (payload) => hub._sendSignal(payload)
    }
    this.authorization = new Authorization(reach, { requireAuthorization, authorizeTimeoutMs, revokedEvent })
    this.presence = new Presence(reach, { presenceEvent })
  }

  /** A client's stream started, subscribed to `channels` (its presence joins). */
  opened (client, channels) {
    if (!this.presence.active) return
    for (const channel of channels) this.presence.join(client, channel)
  }

  /** A held client was withdrawn, or a client left: what it was granted, and its presence, go. */
  gone (client) {
    if (client._auth === null) return
    this.authorization.forget(client)
    this.presence.leaveAll(client)
  }

  /**
   * client.subscribe(): at once where no rule matches; else as its rule decides (a promise
   * when the check is async). A denial throws (rejects) ERR_SSE_FORBIDDEN, a failed check
   * ERR_SSE_AUTHORIZATION_FAILED; nothing is subscribed then.
   */
  subscribe (client, name, request) {
    if (!this.authorization.active) {
      const subscribed = this.#call(() => this.#native.subscribe(client.id, name))
      if (subscribed && this.presence.active) this.presence.join(client, name)
      return subscribed
    }
    const decided = this.authorization.decide([name], { request, client, user: client.user })
    // unsubscribe() while the check runs cancels it: the token is gone then.
    const token = {}
    const auth = client._auth ??= { user: null, grants: null, admission: null }
    ;(auth.pending ??= new Map()).set(name, token)
    const conclude = (decision) => {
      if (auth.pending.get(name) !== token) {
        if (decision.refusal !== null) throw decision.error
        return false
      }
      auth.pending.delete(name)
      if (decision.refusal !== null) throw decision.error
      if (client.closed) return false
      if (!this.authorization.stands(client, decision)) {
        throw sseError(Error, 'ERR_SSE_FORBIDDEN', `the authorization rule for channel ${JSON.stringify(name)} granted another user than the client's, or was revoked while its check ran`)
      }
      const subscribed = this.#call(() => this.#native.subscribe(client.id, name))
      if (subscribed) {
        this.authorization.keep(client, decision)
        if (this.presence.active) this.presence.join(client, name)
      }
      return subscribed
    }
    return typeof decided.then === 'function' ? decided.then(conclude) : conclude(decided)
  }

  unsubscribe (client, name) {
    const unsubscribed = this.#call(() => this.#native.unsubscribe(client.id, name))
    if (client._auth !== null) {
      client._auth.pending?.delete(name)
      this.authorization.forget(client, name)
      this.presence.leave(client, name)
    }
    return unsubscribed
  }

  /** A grant ended (expired, revoked): the client leaves the channel and is told why. */
  revokeGrant (client, channel, reason) {
    if (client.closed) return
    if (observed.revoke.hasSubscribers) observed.revoke.publish({ hub: this.#hub, client, channel, reason })
    this.#call(() => this.#native.unsubscribe(client.id, channel))
    this.presence.leave(client, channel)
    this.#sends.send(client, { event: this.authorization.revokedEvent, data: { channel, reason } })
  }

  /** A presence event for one client (its snapshot, or a batch of joins and leaves). */
  tell (client, message) {
    if (!client.closed) this.#sends.send(client, message)
  }

  /** A signal from a process of the Redis namespace (this one's included): revokes, presence. */
  onSignal (payload) {
    let signal
    try {
      signal = JSON.parse(payload)
    } catch {
      return
    }
    // Anyone who can PUBLISH on the namespace can send one: nothing in it is trusted.
    if (signal === null || typeof signal !== 'object') return
    if (signal.kind === 'presence') this.presence.onSignal(signal)
    else this.authorization.onSignal(signal)
  }
}

module.exports = { Subscriptions }
