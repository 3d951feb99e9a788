// One hub per process, created on first use and kept on globalThis so that `next dev`'s
// module reloads do not open a second one.
const { createHub } = require('native-sse')

function getHub () {
  if (!globalThis.nativeSseHub) {
    globalThis.nativeSseHub = createHub({ heartbeatMs: 15_000 })
    setInterval(() => globalThis.nativeSseHub.publish('ticks', { event: 'tick', data: Date.now() }), 1000).unref()
  }
  return globalThis.nativeSseHub
}

module.exports = { getHub }
