'use strict'
// needs: chromium

// In a real browser: headless Chromium opens the demo page, its EventSource connects through
// the native transport, and the page shows live prices; and a browser's EventSource whose
// connection is cut (RST and FIN) resumes with Last-Event-ID, missing nothing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { chromium } = require('playwright-core')
const { createHub } = require('..')
const { TRANSPORTS, startHttp, waitFor, cuttingProxy } = require('./helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

const BROWSER_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Where the demo test leaves its screenshots (ignored by git). */
const SCREENSHOTS = path.join(__dirname, 'output')

for (const [name, file] of [['Express', 'express-demo.js'], ['Fastify', 'fastify-demo.js']]) {
  test(`headless Chromium drives the ${name} demo: prices, chart, live figures, 100 more streams, drop and resume`, async (t) => {
    assert.ok(fs.existsSync(CHROMIUM),
      `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
    const demo = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file)], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let output = ''
    demo.stdout.on('data', (d) => { output += d })
    let browser
    try {
      const url = await waitFor(() => output.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0], { what: 'the demo URL', timeoutMs: 10_000 })
      browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS })
      const page = await browser.newPage({ viewport: { width: 1100, height: 720 } })
      await page.goto(url)
      const text = async (id) => (await page.textContent(`#${id}`)).trim()
      const number = async (id) => Number((await text(id)).replace(/,/g, ''))

      // Prices arrive and the chart draws them.
      await page.waitForFunction(() => window.demo.seqs.length >= 4 && Number(document.getElementById('chart').dataset.points) >= 4, null, { timeout: 20_000 })
      assert.match(await text('price'), /^\d{1,3}(,\d{3})*$/)
      const blank = await page.evaluate(() => {
        const canvas = document.getElementById('chart')
        const empty = document.createElement('canvas')
        empty.width = canvas.width
        empty.height = canvas.height
        return canvas.toDataURL() === empty.toDataURL()
      })
      assert.equal(blank, false, 'the chart has a line on it')
      assert.match(await text('status'), /^connected as client #\d+$/)

      // The hub's figures arrive and follow the audience: one page, then 100 more streams.
      await page.waitForFunction(() => document.getElementById('fig-clients').textContent === '1', null, { timeout: 15_000 })
      assert.ok(await number('fig-rate') >= 0)
      const bytesBefore = await number('fig-bytes')
      await page.click('#crowd')
      await page.waitForFunction(() => document.getElementById('crowd-open').textContent === '100', null, { timeout: 20_000 })
      await page.waitForFunction(() => Number(document.getElementById('fig-clients').textContent) >= 101, null, { timeout: 15_000 })
      await page.waitForFunction(() => Number(document.getElementById('fig-rate').textContent.replace(/,/g, '')) >= 100, null, { timeout: 15_000 })
      assert.ok(await number('fig-bytes') > bytesBefore)
      await page.click('#crowd')
      await page.waitForFunction(() => document.getElementById('fig-clients').textContent === '1', null, { timeout: 20_000 })

      // Dropped on the server, the page's stream resumes with Last-Event-ID: no id missing.
      const before = await page.evaluate(() => ({ clientId: window.demo.clientId, seqs: window.demo.seqs.length }))
      await page.click('#drop')
      await page.waitForFunction((old) => window.demo.resumes === 1 && window.demo.clientId !== old, before.clientId, { timeout: 20_000 })
      await page.waitForFunction((n) => window.demo.seqs.length >= n + 12, before.seqs, { timeout: 20_000 })
      await page.waitForFunction(() => Number(document.getElementById('fig-resumes').textContent) >= 1, null, { timeout: 15_000 })
      const after = await page.evaluate(() => window.demo)
      assert.match(await text('status'), /resumed after id \S+ \(replayed\)$/)
      assert.equal(after.missing, 0, 'no price missing across the drop')
      assert.equal(after.repeated, 0, 'no price twice')
      assert.ok(after.seqs.every((seq, i) => i === 0 || seq === after.seqs[i - 1] + 1), 'ids consecutive across the drop')
      assert.equal(await text('continuity'), 'no gap')

      fs.mkdirSync(SCREENSHOTS, { recursive: true })
      const shot = path.join(SCREENSHOTS, `demo-${name.toLowerCase()}.png`)
      await page.screenshot({ path: shot })
      t.diagnostic(`screenshot: ${shot}`)
    } finally {
      if (browser) await browser.close()
      demo.kill('SIGTERM')
      await new Promise((resolve) => demo.once('exit', resolve))
    }
  })
}

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
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS })
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
