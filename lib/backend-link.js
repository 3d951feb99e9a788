'use strict'

// A hub's link to its backend (Redis), as JS sees it: when the hub is ready to serve, the
// process kept alive while the link lives on Rust's threads, the 'backend' events, and the
// wait at close() for what is still on its way. A hub without Redis is ready at once and
// holds nothing.

const observed = require('./diagnostics')

function noop () {}

class BackendLink {
  #hub
  #native
  #ready
  #resolveReady = null
  /** The hold on the event loop, from creation until close() completes. */
  #keepAlive = null
  #onUp

  /**
   * @param hub the Hub (emits 'backend')
   * @param linked whether the hub has Redis
   * @param onUp called each time the link comes up (presence re-announces itself)
   */
  constructor (hub, native, linked, onUp) {
    this.#hub = hub
    this.#native = native
    this.#onUp = onUp
    this.#ready = linked ? new Promise((resolve) => { this.#resolveReady = resolve }) : Promise.resolve()
    if (linked) {
      // The link to Redis lives on Rust's threads, which Node's event loop does not see:
      // without a handle of its own, `await hub.ready()` before anything else is listening
      // would end the process (an unsettled top-level await), and a script that publishes and
      // returns would exit with its events still in the outbound buffer. Like a socket, the
      // hub keeps the process alive until it is closed.
      this.#keepAlive = setInterval(noop, 2 ** 31 - 1)
    }
  }

  /** Settles once the hub can serve (see Hub#ready). */
  get ready () {
    return this.#ready
  }

  /** The core reported the link `state` ('up' or 'down'), `detail` saying why. */
  changed (state, detail) {
    if (state === 'up') this.#onUp()
    if (state === 'up' && this.#resolveReady !== null) {
      this.#resolveReady()
      this.#resolveReady = null
    }
    if (this.#hub.listenerCount('backend') > 0) this.#hub.emit('backend', { state, detail })
    if (observed.backend.hasSubscribers) observed.backend.publish({ hub: this.#hub, state, detail })
  }

  /** Waits (bounded) until what was published here reached Redis. */
  async flush (limitMs) {
    const deadline = Date.now() + limitMs
    while (this.#native.redisPending() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** The hub closed: the process may exit. */
  release () {
    clearInterval(this.#keepAlive)
  }
}

module.exports = { BackendLink }
