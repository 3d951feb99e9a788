'use strict'

// The demo behind `npm start` (Express, examples/express-demo.js) and the same under Fastify
// (examples/fastify-demo.js): a price board fed by the hub, the hub's own figures streamed to
// the page, and the routes the page's buttons call. Framework-neutral: each app only routes
// requests here.

const fs = require('node:fs')
const path = require('node:path')
const { createHub } = require('../..')

const PAGE = fs.readFileSync(path.join(__dirname, 'page.html'), 'utf8')
const TICK_MS = 250
const FIGURES_MS = 1000

// History lets a page that lost its stream resume with Last-Event-ID, missing nothing.
const HUB_OPTIONS = { heartbeatMs: 15_000, retryMs: 1000, history: { maxEvents: 2000 } }

/** `hub`: one made with HUB_OPTIONS (the Fastify plugin makes its own); default: a new one. */
function createDemo (hub = createHub(HUB_OPTIONS)) {
  const clients = new Map()
  let price = 67_420
  let seq = 0

  const ticker = setInterval(() => {
    price = Math.max(1, price + Math.round((Math.random() - 0.5) * 200))
    seq++
    hub.broadcast({ event: 'price', id: String(seq), data: { seq, symbol: 'BTC', price, at: new Date().toISOString() } })
  }, TICK_MS)

  let last = { at: Date.now(), deliveries: hub.metrics().deliveries }
  const figures = setInterval(() => {
    const m = hub.metrics()
    const now = Date.now()
    const eventsPerSecond = Math.round((m.deliveries - last.deliveries) * 1000 / (now - last.at))
    last = { at: now, deliveries: m.deliveries }
    // Figures get ids from the hub (they carry none of their own); a page may resume from either.
    hub.broadcast({
      event: 'figures',
      data: {
        clients: m.connections.native + m.connections.node + m.connections.fetch + m.connections.pending,
        eventsPerSecond,
        bytes: m.bytesWritten,
        drops: m.dropped + m.closes.slow,
        resumes: m.resumes.replayed
      }
    })
  }, FIGURES_MS)

  return {
    hub,
    page: PAGE,
    /** GET /events: the page's stream, and the extra streams it opens from other hostnames. */
    events (req, res) {
      allowCrossOrigin(res)
      this.welcome(hub.attach(req, res))
    },
    /** Registers an attached client and greets it with its id and how it resumed. */
    welcome (client) {
      if (client.refusal !== null) return
      clients.set(client.id, client)
      client.on('close', () => clients.delete(client.id))
      client.send({ event: 'hello', data: { clientId: client.id, resume: client.resume, lastEventId: client.lastEventId || null } })
    },
    /** POST /drop/:id: ends that stream on the server, as a network cut would. */
    drop (id) {
      const client = clients.get(Number(id))
      if (!client) return false
      client.close()
      return true
    },
    /** Stops publishing (the prices and the figures). */
    stop () {
      clearInterval(ticker)
      clearInterval(figures)
    },
    async close () {
      this.stop()
      await hub.close()
    }
  }
}

/**
 * The extra streams come from `cN.localhost` (a browser opens at most six streams to one host
 * over HTTP/1.1), so they are cross-origin; headers set before attach go out with the head.
 */
function allowCrossOrigin (res) {
  res.setHeader('access-control-allow-origin', '*')
}

module.exports = { createDemo, allowCrossOrigin, HUB_OPTIONS }
