'use strict'

// native-sse/prometheus: a hub's metrics in a prom-client registry, so `register.metrics()`
// includes them beside the application's own. Each series is a prom-client Counter or Gauge
// whose collect() reads the hub when the registry is scraped: nothing runs between scrapes.
// The series, names and values are those of hub.metricsText() (one catalog, lib/metrics.js).

const { Hub } = require('./hub')
const { sseError } = require('./errors')
const { describe } = require('./checks')
const { expositionOptions, seriesFor, EXPOSITION_KEYS } = require('./metrics')

/**
 * Registers `hub`'s metrics in a prom-client registry.
 * @param hub a hub from createHub()
 * @param options `registry` (default: prom-client's global `register`), `client` (the
 *   prom-client module, default: `require('prom-client')`), and metricsText()'s `prefix`
 *   (default 'sse_'), `labels` and `perChannel`.
 * @returns `{ metrics, unregister() }`: the prom-client metrics made, and a function that
 *   removes them from the registry.
 */
function collectHubMetrics (hub, options) {
  if (!(hub instanceof Hub)) {
    throw sseError(TypeError, 'ERR_SSE_INVALID_ARGUMENT', `collectHubMetrics(hub, options): hub must come from createHub(), got ${describe(hub)}`)
  }
  const { prefix, labels, perChannel } = expositionOptions(options, 'collectHubMetrics', [...EXPOSITION_KEYS, 'registry', 'client'])
  const client = options?.client ?? loadPromClient()
  if (client === null || typeof client !== 'object' || typeof client.Counter !== 'function' || typeof client.Gauge !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `client must be the prom-client module (require('prom-client')), got ${describe(client)}`)
  }
  const registry = options?.registry ?? client.register
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') {
    throw sseError(TypeError, 'ERR_SSE_INVALID_OPTION', `registry must be a prom-client Registry, got ${describe(registry)}`)
  }
  const catalog = seriesFor(perChannel, hub.metrics().redis !== null)
  // Checked before any is made: prom-client refuses a taken name with a plain Error, after
  // the series before it were registered.
  const taken = catalog.map((series) => prefix + series.name).find((name) => registry.getSingleMetric(name) !== undefined)
  if (taken !== undefined) {
    throw sseError(RangeError, 'ERR_SSE_INVALID_OPTION',
      `collectHubMetrics: the registry has a metric named ${taken} already (another hub's, or this hub's collected before): give each hub its own prefix (for example { prefix: 'chat_sse_' }) or its own registry, or call the first collection's unregister()`)
  }

  // One read of the hub per scrape: the registry calls every collect() in the same turn, so
  // the snapshot taken by the first is shared by the rest and dropped right after.
  let snapshot = null
  const read = () => {
    if (snapshot === null) {
      snapshot = hub.metrics({ perChannel })
      queueMicrotask(() => { snapshot = null })
    }
    return snapshot
  }

  const made = catalog.map((series) => {
    const Kind = series.type === 'counter' ? client.Counter : client.Gauge
    return new Kind({
      name: prefix + series.name,
      help: series.help,
      labelNames: [...Object.keys(labels), ...series.labels],
      registers: [registry],
      collect () {
        this.reset()
        for (const [own, value] of series.samples(read())) {
          const all = { ...labels, ...own }
          if (series.type === 'counter') this.inc(all, value)
          else this.set(all, value)
        }
      }
    })
  })
  return {
    metrics: made,
    unregister () {
      for (const metric of made) registry.removeSingleMetric(metric.name)
    }
  }
}

function loadPromClient () {
  try {
    return require('prom-client')
  } catch (error) {
    throw sseError(Error, 'ERR_SSE_MISSING_DEPENDENCY',
      'native-sse/prometheus needs prom-client: run `npm install prom-client`, or pass { client: require(\'prom-client\') }', error)
  }
}

module.exports = { collectHubMetrics }
