'use strict'

// Express route handler: `app.get('/events', sse(hub, { channels, onConnect }))`.
// After the handler runs the response belongs to the hub: `res.on('close')` fires at the
// handoff (listen to `client.on('close')`), and middleware that wraps res.write (compression,
// body loggers) is bypassed, so the stream is never compressed.

const { Hub } = require('./hub')
const { sseError } = require('./errors')
const { describe } = require('./options')

const HELPER_KEYS = new Set(['channels', 'onConnect', 'retryMs', 'transport'])

/**
 * @param hub the hub to attach clients to
 * @param options attach options (channels, retryMs, transport) and
 *   `onConnect(client, req)`, called once the client is attached
 */
function sse (hub, options = {}) {
  if (!(hub instanceof Hub)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `sse(hub, options): hub must come from createHub(), got ${describe(hub)}`)
  }
  if (options === null || typeof options !== 'object') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `sse(hub, options): options must be an object, got ${describe(options)}`)
  }
  for (const key in options) {
    if (!HELPER_KEYS.has(key)) {
      throw sseError(TypeError, 'ERR_SSE_UNKNOWN_OPTION', `unknown sse() option '${key}'; allowed: ${[...HELPER_KEYS].join(', ')}`)
    }
  }
  const { onConnect, ...attachOptions } = options
  if (onConnect !== undefined && typeof onConnect !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `onConnect must be a function, got ${describe(onConnect)}`)
  }

  return function sseHandler (req, res, next) {
    let client
    try {
      client = hub.attach(req, res, attachOptions)
    } catch (error) {
      // Nothing was written: Express's error handling can still answer.
      return next(error)
    }
    if (onConnect === undefined) return
    const failed = (error) => {
      client.close()
      next(error)
    }
    try {
      const result = onConnect(client, req)
      if (result && typeof result.then === 'function') result.then(undefined, failed)
    } catch (error) {
      failed(error)
    }
  }
}

module.exports = { sse }
