'use strict'

// A finished OpenTelemetry span as the OpenTelemetry tests read it, the same from this process's
// exporter and from the other process's (sent over IPC as plain data).

/** Name, kind, ids, the parent's span id, the linked span ids and the attributes. */
function spanSummary (span) {
  return {
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? span.parentSpanId,
    links: span.links.map((link) => link.context.spanId),
    attributes: span.attributes
  }
}

module.exports = { spanSummary }
