'use strict'

// The checks every option and argument goes through: a plain object, known keys, defaults
// merged, a number, a retry delay, and how a wrong value is named in the error that says so.

const { sseError } = require('./errors')

function rejectUnknownKeys (object, allowed, what) {
  for (const key in object) {
    if (!allowed.has(key)) {
      throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION',
        `unknown ${what} '${key}'; allowed: ${[...allowed].join(', ')}`)
    }
  }
}

/** `given` (a plain object) checked against the keys of `defaults`, and merged over them. */
function withDefaults (given, defaults, what) {
  rejectUnknownKeys(given, new Set(Object.keys(defaults)), what)
  const merged = { ...defaults }
  for (const key in given) if (given[key] !== undefined) merged[key] = given[key]
  return merged
}

function plainObject (value, what) {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${what} must be an object, got ${describe(value)}`)
  }
  return value
}

/**
 * Checks the type only: each option's range is defined once, in the core (src/lib.rs), which
 * refuses a value out of range with ERR_SSE_INVALID_OPTION (a RangeError).
 */
function number (value, name) {
  if (typeof value !== 'number') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} must be a number, got ${describe(value)}`)
  }
  return value
}

/**
 * The longest `retry:` taken, 2^31 - 1 ms (about 24.8 days): the most a browser's timer holds;
 * past it setTimeout fires at once, and a client would reconnect in a loop.
 */
const MAX_RETRY_MS = 2 ** 31 - 1

function retryValue (value, name) {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_RETRY_MS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_RETRY',
      `${name} must be a non-negative whole number of milliseconds up to ${MAX_RETRY_MS} (a browser's timer holds no more), got ${describe(value)}`)
  }
  return value
}

function describe (value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)
  if (typeof value === 'object') return `an object (${value.constructor ? value.constructor.name : 'null prototype'})`
  return `${typeof value} ${String(value)}`
}

module.exports = { rejectUnknownKeys, withDefaults, plainObject, number, MAX_RETRY_MS, retryValue, describe }
