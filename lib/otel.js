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
// The trace context does not go to browsers: a frame carries what the app put in it, and a
// trace id in every event would tell each client about the server's traces. An app that wants
// it on the client puts it in its data.

const { publishTrace } = require('./publish-trace')
const { sseError } = require('./errors')

const SPAN = Symbol('native-sse publish span')
const BROADCAST = '(broadcast)'

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
      ctx[SPAN] = { span: tracer.startSpan(`publish ${destination}`, { kind: SpanKind.PRODUCER, attributes }, context.active()), at: Date.now() }
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
      const started = ctx[SPAN]
      if (started === undefined || ctx.delivery === undefined) return
      const publish = started.span.spanContext()
      const destination = ctx.channel ?? BROADCAST
      const span = tracer.startSpan(`deliver ${destination}`, {
        kind: SpanKind.CONSUMER,
        startTime: started.at,
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
      span.end(started.at + ctx.delivery.elapsedMs)
    }
  }
  publishTrace.subscribe(handlers)
  return () => publishTrace.unsubscribe(handlers)
}

module.exports = { instrument }
