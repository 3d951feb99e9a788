'use strict'

// sharedHub(name, options): one hub per name per process, however many times the module that
// asks for it is evaluated. A dev server (next dev, Vite) evaluates an edited module again in
// the same process, so a module-level `const hub = createHub()` makes a second hub there: the
// streams already open stay on the first, and a publish through the second reaches nobody
// (`delivered: 0`) without a word. The registry lives on globalThis, under a Symbol.for key,
// so a module loaded again, and a second copy of this package (bundled once, required once),
// both find the hub the first call made.
//
// The registry is a Map from name to `{ hub, options }`, `options` being the canonical JSON of
// the options the hub was created with, after createHub's own checks and defaults: every copy
// of the package reads and writes entries of that shape.

const { Hub } = require('./hub')
const { hubOptions } = require('./options')
const { describe } = require('./checks')
const { sseError } = require('./errors')

const REGISTRY = Symbol.for('native-sse.sharedHubs')

function registry () {
  let hubs = globalThis[REGISTRY]
  if (hubs === undefined) {
    hubs = new Map()
    Object.defineProperty(globalThis, REGISTRY, { value: hubs, configurable: true })
  }
  return hubs
}

/** JSON with every object's keys sorted, so equal options give the same text. */
function canonical (value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((key) => value[key] !== undefined).sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * The options as the hub would run with them: checked (throwing what createHub throws) and
 * with the defaults filled in, so `{}` and `{ heartbeatMs: 15000 }` are the same options, as
 * are `history: true` and `history: {}`. Every hub option is data (numbers, strings, booleans
 * and objects of them), so everything that can be passed can be compared; a callback or a Map
 * is refused by the checks like in createHub.
 */
function optionsKey (options) {
  const { channels, ...rest } = hubOptions(options)
  return canonical({ ...rest, channels: Object.fromEntries(channels) })
}

/** The top-level options whose values differ between two keys, for the message. */
function changedOptions (was, now) {
  const before = JSON.parse(was)
  const after = JSON.parse(now)
  const names = new Set([...Object.keys(before), ...Object.keys(after)])
  const changed = [...names].filter((name) => canonical(before[name]) !== canonical(after[name]))
  // `history` runs as three fields (historyMaxEvents, ...): named as it was given.
  return [...new Set(changed.map((name) => name.startsWith('history') ? 'history' : name))]
}

/**
 * The process's hub named `name`: created with `options` by the first call, returned by every
 * later one (from this module, a copy of it evaluated again, or another copy of native-sse).
 * A closed hub is replaced by a new one, made with this call's options. A later call whose
 * options differ throws ERR_SSE_HUB_OPTIONS_CHANGED instead of running with the old ones.
 */
function sharedHub (name, options) {
  if (typeof name !== 'string' || name.length === 0) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `sharedHub: name must be a non-empty string, got ${describe(name)}`)
  }
  const key = optionsKey(options)
  const hubs = registry()
  const entry = hubs.get(name)
  if (entry !== undefined && !entry.hub.closed) {
    if (entry.options !== key) {
      throw sseError(Error, 'ERR_SSE_HUB_OPTIONS_CHANGED',
        `sharedHub: the hub named '${name}' already exists in this process with other options ` +
        `(changed: ${changedOptions(entry.options, key).join(', ')}) and keeps the ones it was created with; ` +
        'restart the process (the dev server) to apply the new ones')
    }
    return entry.hub
  }
  const hub = new Hub(options)
  hubs.set(name, { hub, options: key })
  return hub
}

module.exports = { sharedHub, REGISTRY }
