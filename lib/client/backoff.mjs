// When to reconnect. A stream that was open and ended is retried after the server's `retry:`,
// as EventSource does (a hub's staged close already spreads those values). Failed attempts in a
// row back off exponentially with full jitter: a uniform draw below a ceiling that doubles per
// failure, so a crowd of clients refused together does not come back together.

/**
 * @param {number} failures attempts failed in a row; 0 when the last stream was open
 * @param {number} retryMs the server's `retry:`, else the client's `retryMs`
 * @param {number} maxRetryMs the ceiling's cap (a larger server `retry:` still wins)
 */
export function reconnectDelay (failures, retryMs, maxRetryMs, random = Math.random) {
  if (failures === 0) return retryMs
  const ceiling = Math.max(retryMs, Math.min(maxRetryMs, retryMs * 2 ** failures))
  return Math.round(random() * ceiling)
}

/** A `Retry-After` header (seconds, or an HTTP date) in milliseconds; 0 when absent or bad. */
export function retryAfterMs (header, now = Date.now()) {
  if (!header) return 0
  if (/^\d+$/.test(header.trim())) return Number(header) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? 0 : Math.max(0, at - now)
}
