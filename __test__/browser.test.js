'use strict'

// The demo page in a real browser: headless Chromium opens it, its EventSource connects through
// the native transport, and the page shows live prices.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { chromium } = require('playwright-core')
const { waitFor } = require('./helpers')

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
