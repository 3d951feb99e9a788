'use strict'

// The clients whose bytes JS writes for Rust: the Node transport's responses and the Fetch
// transport's bodies. Rust hands over their batches in one call for many clients (a flush);
// each sink writes its own, and the acknowledgements due are sent together (relay-credit.js). Rust also
// says when a sink ends (after what was written) or is cut; a sink goes when its client does.

const { StallWatch } = require('./fetch-transport')
const { REFUSED } = require('./relay-credit')

class Relay {
  #native
  #writeTimeoutMs
  #sinks = new Map()
  /** Cuts Fetch bodies nobody reads; made with the first. */
  #stallWatch = null
  /** Fetch bodies ended and not yet taken to their end by the runtime. */
  #ending = new Set()

  constructor (native, writeTimeoutMs) {
    this.#native = native
    this.#writeTimeoutMs = writeTimeoutMs
  }

  /** Takes client `id`'s sink (NodeSink or StreamSink). */
  add (id, sink) {
    this.#sinks.set(id, sink)
    if (typeof sink.stalled === 'function') (this.#stallWatch ??= new StallWatch(this.#writeTimeoutMs)).add(sink)
  }

  /**
   * Writes every waiting batch. The acknowledgements due (relay-credit.js) go in one call; a
   * refusal goes at once, so Rust hands that client nothing more and its deadline runs.
   */
  flush () {
    const { ids, chunks, which } = this.#native.takeWrites()
    const acknowledgedIds = []
    const acknowledgedBytes = []
    let refusedIds = null
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]
      const sink = this.#sinks.get(id)
      if (sink === undefined) continue
      const taken = sink.write(chunks[which[i]])
      if (taken > 0) {
        acknowledgedIds.push(id)
        acknowledgedBytes.push(taken)
      } else if (taken === REFUSED) {
        (refusedIds ??= []).push(id)
      }
    }
    if (acknowledgedIds.length > 0) this.#native.relayAcknowledgedMany(acknowledgedIds, acknowledgedBytes)
    // After the acknowledgements: one for a batch a sink took before it refused the next
    // would otherwise lift the refusal.
    if (refusedIds !== null) for (const id of refusedIds) this.#native.relayRefused(id)
  }

  /** Rust wrote everything for client `id`: its body ends complete. */
  end (id) {
    const sink = this.#sinks.get(id)
    if (sink === undefined) return
    sink.end()
    if (sink.handedOver !== undefined) {
      this.#ending.add(sink.handedOver)
      sink.handedOver.then(() => this.#ending.delete(sink.handedOver))
    }
  }

  /**
   * Resolves once every body that was ended has been taken by its runtime, end included
   * (StreamSink.handedOver), or after `limitMs`: what hub.close() promises for Fetch bodies.
   */
  async handedOver (limitMs) {
    if (this.#ending.size === 0) return
    let timer
    await Promise.race([
      Promise.all(this.#ending),
      new Promise((resolve) => { timer = setTimeout(resolve, limitMs) })
    ])
    clearTimeout(timer)
  }

  /** Rust cut client `id` (slow, timed out, a failed drain): its body is cut too. */
  destroy (id) {
    this.#sinks.get(id)?.destroy()
  }

  /** Client `id` is gone: its sink stops listening (and is cut if still open). */
  remove (id) {
    const sink = this.#sinks.get(id)
    if (sink === undefined) return
    this.#sinks.delete(id)
    this.#stallWatch?.delete(sink)
    sink.detach()
  }
}

module.exports = { Relay }
