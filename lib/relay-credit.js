'use strict'

// What a relayed client's sink (node-transport.js, fetch-transport.js) was handed and what it
// acknowledged, counted in bytes from the start. Rust hands a Fetch body batches on credit
// (relay_sink.rs: RELAY_CREDIT_BYTES unacknowledged at most), and its sink acknowledges once
// half of it is used, so a body that keeps up costs one acknowledgement per 8 KiB rather than
// one per batch; a Node response takes one batch at a time, each acknowledged as it is
// accepted. A sink that refuses a batch says so at once and acknowledges everything once it
// drains.

const { RELAY_CREDIT_BYTES } = require('./native')

/** A Fetch body's: unacknowledged bytes at which it acknowledges. */
const FETCH_ACKNOWLEDGE_AT = RELAY_CREDIT_BYTES / 2
/** What `took` returns for a refused batch: the relay tells Rust at once. */
const REFUSED = -1

class Credit {
  #handed = 0
  #acknowledged = 0
  #acknowledgeAt

  /** @param acknowledgeAt unacknowledged bytes at which an accepted batch is acknowledged (0: each) */
  constructor (acknowledgeAt) {
    this.#acknowledgeAt = acknowledgeAt
  }

  /**
   * Counts a batch of `bytes` the sink took: accepted (its response takes more), or not.
   * Returns the count to acknowledge now, 0 for none yet, or REFUSED.
   */
  took (bytes, accepted) {
    this.#handed += bytes
    if (!accepted) return REFUSED
    if (this.#handed - this.#acknowledged < this.#acknowledgeAt) return 0
    return this.all()
  }

  /** Everything handed so far, acknowledged (the response drained). */
  all () {
    this.#acknowledged = this.#handed
    return this.#handed
  }
}

module.exports = { Credit, REFUSED, FETCH_ACKNOWLEDGE_AT }
