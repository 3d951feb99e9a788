'use strict'

// Every error this package throws carries a stable `code` (ERR_SSE_*), like Node's own errors,
// so callers can branch on it without parsing messages.

function sseError (Kind, code, message, cause) {
  const error = cause === undefined ? new Kind(message) : new Kind(message, { cause })
  error.code = code
  return error
}

// The class each native code surfaces as: bad values are TypeErrors, sizes and ranges are
// RangeErrors, states (closed hub, closed client, no transport) are plain Errors.
const NATIVE_KINDS = {
  ERR_SSE_INVALID_FIELD: TypeError,
  ERR_SSE_INVALID_MESSAGE: TypeError,
  ERR_SSE_EVENT_TOO_LARGE: RangeError,
  ERR_SSE_INVALID_OPTION: RangeError,
  ERR_SSE_INVALID_RETRY: RangeError,
  ERR_SSE_CLIENT_CLOSED: Error,
  ERR_SSE_HUB_CLOSED: Error,
  ERR_SSE_TRANSPORT_UNAVAILABLE: Error,
  ERR_SSE_BACKEND_UNAVAILABLE: Error,
  ERR_SSE_INTERNAL: Error
}

/** Re-throws an error from the native binding as the public error class for its code. */
function fromNative (error) {
  const Kind = NATIVE_KINDS[error && error.code]
  if (Kind !== undefined) return sseError(Kind, error.code, error.message)
  // Anything else is napi's own failure or a caught Rust panic: a bug in native-sse, never the
  // caller's; keep the original as the cause for the report.
  return sseError(Error, 'ERR_SSE_INTERNAL', `native-sse internal error: ${error && error.message}`, error)
}

/**
 * The HTTP status a framework should answer with when attach() refused a request: 503 while
 * the hub is closed (another instance may take the client), 500 for anything else.
 */
function attachFailureStatus (error) {
  return error && error.code === 'ERR_SSE_HUB_CLOSED' ? 503 : 500
}

module.exports = { sseError, fromNative, attachFailureStatus }
