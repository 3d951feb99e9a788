'use strict'

// The event-stream response head (WHATWG: text/event-stream; docs/ARCHITECTURE.md "The wire"), written
// through Node for every kind of response, so headers that middleware already set (CORS,
// request ids) go out with it and Node validates them.

const { varyOnEncoding } = require('./compression')

const STREAM_HEADERS = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no'
})

/** The encoding headers of a stream: `gzip` is undefined when the hub does not compress,
 *  else whether this client's stream is gzip (compression.js). */
function encodingHeaders (gzip, vary) {
  if (gzip === undefined) return {}
  return gzip ? { 'content-encoding': 'gzip', vary: varyOnEncoding(vary) } : { vary: varyOnEncoding(vary) }
}

/** Sends the head on an HTTP/1.x or HTTP/2 compatibility response. Returns whether Node
 *  frames the body as chunked (HTTP/1.1), which a native writer must then continue.
 *  `send: false` has Node render the head (and check it) without sending it: the native
 *  transport sends it with the first body bytes (see native-transport.js). `gzip`: see
 *  encodingHeaders. */
function writeResponseHead (req, res, send = true, gzip = undefined) {
  if (!res.headersSent) {
    for (const [name, value] of Object.entries(STREAM_HEADERS)) res.setHeader(name, value)
    // A body without length: framed by Node (chunked on HTTP/1.1, by close on HTTP/1.0, DATA
    // frames on HTTP/2). A length or an encoding set by middleware would corrupt the stream.
    res.removeHeader('content-length')
    res.removeHeader('content-encoding')
    for (const [name, value] of Object.entries(encodingHeaders(gzip, res.getHeader('vary')))) res.setHeader(name, value)
    // Connection-specific headers are forbidden on HTTP/2 (Node throws on them).
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) res.setHeader('connection', 'keep-alive')
    res.writeHead(res.statusCode || 200)
    if (send) res.flushHeaders()
  }
  return res.chunkedEncoding === true
}

/** Sends the head on a raw HTTP/2 stream (`server.on('stream')`). */
function writeStreamHead (stream, gzip = undefined) {
  if (!stream.headersSent) stream.respond({ ':status': 200, ...STREAM_HEADERS, ...encodingHeaders(gzip) })
}

module.exports = { STREAM_HEADERS, encodingHeaders, writeResponseHead, writeStreamHead }
