'use strict'

// Express route handler: `app.get('/events', sse(hub, { channels, onConnect, onError }))`.
// After the handler runs the response belongs to the hub: `res.on('close')` fires at the
// handoff (listen to `client.on('close')`), and middleware that wraps res.write (compression,
// body loggers) is bypassed, so the stream is never compressed.

const { Hub } = require('./hub')
const { sseError, attachFailureStatus } = require('./errors')
const { describe } = require('./checks')

const HELPER_KEYS = new Set(['channels', 'onConnect', 'onError', 'retryMs', 'transport', 'user'])

/** Where an onConnect failure goes when no onError is given: stderr, as Express's own
 *  final handler reports errors. */
function reportToStderr (error, client) {
  console.error(`native-sse: onConnect failed for client ${client.id}; its stream was closed:`, error)
}

/**
 * @param hub the hub to attach clients to
 * @param options attach options (retryMs, transport; `channels` an array, or a function of
 *   the request returning one, so that channels chosen per request resume like fixed ones;
 *   `user` a string, or a function of the request, for the hub's authorization rules);
 *   `onConnect(client, req)`, called once the client is attached (after any async
 *   authorization check allowed it; may return a promise);
 *   `onError(error, client, req)`, called when onConnect throws or rejects. The stream has
 *   begun by then, so Express can no longer answer with an error page: the client is closed
 *   gracefully (what was queued is still delivered) and the error goes to onError, or to
 *   stderr when onError is not given.
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
  const { onConnect, onError = reportToStderr, channels, user, ...fixedOptions } = options
  for (const [name, value] of [['onConnect', onConnect], ['onError', onError]]) {
    if (value !== undefined && typeof value !== 'function') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} must be a function, got ${describe(value)}`)
    }
  }
  // Channels chosen per request (`(req) => [...]`) are known at attach, so a reconnecting
  // client resumes in them too; a client.subscribe() in onConnect joins at the channel's head.
  const channelsOf = typeof channels === 'function' ? channels : () => channels
  // Who the client is, for the hub's authorization rules: `(req) => req.user?.id`.
  const userOf = typeof user === 'function' ? user : () => user

  return function sseHandler (req, res, next) {
    let client
    try {
      const chosen = channelsOf(req)
      const who = userOf(req)
      const perRequest = chosen === undefined ? fixedOptions : { ...fixedOptions, channels: chosen }
      client = hub.attach(req, res, who === undefined ? perRequest : { ...perRequest, user: who })
    } catch (error) {
      // Nothing was written: Express's error handling can still answer.
      error.status = attachFailureStatus(error)
      return next(error)
    }
    if (onConnect === undefined) return
    // Held while an async authorization check decides: onConnect runs once it is let in.
    const admission = client._auth?.admission
    if (admission != null) admission.then(() => connected(client, req))
    else connected(client, req)
  }

  function connected (client, req) {
    // Refused (full, closing, forbidden: attach already answered), or a HEAD (answered with
    // the head alone): not a connection.
    if (client.closed) return
    // Not next(error): the head is on the wire, and Express would destroy the socket, cutting
    // the graceful close requested here.
    const failed = (error) => {
      client.close()
      try {
        onError(error, client, req)
      } catch (reportError) {
        process.nextTick(() => { throw reportError })
      }
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
