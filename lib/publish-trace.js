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
//
// With Redis every process delivers, and the trace context is what connects them: a start
// subscriber may set `context.traceContext` (a string, such as a W3C traceparent), which
// travels with the event through Redis. Each process that delivers it, the publisher's
// included, then publishes asyncStart/asyncEnd on a context of its own:
// { hub, channel, backend: true, traceContext, delivery }. Such a hub's publish contexts end
// at `end`.

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

  /** Deliveries come back through the backend (Redis), not by token. */
  #linked

  constructor (hub, linked) {
    this.#hub = hub
    this.#linked = linked
  }

  /** Whether anyone subscribes to the trace. */
  get active () {
    return publishTrace.hasSubscribers
  }

  /**
   * Runs `publish(watch)` (the native call, which watches the delivery with `watch.token` and
   * sends `watch.trace` along) inside the trace, and returns its result.
   */
  run (channel, message, publish) {
    const context = { hub: this.#hub, channel, message }
    return publishTrace.traceSync(() => {
      const trace = typeof context.traceContext === 'string' ? context.traceContext : undefined
      if (this.#linked) return publish({ token: 0, trace })
      const token = this.#nextToken++
      this.#pending.set(token, context)
      if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value)
      try {
        return publish({ token, trace })
      } catch (error) {
        this.#pending.delete(token)
        throw error
      }
    }, context)
  }

  /**
   * The native report for `token` (0: an event that came through the backend with a trace
   * context): `outcome` 'complete' or 'dropped'; `channel` '' for a broadcast.
   */
  delivered (token, outcome, recipients, micros, [channel, traceContext] = ['', '']) {
    const delivery = { recipients, complete: outcome === 'complete', elapsedMs: micros / 1000 }
    let context
    if (token === 0) {
      if (!publishTrace.hasSubscribers) return
      context = { hub: this.#hub, channel: channel === '' ? null : channel, backend: true, traceContext }
    } else {
      context = this.#pending.get(token)
      if (context === undefined) return
      this.#pending.delete(token)
    }
    context.delivery = delivery
    publishTrace.asyncStart.publish(context)
    publishTrace.asyncEnd.publish(context)
  }

  /** The hub closed: no report is awaited any more. */
  clear () {
    this.#pending.clear()
  }
}

module.exports = { PublishTracer, publishTrace }
