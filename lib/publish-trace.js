'use strict'

// Publishes as node:diagnostics_channel's TracingChannel `native-sse:publish` shows them, the
// convention of undici, fastify and h3 that APM agents and OpenTelemetry instrumentations
// subscribe to (no patching, the same under CommonJS, ESM, Bun and Deno). For each
// `hub.publish()` / `hub.broadcast()` made while it has subscribers, one context object goes
// through:
//
//   start       { hub, channel (null: broadcast), message }, before the event is checked
//   end         + result: the recipients (clients it was queued for), or
//   error       + error: what the call threw (nothing was sent)
//   asyncStart  + delivery: { recipients, complete, elapsedMs }, once this process has
//   asyncEnd      written it to every one of them (or they left): `complete` false when the
//                 hub let it go first (a client lagged out under drop-oldest); `elapsedMs`
//                 from the publish
//
// A subscriber keeps its own state on the context (a span, a start time) from start to
// asyncEnd. The delivery is watched in Rust only while someone subscribes, and reported once
// per publish; nobody subscribed costs the publish one property read.

const diagnostics = require('node:diagnostics_channel')

const publishTrace = diagnostics.tracingChannel('native-sse:publish')

/**
 * Publishes whose delivery is awaited. The core reports each one (its entries hold them, and
 * an entry reports as it goes), so this many are only reached by a synchronous loop of
 * publishes that long; past it the oldest is forgotten, a backstop against a report that
 * never comes.
 */
const MAX_PENDING = 1 << 20

class PublishTracer {
  #hub
  /** token -> context, in publish order. */
  #pending = new Map()
  #nextToken = 1

  constructor (hub) {
    this.#hub = hub
  }

  /** Whether anyone subscribes to the trace. */
  get active () {
    return publishTrace.hasSubscribers
  }

  /**
   * Runs `publish(token)` (the native call, which watches the delivery with `token`) inside
   * the trace, and returns its result.
   */
  run (channel, message, publish) {
    const context = { hub: this.#hub, channel, message }
    return publishTrace.traceSync(() => {
      const token = this.#nextToken++
      this.#pending.set(token, context)
      if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value)
      try {
        return publish(token)
      } catch (error) {
        this.#pending.delete(token)
        throw error
      }
    }, context)
  }

  /** The native report for `token`: `outcome` 'complete' or 'dropped'. */
  delivered (token, outcome, recipients, micros) {
    const context = this.#pending.get(token)
    if (context === undefined) return
    this.#pending.delete(token)
    context.delivery = { recipients, complete: outcome === 'complete', elapsedMs: micros / 1000 }
    publishTrace.asyncStart.publish(context)
    publishTrace.asyncEnd.publish(context)
  }

  /** The hub closed: no report is awaited any more. */
  clear () {
    this.#pending.clear()
  }
}

module.exports = { PublishTracer, publishTrace }
