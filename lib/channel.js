'use strict'

// hub.channel(name): a handle on one channel of a hub.

/** One channel of a hub, by name. Holds nothing but the name: cheap to make, any number. */
class Channel {
  #hub
  #native

  constructor (hub, native, name) {
    this.#hub = hub
    this.#native = native
    /** The channel's name. */
    this.name = name
  }

  /** Clients subscribed now. */
  get size () {
    return this.#native.channelSize(this.name)
  }

  /** hub.publish(name, message). */
  publish (message) {
    return this.#hub.publish(this.name, message)
  }
}

module.exports = { Channel }
