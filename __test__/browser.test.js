'use strict'

// In a real browser: headless Chromium opens the demo page, its EventSource connects through
// the native transport, and the page shows live prices; and a browser's EventSource whose
// connection is cut (RST and FIN) resumes with Last-Event-ID, missing nothing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { chromium } = require('playwright-core')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, waitFor, cuttingProxy } = require('./helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

test('headless Chromium shows live prices on the demo page', async () => {
  assert.ok(fs.existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  const demo = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'express-demo.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  demo.stdout.on('data', (d) => { output += d })
  let browser
  try {
    const url = await waitFor(() => output.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0], { what: 'the demo URL', timeoutMs: 10_000 })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    const page = await browser.newPage()
    await page.goto(url)
    await page.waitForFunction(() => document.querySelectorAll('#log li').length >= 2, null, { timeout: 10_000 })
    const status = await page.textContent('#status')
    const price = await page.textContent('#price')
    const items = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent))
    assert.equal(status, 'connected (1 client)')
    assert.match(price, /^\d{1,3}(,\d{3})*$/)
    // Newest first, ids consecutive: nothing lost between two ticks.
    const ids = items.map((text) => Number(text.match(/^#(\d+) /)[1]))
    assert.equal(ids[0], ids[1] + 1)
    await page.screenshot({ path: path.join(os.tmpdir(), 'native-sse-demo.png') })
  } finally {
    if (browser) await browser.close()
    demo.kill('SIGTERM')
    await new Promise((resolve) => demo.once('exit', resolve))
  }
})

const RESUME_EVENTS = 3000
const RESUME_PAGE = `<!doctype html><meta charset="utf-8"><title>resume</title><script>
  window.received = []
  const source = new EventSource('/events' + location.search)
  source.onmessage = (e) => window.received.push(Number(e.data))
</script>`

test("Chromium's EventSource resumes after cuts with every event once, in order", async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`)
  const hub = createHub({ heartbeatMs: 60_000, retryMs: 20, history: { maxEvents: RESUME_EVENTS } })
  const http = await startHttp((req, res) => {
    if (!req.url.startsWith('/events')) return res.writeHead(200, { 'content-type': 'text/html' }).end(RESUME_PAGE)
    hub.attach(req, res, { transport: new URL(req.url, 'http://x').searchParams.get('transport') })
  })
  const proxy = await cuttingProxy(http.port)
  let browser
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] })
    for (const transport of TRANSPORTS) {
      const page = await browser.newPage()
      await page.goto(`${proxy.url}/?transport=${transport}`)
      await waitFor(() => hub.size === 1, { what: `${transport}: the page's stream` })
      const received = () => page.evaluate(() => window.received.length)
      let cuts = 0
      for (let seq = 0; seq < RESUME_EVENTS; seq++) {
        hub.broadcast({ data: String(seq) })
        if (seq % 500 === 499 && cuts < 4) {
          // Cut once the page has caught up; publishing goes on during the reconnect, so what
          // is published meanwhile must come back as the replay.
          const opened = proxy.opened()
          await waitFor(async () => (await received()) === seq + 1, { what: 'the page to catch up', timeoutMs: 10_000 })
          proxy.cut(cuts++ % 2 === 0 ? 'rst' : 'fin')
          for (let i = 0; i < 50; i++) hub.broadcast({ data: String(++seq) })
          await waitFor(() => proxy.opened() > opened, { what: 'the browser to reconnect', timeoutMs: 10_000 })
        }
        if (seq % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      await waitFor(async () => (await received()) >= RESUME_EVENTS, { what: `${transport}: ${RESUME_EVENTS} events in the page`, timeoutMs: 20_000 })
      const values = await page.evaluate(() => window.received)
      assert.equal(values.length, RESUME_EVENTS, `${transport}: no event twice`)
      assert.ok(values.every((value, i) => value === i), `${transport}: every event once, in order`)
      await page.close()
      await waitFor(() => hub.size === 0, { what: 'the page to leave' })
    }
  } finally {
    if (browser) await browser.close()
    await proxy.close()
    await hub.close()
    await http.close()
  }
})
