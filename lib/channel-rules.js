'use strict'

// Channel patterns for authorization rules: `user:{id}`, `org:{org}/room:{room}`. A pattern is
// a channel name cut into segments by the separators `:` and `/`; a segment is literal text or
// one named parameter `{name}`, which matches one or more characters that are not separators.
// Names are compared exactly as given: no decoding, no case folding, so `User:1` or `user%3A1`
// are other channels (which a rule must match on their own, or `requireAuthorization` denies).
// Where several patterns match a channel, the most specific wins: a literal segment beats a
// parameter, comparing from the left (`user:admin` before `user:{id}`), as HTTP routers do.

const { sseError } = require('./errors')
const { describe } = require('./checks')

const SEPARATOR = /[:/]/
const PARAMETER = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/

/** A channel name or pattern cut at its separators: segments, and the separators between. */
function split (name) {
  const segments = []
  const separators = []
  let start = 0
  for (let i = 0; i < name.length; i++) {
    if (SEPARATOR.test(name[i])) {
      segments.push(name.slice(start, i))
      separators.push(name[i])
      start = i + 1
    }
  }
  segments.push(name.slice(start))
  return { segments, separators: separators.join('') }
}

function invalidPattern (pattern, why) {
  return sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
    `authorize(pattern): ${JSON.stringify(pattern)} ${why}; a pattern is a channel name whose segments (between ':' or '/') are literal text or a parameter such as {id}`)
}

class ChannelPattern {
  /**
   * @param pattern e.g. `user:{id}`
   */
  constructor (pattern) {
    if (typeof pattern !== 'string' || pattern === '' || pattern.length > 256 || !pattern.isWellFormed()) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
        `authorize(pattern): pattern must be a channel name of 1 to 256 characters, got ${describe(pattern)}`)
    }
    const { segments, separators } = split(pattern)
    this.pattern = pattern
    this.separators = separators
    /** Per segment: its literal text, or null for a parameter. */
    this.literals = []
    /** Per segment: the parameter's name, or null for literal text. */
    this.names = []
    for (const segment of segments) {
      const parameter = PARAMETER.exec(segment)
      if (parameter !== null) {
        if (this.names.includes(parameter[1])) throw invalidPattern(pattern, `names the parameter {${parameter[1]}} twice`)
        this.literals.push(null)
        this.names.push(parameter[1])
      } else if (/[{}]/.test(segment)) {
        throw invalidPattern(pattern, `has a brace outside a whole-segment parameter (${JSON.stringify(segment)})`)
      } else if (segment === '') {
        throw invalidPattern(pattern, 'has an empty segment (a separator at an end, or two in a row)')
      } else {
        this.literals.push(segment)
        this.names.push(null)
      }
    }
  }

  /** The parameters when `channel` (already split) matches, else null. */
  match ({ segments, separators }) {
    if (separators !== this.separators) return null
    const params = {}
    for (let i = 0; i < segments.length; i++) {
      const literal = this.literals[i]
      if (literal === null) {
        if (segments[i] === '') return null
        params[this.names[i]] = segments[i]
      } else if (segments[i] !== literal) {
        return null
      }
    }
    return params
  }

  /**
   * The order rules are tried in: by shape (only patterns with the same separators can match
   * one channel), then the more specific first (literal before parameter, from the left).
   */
  compare (other) {
    if (this.separators !== other.separators) return this.separators < other.separators ? -1 : 1
    for (let i = 0; i < this.literals.length; i++) {
      const mine = this.literals[i] !== null
      const theirs = other.literals[i] !== null
      if (mine !== theirs) return mine ? -1 : 1
    }
    return 0
  }

  /** Same shape (separators, and where the parameters are): two rules that could never be told apart. */
  sameShape (other) {
    return this.separators === other.separators && this.literals.every((literal, i) => literal === other.literals[i])
  }
}

/** The rules of one hub, most specific first. */
class ChannelRules {
  #rules = []

  get size () {
    return this.#rules.length
  }

  /** Adds `rule` ({ pattern: ChannelPattern, ... }); a second rule of the same pattern throws. */
  add (rule) {
    const twin = this.#rules.find((r) => r.pattern.sameShape(rule.pattern))
    if (twin !== undefined) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
        `authorize(pattern): ${JSON.stringify(rule.pattern.pattern)} matches exactly the channels of the rule ${JSON.stringify(twin.pattern.pattern)} already given; put both checks in one rule`)
    }
    this.#rules.push(rule)
    this.#rules.sort((a, b) => a.pattern.compare(b.pattern))
  }

  /** The most specific rule matching `channel` and its parameters, or null. */
  match (channel) {
    if (this.#rules.length === 0) return null
    const parts = split(channel)
    for (const rule of this.#rules) {
      const params = rule.pattern.match(parts)
      if (params !== null) return { rule, params }
    }
    return null
  }
}

module.exports = { ChannelPattern, ChannelRules }
