import type { ExpositionOptions, Hub } from './index'

/** Options of `collectHubMetrics()`: `metricsText()`'s, plus where to register. */
export interface CollectHubMetricsOptions extends ExpositionOptions {
  /** The prom-client registry. Default: prom-client's global `register`. */
  registry?: import('prom-client').Registry
  /** The prom-client module. Default: `require('prom-client')`. */
  client?: typeof import('prom-client')
}

/**
 * Registers the hub's metrics in a prom-client registry as collectors: `register.metrics()`
 * includes the series of `hub.metricsText()`, read from the hub at each scrape. A registry
 * holds one metric per name: a second hub in it needs its own `prefix`. A name already taken
 * throws a `RangeError` (`ERR_SSE_INVALID_OPTION`) and registers nothing.
 */
export declare function collectHubMetrics(hub: Hub<any>, options?: CollectHubMetricsOptions): {
  /** The prom-client metrics made. */
  metrics: Array<import('prom-client').Metric>
  /** Removes them from the registry. */
  unregister(): void
}
