'use strict'

// The quick-start demo: an Express 5 app whose page shows a live price ticker and clock,
// streamed by native-sse. `npm start`, then open the printed URL.

const express = require('express')
const { createHub } = require('..')

const hub = createHub({ heartbeatMs: 15_000, retryMs: 2_000 })
const app = express()

app.get('/', (req, res) => {
  res.type('html').send(PAGE)
})

app.get('/events', (req, res) => {
  const client = hub.attach(req, res)
  client.send({ event: 'hello', data: { clients: hub.size, resumedFrom: client.lastEventId || null } })
  client.on('close', (reason) => console.log(`client ${client.id} left (${reason}); ${hub.size} connected`))
})

let price = 67_420
let sequence = 0
const ticker = setInterval(() => {
  price = Math.max(1, price + Math.round((Math.random() - 0.5) * 200))
  sequence++
  hub.broadcast({ event: 'price', id: String(sequence), data: { symbol: 'BTC', price, at: new Date().toISOString() } })
}, 1000)

const host = process.env.HOST || '127.0.0.1'
const port = process.env.PORT === undefined ? 3000 : Number(process.env.PORT)
const server = app.listen(port, host, () => {
  const address = server.address()
  console.log(`native-sse demo on http://${address.address}:${address.port}/`)
})

async function shutdown () {
  clearInterval(ticker)
  await hub.close()
  server.close(() => process.exit(0))
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>native-sse demo</title>
<style>
  body { font: 16px system-ui, sans-serif; margin: 3rem auto; max-width: 36rem; color: #222; }
  #price { font-size: 3rem; font-variant-numeric: tabular-nums; }
  #status { color: #777; }
  li { font-family: ui-monospace, monospace; font-size: .85rem; }
</style>
</head>
<body>
<h1>native-sse demo</h1>
<p id="status">connecting…</p>
<div>BTC <span id="price">–</span></div>
<ol id="log" reversed></ol>
<script>
  const source = new EventSource('/events')
  const status = document.getElementById('status')
  source.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data)
    status.textContent = 'connected (' + hello.clients + ' client' + (hello.clients === 1 ? '' : 's') + ')'
  })
  source.addEventListener('price', (e) => {
    const tick = JSON.parse(e.data)
    document.getElementById('price').textContent = tick.price.toLocaleString('en-US')
    const item = document.createElement('li')
    item.textContent = '#' + e.lastEventId + ' ' + tick.at + ' ' + tick.price
    const log = document.getElementById('log')
    log.prepend(item)
    while (log.children.length > 10) log.lastChild.remove()
  })
  source.onerror = () => { status.textContent = 'reconnecting…' }
</script>
</body>
</html>
`
