'use strict'

// Every error this package throws carries a stable `code` (ERR_SSE_*), like Node's own errors,
// so callers can branch on it without parsing messages.

function sseError (Kind, code, message, cause) {
  const error = cause === undefined ? new Kind(message) : new Kind(message, { cause })
  error.code = code
  return error
}

const CLASSES = { TypeError, RangeError, Error }
// The class each code surfaces as when the core raises it, from the one table of codes
// (native_sse_core::ErrorCode), handed over by lib/native.js once the binding has loaded:
// the loader's own errors (ERR_SSE_NO_BINARY) are made with this module before that.
const nativeClasses = new Map()

/** Takes the binding's `errorCodes()`. */
function useErrorTable (entries) {
  for (const entry of entries) nativeClasses.set(entry.code, CLASSES[entry.class])
}

/** Re-throws an error from the native binding as the public error class for its code. */
function fromNative (error) {
  const Kind = nativeClasses.get(error && error.code)
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

module.exports = { sseError, fromNative, attachFailureStatus, useErrorTable }
