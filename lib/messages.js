'use strict'

// A message as the hub takes it (`{ data, event?, id?, retry? }`) and a comment, checked and
// brought to the native call's arguments once, whatever the number of recipients; and what
// one item of client.stream() or client.writable() sends.

const { sseError } = require('./errors')
const { describe, rejectUnknownKeys, retryValue } = require('./checks')

const MESSAGE_KEYS = new Set(['data', 'event', 'id', 'retry'])

/**
 * Checks a message and brings `data` to what the encoder takes: a string or a Buffer as is,
 * anything else JSON-serialized here, once, whatever the number of recipients.
 * Returns [data, event, id, retry] as the native call's arguments.
 */
function messageArgs (message) {
  if (message === null || typeof message !== 'object' || Array.isArray(message) || ArrayBuffer.isView(message)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_MESSAGE',
      `message must be an object like { data, event?, id?, retry? }, got ${describe(message)}`)
  }
  rejectUnknownKeys(message, MESSAGE_KEYS, 'message field')
  let { data, event, id, retry } = message
  if (data !== undefined && typeof data !== 'string') {
    if (ArrayBuffer.isView(data)) {
      data = bufferOf(data)
    } else {
      data = jsonData(data)
    }
  }
  if (event !== undefined && typeof event !== 'string') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_FIELD', `message.event must be a string, got ${describe(event)}`)
  }
  if (typeof id === 'number' && Number.isFinite(id)) id = String(id)
  if (id !== undefined && typeof id !== 'string') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_FIELD', `message.id must be a string or a finite number, got ${describe(id)}`)
  }
  // Names and ids identify: rewritten to U+FFFD on their way to Rust, two of them would match.
  if (event !== undefined && !event.isWellFormed()) throw illFormed('event', event)
  if (id !== undefined && !id.isWellFormed()) throw illFormed('id', id)
  return [data, event, id, retryValue(retry, 'message.retry')]
}

/** A typed array or DataView as a Buffer over the same bytes (no copy). */
function bufferOf (view) {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

function illFormed (field, value) {
  return sseError(TypeError, 'ERR_SSE_INVALID_MESSAGE',
    `message.${field} ${JSON.stringify(value)} is not well-formed Unicode (a lone surrogate); use .toWellFormed() or another ${field}`)
}

function jsonData (value) {
  let text
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_DATA',
      `message.data could not be serialized as JSON (${error.message}); pass a string or a JSON-serializable value`, error)
  }
  if (text === undefined) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_DATA',
      `message.data of type ${typeof value} has no JSON form; pass a string or a JSON-serializable value`)
  }
  return text
}

function commentText (text) {
  if (typeof text !== 'string') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_COMMENT', `comment text must be a string, got ${describe(text)}`)
  }
  return text
}

/**
 * What one item of `client.stream()` or `client.writable()` sends: strings, Buffers and typed
 * arrays are the `data` of an event; anything else must be a message object like send()'s.
 */
function messageOf (item) {
  if (typeof item === 'string' || ArrayBuffer.isView(item)) return { data: item }
  return item
}

module.exports = { messageArgs, messageOf, commentText, bufferOf }
