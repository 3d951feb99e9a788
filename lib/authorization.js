'use strict'

// Who may listen: rules by channel pattern (channel-rules.js), each with a check the app gives,
// asked once per subscription (the channels of an attach or response(), and client.subscribe()),
// never per event, so the fan-out path does not know rules exist. A check allows, denies, or
// grants with an expiry, an identity and data; it may be async, and is bounded in time. What a
// check granted is kept per client (a grant), to end it when it expires or is revoked, in this
// process or, through Redis, in every process of the namespace.

const { randomBytes } = require('node:crypto')
const { sseError } = require('./errors')
const { describe } = require('./checks')
const { ChannelPattern, ChannelRules } = require('./channel-rules')

/** How long before a renewable grant expires its rule is asked again (at most). */
const RENEW_LEAD_MS = 5000
/** What a grant object may say. */
const GRANT_KEYS = new Set(['allow', 'expiresAt', 'user', 'data'])
/** The longest delay setTimeout takes (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1
/** The kind of the signal that carries a revoke to the other processes. */
const REVOKE = 'revoke'

function forbiddenError (channel) {
  return sseError(Error, 'ERR_SSE_FORBIDDEN', `the authorization rule for channel ${JSON.stringify(channel)} denied it`)
}

function failedError (channel, cause) {
  return sseError(Error, 'ERR_SSE_AUTHORIZATION_FAILED',
    `the authorization check for channel ${JSON.stringify(channel)} failed: ${cause instanceof Error ? cause.message : describe(cause)}`, cause)
}

function timeoutError (channel, ms) {
  return sseError(Error, 'ERR_SSE_AUTHORIZATION_FAILED',
    `the authorization check for channel ${JSON.stringify(channel)} did not answer within ${ms} ms (authorizeTimeoutMs)`)
}

/**
 * What a check answered, as a grant ({ expiresAt, user, data }), or a denial (null). Anything
 * but true, false/null/undefined or a grant object is the check's bug: it fails, closed.
 */
function grantOf (answer, channel, now) {
  if (answer === true) return { expiresAt: null, user: null, data: undefined }
  if (answer === false || answer === null || answer === undefined) return null
  if (typeof answer !== 'object' || Array.isArray(answer)) {
    throw failedError(channel, new TypeError(`a check returns true, false or { allow?, expiresAt?, user?, data? }, got ${describe(answer)}`))
  }
  for (const key of Object.keys(answer)) {
    if (!GRANT_KEYS.has(key)) throw failedError(channel, new TypeError(`a grant has allow, expiresAt, user and data, got the key ${JSON.stringify(key)}`))
  }
  if ('allow' in answer && answer.allow !== true) {
    if (answer.allow === false || answer.allow === null || answer.allow === undefined) return null
    throw failedError(channel, new TypeError(`allow must be true or false, got ${describe(answer.allow)}`))
  }
  let expiresAt = answer.expiresAt ?? null
  if (expiresAt instanceof Date) expiresAt = expiresAt.getTime()
  if (expiresAt !== null && !Number.isFinite(expiresAt)) {
    throw failedError(channel, new TypeError(`expiresAt must be a Date or milliseconds since 1970, got ${describe(answer.expiresAt)}`))
  }
  // A grant already over grants nothing.
  if (expiresAt !== null && expiresAt <= now) return null
  const user = answer.user ?? null
  if (user !== null && (typeof user !== 'string' || user === '')) {
    throw failedError(channel, new TypeError(`user must be a non-empty string, got ${describe(user)}`))
  }
  return { expiresAt, user, data: answer.data }
}

/** Runs `check(context)`, bounded by `timeoutMs`: its answer, sync when it was. */
function ask (rule, context, timeoutMs) {
  let answer
  try {
    answer = rule.check(context)
  } catch (error) {
    throw failedError(context.channel, error)
  }
  if (answer === null || typeof answer !== 'object' || typeof answer.then !== 'function') return answer
  let timer
  return Promise.race([
    Promise.resolve(answer).catch((error) => { throw failedError(context.channel, error) }),
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(timeoutError(context.channel, timeoutMs)), timeoutMs) })
  ]).finally(() => clearTimeout(timer))
}

/**
 * A decision over several channels: `refusal` ('forbidden', 'authorization-failed' or null),
 * the `error` behind it, the `grants` by channel (only channels a rule matched), and the
 * identity they agree on.
 */
function decision (refusal, error, grants = new Map(), user = null) {
  return { refusal, error, grants, user, since: 0 }
}

/** Decided before every check answered: the pending ones are let go (their rejection handled). */
function abandon (asked, decided) {
  for (const { answer } of asked) if (answer !== null && typeof answer === 'object' && typeof answer.then === 'function') answer.catch(() => {})
  return decided
}

class Authorization {
  #hub
  #rules = new ChannelRules()
  #required
  #timeoutMs
  #revokedEvent
  /** Clients holding at least one grant. */
  #granted = new Set()
  /**
   * Revokes of the last authorizeTimeoutMs ({ seq, at, user, channel }), and the last seq: a
   * check that began before a revoke matching what it grants must not grant it after.
   */
  #revocations = []
  #revokeSeq = 0
  /** Where this process's signals come from, to skip its own echo. */
  #origin = randomBytes(8).toString('hex')

  /**
   * @param hub what it reaches back for (subscriptions.js): `_revokeGrant(client, channel, reason)`, `_sendSignal(payload)`
   */
  constructor (hub, { requireAuthorization, authorizeTimeoutMs, revokedEvent }) {
    this.#hub = hub
    this.#required = requireAuthorization
    this.#timeoutMs = authorizeTimeoutMs
    this.#revokedEvent = revokedEvent
  }

  /** Whether any channel may need a check: false keeps attach exactly as without rules. */
  get active () {
    return this.#required || this.#rules.size > 0
  }

  get revokedEvent () {
    return this.#revokedEvent
  }

  add (pattern, check, options) {
    const compiled = new ChannelPattern(pattern)
    if (typeof check !== 'function') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `authorize(pattern, check): check must be a function (context) => boolean | grant | Promise, got ${describe(check)}`)
    }
    const given = options ?? {}
    if (given === null || typeof given !== 'object') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `authorize(pattern, check, options): options must be an object, got ${describe(options)}`)
    }
    for (const key of Object.keys(given)) {
      if (key !== 'renew') throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION', `unknown authorize option '${key}'; allowed: renew`)
    }
    if (given.renew !== undefined && typeof given.renew !== 'boolean') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `authorize option renew must be a boolean, got ${describe(given.renew)}`)
    }
    this.#rules.add({ pattern: compiled, check, renew: given.renew === true })
  }

  /**
   * Decides `channels` for one client: a decision, or a promise of one when a check is async.
   * Never throws or rejects: a failing check is a refusal ('authorization-failed').
   * @param context `{ request, client, user }`: the request as the framework gave it (or null),
   *   the Client (null for a HEAD), the identity the app gave at attach (or null)
   */
  decide (channels, context) {
    const since = this.#revokeSeq
    const decided = this.#decide(channels, context)
    if (typeof decided.then !== 'function') {
      decided.since = since
      return decided
    }
    return decided.then((later) => { later.since = since; return later })
  }

  #decide (channels, { request, client, user }) {
    const now = Date.now()
    const asked = []
    for (const channel of channels) {
      const matched = this.#rules.match(channel)
      if (matched === null) {
        if (this.#required) return abandon(asked, decision('forbidden', forbiddenError(channel)))
        continue
      }
      const { rule, params } = matched
      let answer
      try {
        answer = ask(rule, { channel, params: { ...params }, request, client, user, renewal: false }, this.#timeoutMs)
      } catch (error) {
        return abandon(asked, decision('authorization-failed', error))
      }
      asked.push({ channel, rule, params, answer })
    }
    if (!asked.some(({ answer }) => answer !== null && typeof answer === 'object' && typeof answer.then === 'function')) {
      return this.#conclude(asked, user, now)
    }
    return Promise.all(asked.map(({ answer }) => answer)).then(
      (answers) => this.#conclude(asked.map((one, i) => ({ ...one, answer: answers[i] })), user, Date.now()),
      (error) => decision('authorization-failed', error))
  }

  #conclude (asked, user, now) {
    const grants = new Map()
    let identity = user
    for (const { channel, rule, params, answer } of asked) {
      let grant
      try {
        grant = grantOf(answer, channel, now)
      } catch (error) {
        return decision('authorization-failed', error)
      }
      if (grant === null) return decision('forbidden', forbiddenError(channel))
      if (grant.user !== null) {
        // One client is one identity: grants that disagree on who it is deny.
        if (identity !== null && identity !== grant.user) return decision('forbidden', forbiddenError(channel))
        identity = grant.user
      }
      // Built field by field: a spread here cost most of a sync decision (2.4 of 2.8 µs).
      grants.set(channel, { expiresAt: grant.expiresAt, user: grant.user, data: grant.data, rule, params, timer: null })
    }
    return decision(null, null, grants, identity)
  }

  /**
   * Whether what `decided` grants still stands for `client` as it concludes: its identity
   * agrees with who the client is now (a grant kept meanwhile may have said), and no revoke
   * since its checks began matches it.
   */
  stands (client, decided) {
    const current = client._auth?.user ?? null
    if (decided.user !== null && current !== null && current !== decided.user) return false
    const user = decided.user ?? current
    for (const { seq, user: revokedUser, channel } of this.#revocations) {
      if (seq <= decided.since) continue
      if (revokedUser !== undefined && revokedUser !== user) continue
      if (channel === undefined ? decided.grants.size > 0 : decided.grants.has(channel)) return false
    }
    return true
  }

  /**
   * Keeps what `decided` granted `client`: its identity, and a timer for each grant that
   * expires. `revoke` and expiry find it here; `forget` drops it when the client leaves.
   */
  keep (client, decided) {
    const auth = client._auth ??= { user: null, grants: null, admission: null }
    if (decided.user !== null && auth.user === null) auth.user = decided.user
    if (decided.grants.size === 0) return
    const grants = auth.grants ??= new Map()
    for (const [channel, grant] of decided.grants) {
      const previous = grants.get(channel)
      if (previous !== undefined) clearTimeout(previous.timer)
      grants.set(channel, grant)
      this.#schedule(client, channel, grant)
    }
    this.#granted.add(client)
  }

  #schedule (client, channel, grant) {
    if (grant.expiresAt === null) return
    const left = grant.expiresAt - Date.now()
    const renewAt = grant.rule.renew ? left - Math.min(RENEW_LEAD_MS, left / 4) : Infinity
    if (Math.min(renewAt, left) > MAX_TIMER_MS) {
      // Further away than a timer reaches: look again then.
      grant.timer = setTimeout(() => this.#schedule(client, channel, grant), MAX_TIMER_MS)
    } else if (renewAt < left) {
      grant.timer = setTimeout(() => this.#renew(client, channel, grant), Math.max(0, renewAt))
    } else {
      grant.timer = setTimeout(() => this.#expire(client, channel, grant), Math.max(0, left))
    }
    grant.timer.unref()
  }

  /** Asks a renewable grant's rule again: a later expiry keeps the subscription going. */
  async #renew (client, channel, grant) {
    grant.timer = setTimeout(() => this.#expire(client, channel, grant), Math.min(MAX_TIMER_MS, Math.max(0, grant.expiresAt - Date.now())))
    grant.timer.unref()
    let answer
    try {
      answer = await ask(grant.rule, { channel, params: { ...grant.params }, request: null, client, user: client.user, renewal: true }, this.#timeoutMs)
    } catch {
      return
    }
    let renewed
    try {
      renewed = grantOf(answer, channel, Date.now())
    } catch {
      return
    }
    if (client._auth?.grants?.get(channel) !== grant || renewed === null || renewed.expiresAt === null || renewed.expiresAt <= grant.expiresAt) return
    if (renewed.user !== null && renewed.user !== client.user) return
    clearTimeout(grant.timer)
    grant.expiresAt = renewed.expiresAt
    grant.data = renewed.data ?? grant.data
    this.#schedule(client, channel, grant)
  }

  #expire (client, channel, grant) {
    if (client._auth?.grants?.get(channel) !== grant) return
    this.#end(client, channel, 'expired')
  }

  /** Ends `client`'s grant for `channel`: unsubscribed, and told why. */
  #end (client, channel, reason) {
    const grants = client._auth?.grants
    const grant = grants?.get(channel)
    if (grant === undefined) return false
    clearTimeout(grant.timer)
    grants.delete(channel)
    if (grants.size === 0) this.#granted.delete(client)
    this.#hub._revokeGrant(client, channel, reason)
    return true
  }

  /** Drops what `client` was granted (it left, or unsubscribed from `channel`). */
  forget (client, channel) {
    const grants = client._auth?.grants
    if (grants == null) return
    if (channel !== undefined) {
      const grant = grants.get(channel)
      if (grant === undefined) return
      clearTimeout(grant.timer)
      grants.delete(channel)
      if (grants.size > 0) return
    } else {
      for (const grant of grants.values()) clearTimeout(grant.timer)
      grants.clear()
    }
    this.#granted.delete(client)
  }

  /**
   * Ends the grants of `user`, of `channel`, or of `user` in `channel`, here; with Redis, the
   * other processes of the namespace do the same when its signal reaches them. Returns how
   * many grants ended here.
   */
  revoke ({ user, channel }, { local = false } = {}) {
    const now = Date.now()
    while (this.#revocations.length > 0 && now - this.#revocations[0].at > this.#timeoutMs) this.#revocations.shift()
    this.#revocations.push({ seq: ++this.#revokeSeq, at: now, user, channel })
    let ended = 0
    for (const client of [...this.#granted]) {
      if (user !== undefined && client.user !== user) continue
      const grants = client._auth.grants
      const channels = channel === undefined ? [...grants.keys()] : grants.has(channel) ? [channel] : []
      for (const name of channels) if (this.#end(client, name, 'revoked')) ended++
    }
    if (!local) this.#hub._sendSignal(JSON.stringify({ kind: REVOKE, origin: this.#origin, user, channel }))
    return ended
  }

  /** A signal (parsed) from a process of the namespace (this one's echo is skipped): a revoke is done here too. */
  onSignal (signal) {
    if (signal.origin === this.#origin || signal.kind !== REVOKE) return
    const user = typeof signal.user === 'string' ? signal.user : undefined
    const channel = typeof signal.channel === 'string' ? signal.channel : undefined
    if (user === undefined && channel === undefined) return
    this.revoke({ user, channel }, { local: true })
  }
}

module.exports = { Authorization }
