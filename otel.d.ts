/**
 * `native-sse/otel`: OpenTelemetry spans for every hub's publishes, from the
 * `native-sse:publish` TracingChannel (`PublishTraceContext` in `native-sse`). Nothing is
 * loaded or subscribed until `instrument()` is called; `@opentelemetry/api` is an optional
 * peer dependency.
 *
 * - `publish <channel>` (PRODUCER, `(broadcast)` for `broadcast()`): a child of the context
 *   active where the app published, with `messaging.destination.name`,
 *   `messaging.message.id` and `native_sse.recipients`; status ERROR with the exception when
 *   the call threw.
 * - `deliver <channel>` (CONSUMER): one per publish per process, from the publish until this
 *   process wrote the event to every recipient (or they left); a child of the publish span,
 *   linked to it, with `messaging.batch.message_count` (the recipients) and
 *   `native_sse.delivery.complete`. With `redis`, the publish span's context travels with
 *   the event, and every process's delivery span is made under it: one trace.
 *
 * ```js
 * const { instrument } = require('native-sse/otel')
 * const stop = instrument() // the global tracer provider
 * ```
 */
export interface InstrumentOptions {
  /** The `@opentelemetry/api` module. Default: `require('@opentelemetry/api')`. */
  api?: typeof import('@opentelemetry/api')
  /** Where the tracer comes from. Default: the global tracer provider. */
  tracerProvider?: import('@opentelemetry/api').TracerProvider
}

/** Starts making spans; returns a function that stops (unsubscribes). */
export declare function instrument(options?: InstrumentOptions): () => void
