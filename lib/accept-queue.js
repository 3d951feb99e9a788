'use strict'

// Node listens with an accept queue of 511. In a reconnect wave (a deploy, a network blip:
// every client comes back at once) the queue fills while the server handles the connections
// before it; handshakes beyond it are dropped, and each of those clients waits for its SYN
// retry (1 s, then 3 s more) before the server even sees it. listen() again on a listening
// socket changes only its queue (request_head.rs, set_backlog).

const { setListenBacklog } = require('./native')
const { sseError } = require('./errors')
const { describe } = require('./checks')

/** The system caps a queue at net.core.somaxconn (4096 on recent Linux): more asks for that. */
const MAX_BACKLOG = 65535

/** The queue set on each listening handle; a server that listens again has a new handle. */
const SET = new WeakMap()

/**
 * Gives `server`'s listening socket an accept queue of `backlog` (which may be shorter than the
 * one `listen()` was given: a number is what the app asked for), unless this module set one at
 * least as long already (two hubs, or a route, on one server). A server with no descriptor of
 * its own (a cluster worker under round-robin scheduling, Node's default: the primary accepts;
 * a closed server) is left as it is; a worker under SCHED_NONE holds the shared socket itself,
 * and its queue is every worker's.
 */
function raiseAcceptQueue (server, backlog) {
  const handle = server?._handle
  if (handle == null || typeof handle.fd !== 'number' || handle.fd < 0) return
  const set = SET.get(handle)
  if (set !== undefined && set >= backlog) return
  SET.set(handle, backlog)
  setListenBacklog(handle.fd, backlog)
}

/**
 * A queue option as a length (null: leave the server's own): `true` is the most the system
 * allows, `false` none, else a whole number from 1 to MAX_BACKLOG. `name`: the option's, for
 * the error.
 */
function backlogOption (backlog, name) {
  if (backlog === true) return MAX_BACKLOG
  if (backlog === false) return null
  if (typeof backlog !== 'number') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `${name} must be true, false or a number, got ${describe(backlog)}`)
  }
  if (Number.isSafeInteger(backlog) && backlog >= 1 && backlog <= MAX_BACKLOG) return backlog
  throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `${name} must be true, false or a whole number from 1 to ${MAX_BACKLOG}, got ${describe(backlog)}`)
}

module.exports = { raiseAcceptQueue, backlogOption }
