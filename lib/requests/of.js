'use strict'

// What attach() and response() were given, checked (and for attach, wrapped as one of the
// request kinds of this folder), so the hub never looks at a raw argument.

const { sseError } = require('../errors')
const { describe } = require('../options')
const { NodeResponseRequest } = require('./node-response')
const { Http2StreamRequest, isHttp2Stream } = require('./http2-stream')
const { isFetchRequest } = require('./fetch')

const isObject = (value) => value !== null && typeof value === 'object'

/** attach(req, res) or attach(stream, headers): the request, or a TypeError saying what is wrong. */
function nodeRequest (req, res) {
  if (isHttp2Stream(req)) {
    if (!isObject(res)) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
        `attach(stream, headers): headers must be the stream's request headers, got ${describe(res)}`)
    }
    return new Http2StreamRequest(req, res)
  }
  if (!isObject(req) || !isObject(req.headers)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
      `attach(req, res): req must be an http.IncomingMessage, http2.Http2ServerRequest or http2 stream, got ${describe(req)}`)
  }
  if (!isObject(res) || typeof res.writeHead !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `attach(req, res): res must be an http.ServerResponse, got ${describe(res)}`)
  }
  return new NodeResponseRequest(req, res)
}

/** response(request, options, onClient): a TypeError saying what is wrong with its arguments. */
function checkFetchArguments (request, onClient) {
  if (!isFetchRequest(request)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
      `response(request): request must be a Fetch API Request (in Hono c.req.raw, in Next.js the route handler's request), got ${describe(request)}`)
  }
  if (onClient !== undefined && typeof onClient !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `response(request, options, onClient): onClient must be a function, got ${describe(onClient)}`)
  }
}

module.exports = { nodeRequest, checkFetchArguments }
