'use strict'

// What every kind of request checks the same way before it becomes a stream.

const { sseError } = require('../errors')

function alreadyAttachedError () {
  return sseError(Error, 'ERR_SSE_ALREADY_ATTACHED', 'attach(): this response is attached already; attach each request once')
}

function isEventStreamHead (status, contentType) {
  return Number(status) === 200 && /^text\/event-stream\b/i.test(String(contentType ?? ''))
}

function headersSentError (status, contentType) {
  return sseError(Error, 'ERR_SSE_HEADERS_SENT',
    `attach(): the response head was already sent (status ${status}, content-type ${contentType === undefined ? 'none' : `'${contentType}'`}), ` +
    'so the stream would not be read as an event stream. Attach before anything is written (res.flushHeaders(), res.writeHead() and res.send() all send the head), ' +
    "or write the head yourself as status 200 with content-type 'text/event-stream'")
}

module.exports = { alreadyAttachedError, isEventStreamHead, headersSentError }
