'use strict'

// native-sse/otel: OpenTelemetry spans from the `native-sse:publish` TracingChannel
// (publish-trace.js), with @opentelemetry/api as an optional peer dependency: nothing is
// loaded or subscribed until instrument() is called. Following OpenTelemetry's messaging
// conventions (still "development"):
//
// - `publish <channel>` (PRODUCER): one per hub.publish() / hub.broadcast(), a child of the
//   context active where the app published; `messaging.destination.name`, the message's id,
//   and the recipients queued (`native_sse.recipients`). An error the call threw is recorded
//   on it with status ERROR.
// - `deliver <channel>` (CONSUMER): one per publish per process, once this process has written
//   the event to every recipient (or they left), from the publish to that moment: a child of
//   the publish span, linked to it, with `messaging.batch.message_count` = the recipients
//   and whether every one of them had it (`native_sse.delivery.complete`). 100,000 deliveries
//   are one span, not 100,000.
//
// With Redis, the publish span's context travels with the event (as a W3C traceparent), and
// each process that delivers it, the publisher's included, makes its `deliver` span under it:
// one trace from the publish through Redis to every process's delivery.
//
// The trace context does not go to browsers: a frame carries what the app put in it, and a
// trace id in every event would tell each client about the server's traces. An app that wants
// it on the client puts it in its data.

const { publishTrace } = require('./publish-trace')
const { sseError } = require('./errors')

const SPAN = Symbol('native-sse publish span')
const BROADCAST = '(broadcast)'

/** A span context as a W3C traceparent header value. */
function traceparent ({ traceId, spanId, traceFlags }) {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** A W3C traceparent as a remote span context; undefined when it is not one. */
function parseTraceparent (value) {
  const match = typeof value === 'string' && /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value)
  if (!match || /^0+$/.test(match[1]) || /^0+$/.test(match[2])) return undefined
  return { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true }
}

function loadApi () {
  try {
    return require('@opentelemetry/api')
  } catch (error) {
    throw sseError(Error, 'ERR_SSE_MISSING_DEPENDENCY',
      'native-sse/otel needs @opentelemetry/api: run `npm install @opentelemetry/api`, or pass { api: require(\'@opentelemetry/api\') }', error)
  }
}

/**
 * Starts making spans for every hub's publishes; returns a function that stops. `api`: the
 * `@opentelemetry/api` module (default: required here); `tracerProvider`: where the tracer
 * comes from (default: the global one).
 */
function instrument ({ api = loadApi(), tracerProvider } = {}) {
  const tracer = (tracerProvider ?? api.trace).getTracer('native-sse')
  const { SpanKind, SpanStatusCode, context, trace } = api
  const handlers = {
    start (ctx) {
      const destination = ctx.channel ?? BROADCAST
      const attributes = {
        'messaging.system': 'native-sse',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': destination
      }
      const id = ctx.message?.id
      if (typeof id === 'string' || typeof id === 'number') attributes['messaging.message.id'] = String(id)
      const span = tracer.startSpan(`publish ${destination}`, { kind: SpanKind.PRODUCER, attributes }, context.active())
      ctx[SPAN] = { span, at: Date.now() }
      ctx.traceContext = traceparent(span.spanContext())
    },
    end (ctx) {
      const started = ctx[SPAN]
      if (started === undefined) return
      if (typeof ctx.result === 'number') started.span.setAttribute('native_sse.recipients', ctx.result)
      started.span.end()
    },
    error (ctx) {
      const started = ctx[SPAN]
      if (started === undefined) return
      started.span.recordException(ctx.error)
      started.span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error?.message })
    },
    asyncStart () {},
    asyncEnd (ctx) {
      if (ctx.delivery === undefined) return
      // This process's publish, or one that came through Redis with its context.
      const publish = ctx[SPAN]?.span.spanContext() ?? parseTraceparent(ctx.traceContext)
      if (publish === undefined) return
      const startedAt = ctx[SPAN]?.at ?? Date.now() - ctx.delivery.elapsedMs
      const destination = ctx.channel ?? BROADCAST
      const span = tracer.startSpan(`deliver ${destination}`, {
        kind: SpanKind.CONSUMER,
        startTime: startedAt,
        links: [{ context: publish }],
        attributes: {
          'messaging.system': 'native-sse',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'deliver',
          'messaging.destination.name': destination,
          'messaging.batch.message_count': ctx.delivery.recipients,
          'native_sse.delivery.complete': ctx.delivery.complete
        }
      }, trace.setSpanContext(context.active(), publish))
      span.end(startedAt + ctx.delivery.elapsedMs)
    }
  }
  publishTrace.subscribe(handlers)
  return () => publishTrace.unsubscribe(handlers)
}

module.exports = { instrument }
