'use strict'

// What attach() and response() were given, checked (and for attach, wrapped as one of the
// request kinds of this folder), so the hub never looks at a raw argument.

const { sseError } = require('../errors')
const { describe } = require('../checks')
const { NodeResponseRequest } = require('./node-response')
const { Http2StreamRequest, isHttp2Stream } = require('./http2-stream')
const { FetchRequest, isFetchRequest } = require('./fetch')
const { NodeServerRequest, nodePairOf, isHonoContext } = require('./node-server')
const { fetchHeartbeatMs } = require('../fetch-transport')

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

/**
 * response(request, options, onClient): the Fetch Request it was given (a Hono context's
 * `c.req.raw`), or a TypeError saying what is wrong with its arguments.
 */
function checkFetchArguments (request, onClient) {
  const raw = isHonoContext(request) ? request.req.raw : request
  if (!isFetchRequest(raw)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT',
      `response(request): request must be a Fetch API Request or a Hono context (in Hono c, in Next.js the route handler's request), got ${describe(request)}`)
  }
  if (onClient !== undefined && typeof onClient !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `response(request, options, onClient): onClient must be a function, got ${describe(onClient)}`)
  }
  return raw
}

/**
 * What response() serves, and by which transport: a Hono context on Node as attach() would
 * serve Node's own req and res ('auto': natively where the socket can be handed over), unless
 * `transport: 'fetch'` asks for the Response body; any other Request through the body of the
 * Response ('fetch'). `raw`: the Fetch Request (checkFetchArguments).
 */
function fetchRequest (given, raw, { headers, heartbeatMs, transport }, hubHeartbeatMs) {
  const pair = transport !== 'fetch' && raw.method === 'GET' && given !== raw ? nodePairOf(given) : null
  if (pair !== null) return { request: new NodeServerRequest(pair, headers, heartbeatMs), transport: 'auto' }
  return { request: new FetchRequest(raw, headers, heartbeatMs ?? fetchHeartbeatMs(hubHeartbeatMs)), transport: 'fetch' }
}

module.exports = { nodeRequest, checkFetchArguments, fetchRequest }
