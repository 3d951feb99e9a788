'use strict'

// The hub's metrics: the plain object of hub.metrics(), and one catalog of Prometheus series
// that both hub.metricsText() and the prom-client collector (native-sse/prometheus) render,
// so the two can never disagree on a name, a label or a value.
//
// Naming follows Prometheus' conventions: counters end in `_total`, sizes are in bytes, and
// no series is labelled per channel unless `perChannel` is asked for (channel names are
// unbounded; a label per name can swamp a Prometheus server).

const { sseError } = require('./errors')
const { describe, plainObject, rejectUnknownKeys } = require('./checks')

const counter = 'counter'
const gauge = 'gauge'

/** A series of one sample without labels. */
function one (name, type, help, value) {
  return { name, type, help, labels: [], samples: (m) => [[{}, value(m)]] }
}

/**
 * Every series: its name without the prefix, type, help, label names, and its samples as
 * [labels, value] from a metrics() object.
 */
const CATALOG = [
  {
    name: 'connections',
    type: gauge,
    help: 'Clients connected now, by transport (native: Rust writes the socket; node: Node writes the response; fetch: the body of a hub.response(); pending: attached, transport not started yet).',
    labels: ['transport'],
    samples: (m) => Object.entries(m.connections).map(([transport, value]) => [{ transport }, value])
  },
  one('connections_opened_total', counter, 'Clients attached since the hub started.',
    (m) => m.connectionsOpened),
  {
    name: 'connections_closed_total',
    type: counter,
    help: 'Clients that left, by reason: client, error, timeout, slow or server (their meanings: CloseReason in native-sse\'s index.d.ts).',
    labels: ['reason'],
    samples: (m) => Object.entries(m.closes).map(([reason, value]) => [{ reason }, value])
  },
  {
    name: 'attaches_refused_total',
    type: counter,
    help: 'Attaches turned away, by reason (hub_full: maxClients; channel_full: a channel\'s maxClients; closing: the hub is closing; forbidden: an authorization rule denied a channel, 403; authorization_failed: a check threw or timed out).',
    labels: ['reason'],
    samples: (m) => [[{ reason: 'hub_full' }, m.refused.hubFull], [{ reason: 'channel_full' }, m.refused.channelFull],
      [{ reason: 'closing' }, m.refused.closing], [{ reason: 'forbidden' }, m.refused.forbidden],
      [{ reason: 'authorization_failed' }, m.refused.authorizationFailed]]
  },
  one('subscriptions_refused_total', counter, 'client.subscribe() calls refused by a channel\'s maxClients.',
    (m) => m.subscriptionsRefused),
  {
    name: 'events_published_total',
    type: counter,
    help: 'Events accepted, by audience (broadcast: every client; channel: a channel\'s subscribers; client: one client).',
    labels: ['audience'],
    samples: (m) => Object.entries(m.published).map(([audience, value]) => [{ audience }, value])
  },
  one('event_deliveries_total', counter, 'Events written to clients, one per client per event (comments and heartbeats excluded).',
    (m) => m.deliveries),
  one('written_bytes_total', counter, 'Body bytes written to clients (native transport: HTTP chunk framing included).',
    (m) => m.bytesWritten),
  one('compression_plain_bytes_total', counter, 'Bytes of events and comments as written before compression, on gzip streams (createHub({ compression })).',
    (m) => m.compression.plainBytes),
  one('compression_wire_bytes_total', counter, 'What those became on gzip streams: deflate output, stored blocks, the gzip header and trailer.',
    (m) => m.compression.wireBytes),
  one('heartbeats_total', counter, 'Heartbeat comments written.',
    (m) => m.heartbeats),
  one('events_dropped_total', counter, 'Events skipped for clients that lagged out under overflow: \'drop-oldest\'.',
    (m) => m.dropped),
  one('lag_events', gauge, 'Events the slowest reader of any channel is behind now.',
    (m) => m.lag.events),
  one('lag_bytes', gauge, 'Bytes the slowest reader of any channel is behind now.',
    (m) => m.lag.bytes),
  one('lag_max_events', gauge, 'The most events any channel\'s slowest reader was behind since the hub started.',
    (m) => m.lag.maxEvents),
  one('lag_max_bytes', gauge, 'The most bytes any channel\'s slowest reader was behind since the hub started.',
    (m) => m.lag.maxBytes),
  {
    name: 'resumes_total',
    type: counter,
    help: 'Attaches with a Last-Event-ID, by outcome (replayed; reset, with the reason: unknown, foreign, expired or ambiguous id), and clients reset mid-stream after events were lost on their way from Redis (reset, gap).',
    labels: ['outcome', 'reason'],
    samples: (m) => [[{ outcome: 'replayed' }, m.resumes.replayed],
      ...Object.entries(m.resumes.reset).map(([reason, value]) => [{ outcome: 'reset', reason }, value])]
  },
  one('held_events', gauge, 'Events the channel logs hold now (history, and what readers have not passed yet).',
    (m) => m.held.events),
  one('held_bytes', gauge, 'Bytes the channel logs hold now, each frame once however many clients read it.',
    (m) => m.held.bytes),
  one('channels', gauge, 'Channels that exist now (with subscribers, or keeping history).',
    (m) => m.channels),
  one('runtime_threads', gauge, 'Worker threads of the hub\'s runtime.',
    (m) => m.runtimeThreads)
]

/** Series of a hub with Redis (createHub({ redis })). */
const REDIS = [
  one('redis_up', gauge, '1 while both Redis connections (publishing and subscribed) are up, 0 otherwise.',
    (m) => (m.redis.connected ? 1 : 0)),
  one('redis_buffered_events', gauge, 'Events published here and waiting for Redis (bounded by redis.maxBufferEvents).',
    (m) => m.redis.buffered.events),
  one('redis_buffered_bytes', gauge, 'Bytes of the events waiting for Redis (bounded by redis.maxBufferBytes).',
    (m) => m.redis.buffered.bytes),
  one('redis_sent_total', counter, 'Events published here that Redis applied.', (m) => m.redis.sent),
  one('redis_received_total', counter, 'Events applied here from Redis pub/sub.', (m) => m.redis.received),
  one('redis_recovered_total', counter, 'Events applied here from the Redis streams after a gap or a reconnect.',
    (m) => m.redis.recovered),
  one('redis_gaps_total', counter, 'Times a position skipped on pub/sub and the streams were read to fill it.',
    (m) => m.redis.gaps),
  one('redis_gap_resets_total', counter, 'Channels whose clients got the reset signal because Redis no longer held what they missed.',
    (m) => m.redis.gapResets),
  one('redis_disconnects_total', counter, 'Redis connections lost (each followed by reconnecting with backoff).',
    (m) => m.redis.disconnects),
  one('redis_signals_sent_total', counter, 'Signals (revokes, presence) this process published to the other processes.',
    (m) => m.redis.signals.sent),
  one('redis_signals_received_total', counter, 'Signals received from the processes of the namespace, this one\'s included.',
    (m) => m.redis.signals.received),
  one('redis_signals_dropped_total', counter, 'Signals dropped, oldest first, while Redis was away and their buffer was full.',
    (m) => m.redis.signals.dropped),
  one('redis_signals_ignored_total', counter, 'Messages on the signals channel that were not UTF-8 or too large.',
    (m) => m.redis.signals.ignored)
]

/** Series present with `perChannel` only, labelled by channel name. */
const PER_CHANNEL = [
  ['channel_subscribers', 'Subscribers of each channel.', (c) => c.subscribers],
  ['channel_lag_events', 'Events the slowest subscriber of each channel is behind.', (c) => c.lag.events],
  ['channel_lag_bytes', 'Bytes the slowest subscriber of each channel is behind.', (c) => c.lag.bytes],
  ['channel_held_events', 'Events each channel\'s log holds.', (c) => c.held.events],
  ['channel_held_bytes', 'Bytes each channel\'s log holds.', (c) => c.held.bytes]
].map(([name, help, value]) => ({
  name,
  type: gauge,
  help,
  labels: ['channel'],
  samples: (m) => (m.perChannel ?? []).map((c) => [{ channel: c.name }, value(c)])
}))

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const EXPOSITION_KEYS = ['prefix', 'labels', 'perChannel']
/**
 * The prefix and the constant labels are repeated on every line (a few hundred, more with
 * perChannel): bounded, so the exposition stays a string a scrape can take, never one past
 * V8's largest (a 9 MB label value made it throw 'Invalid string length').
 */
const MAX_PREFIX_CHARS = 256
const MAX_LABELS_CHARS = 4096
/** Each label adds `="",` to every line besides its name and value. */
const MAX_LABELS = 64
/**
 * How many channels `perChannel` lists: `true` lists the 1,000 most subscribed, a number up to
 * 10,000. Each listed channel is five lines repeating its name, the prefix and the labels (up
 * to 25 KB at their bounds): 30,000 channels made the exposition a string past V8's largest.
 */
const PER_CHANNEL_DEFAULT = 1000
const PER_CHANNEL_MOST = 10_000
/** Labels the series carry themselves, which constant labels must not shadow. */
const OWN_LABELS = new Set([...CATALOG, ...PER_CHANNEL].flatMap((series) => series.labels))

/**
 * Options of metricsText() (`keys`: the ones a caller may pass), checked, with defaults: also
 * those of hub.metrics() (`perChannel` only) and of the prom-client collector (and its own).
 */
function expositionOptions (given, what, keys = EXPOSITION_KEYS) {
  const options = plainObject(given, `${what} options`)
  rejectUnknownKeys(options, new Set(keys), `${what} option`)
  const prefix = options.prefix ?? 'sse_'
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
      `prefix must be a string of letters, digits, '_' and ':' not starting with a digit, got ${describe(prefix)}`)
  }
  if (prefix.length > MAX_PREFIX_CHARS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `prefix must be at most ${MAX_PREFIX_CHARS} characters, got ${prefix.length}`)
  }
  const labels = options.labels ?? {}
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `labels must be an object of label names to strings, got ${describe(labels)}`)
  }
  const entries = Object.entries(labels)
  if (entries.length > MAX_LABELS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION', `labels must be at most ${MAX_LABELS} (every sample repeats them), got ${entries.length}`)
  }
  let labelsChars = 0
  for (const [name, value] of entries) {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || OWN_LABELS.has(name)) {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
        `label name ${describe(name)} is not allowed: use letters, digits and '_', not starting with '__', and none of the hub's own labels`)
    }
    if (typeof value !== 'string') {
      throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `label ${name} must be a string, got ${describe(value)}`)
    }
    // As written: an escaped character takes two.
    labelsChars += name.length + escapeLabelValue(value).length
  }
  if (labelsChars > MAX_LABELS_CHARS) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION',
      `labels must be at most ${MAX_LABELS_CHARS} characters in all, names and values as written (a backslash, quote or newline in a value counts twice; every sample repeats them), got ${labelsChars}`)
  }
  return { prefix, labels, perChannel: perChannelLimit(options.perChannel) }
}

/** `perChannel` as the number of channels to list at most, or undefined for none. */
function perChannelLimit (perChannel) {
  if (perChannel === undefined || perChannel === null || perChannel === false) return undefined
  if (perChannel === true) return PER_CHANNEL_DEFAULT
  if (typeof perChannel !== 'number' || !Number.isInteger(perChannel)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION',
      `perChannel must be a boolean or a whole number of channels to list (the most subscribed), got ${describe(perChannel)}`)
  }
  if (perChannel < 1 || perChannel > PER_CHANNEL_MOST) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION',
      `perChannel must list 1 to ${PER_CHANNEL_MOST.toLocaleString('en')} channels (true: ${PER_CHANNEL_DEFAULT.toLocaleString('en')}), got ${perChannel} (the channels figure counts every channel)`)
  }
  return perChannel
}

/** Every series the options ask for; the Redis ones when the hub has Redis. */
function seriesFor (perChannel, redis = false) {
  return [...CATALOG, ...(redis ? REDIS : []), ...(perChannel !== undefined ? PER_CHANNEL : [])]
}

function escapeLabelValue (value) {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function escapeHelp (text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** hub.metricsText(options): the text exposition format, version 0.0.4. */
function metricsText (hub, options) {
  const { prefix, labels, perChannel } = expositionOptions(options, 'metricsText')
  const metrics = hub.metrics({ perChannel })
  const constant = Object.entries(labels)
  const lines = []
  for (const series of seriesFor(perChannel, metrics.redis !== null)) {
    const name = prefix + series.name
    lines.push(`# HELP ${name} ${escapeHelp(series.help)}`, `# TYPE ${name} ${series.type}`)
    for (const [own, value] of series.samples(metrics)) {
      const pairs = [...constant, ...Object.entries(own)]
      const text = pairs.map(([key, v]) => `${key}="${escapeLabelValue(String(v))}"`).join(',')
      lines.push(`${name}${text === '' ? '' : `{${text}}`} ${value}`)
    }
  }
  return lines.join('\n') + '\n'
}

module.exports = { metricsText, expositionOptions, seriesFor, EXPOSITION_KEYS }
