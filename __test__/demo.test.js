'use strict'
// needs: nothing

// `npm start` runs the Express demo; examples/fastify-demo.js is the same under Fastify. Each
// must serve its page and stream prices to a real client, and its drop route must cut that
// client's stream so that it resumes with Last-Event-ID, missing no price.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { EventSource } = require('eventsource')
const { waitFor } = require('./helpers')

for (const file of ['express-demo.js', 'fastify-demo.js']) {
  test(`${file} serves its page, streams prices, and a dropped stream resumes without a gap`, async () => {
    const demo = spawn(process.execPath, [path.join(__dirname, '..', 'examples', file)], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let output = ''
    demo.stdout.on('data', (d) => { output += d })
    try {
      const url = await waitFor(() => output.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0], { what: 'the demo URL', timeoutMs: 10_000 })
      const page = await fetch(url)
      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type'), /text\/html/)
      assert.match(await page.text(), /new EventSource\('\/events'\)/)

      const source = new EventSource(`${url}events`)
      const hellos = []
      const prices = []
      source.addEventListener('hello', (e) => hellos.push(JSON.parse(e.data)))
      source.addEventListener('price', (e) => prices.push({ id: e.lastEventId, ...JSON.parse(e.data) }))
      try {
        await waitFor(() => prices.length >= 3 && hellos.length === 1, { what: 'three price events', timeoutMs: 5000 })
        assert.equal(hellos[0].resume, 'none')
        assert.equal(prices[0].symbol, 'BTC')
        assert.ok(Number.isInteger(prices[0].price))

        assert.equal((await fetch(`${url}drop/999999`, { method: 'POST' })).status, 404)
        assert.equal((await fetch(`${url}drop/${hellos[0].clientId}`, { method: 'POST' })).status, 204)
        await waitFor(() => hellos.length === 2, { what: 'the stream to come back', timeoutMs: 10_000 })
        const resumedAt = prices.length
        await waitFor(() => prices.length >= resumedAt + 4, { what: 'prices after the resume', timeoutMs: 5000 })
      } finally {
        source.close()
      }
      assert.equal(hellos[1].resume, 'replayed')
      assert.notEqual(hellos[1].clientId, hellos[0].clientId)
      for (let i = 1; i < prices.length; i++) {
        assert.equal(prices[i].seq, prices[i - 1].seq + 1, 'every price once, in order, across the drop')
        assert.equal(prices[i].id, String(prices[i].seq))
      }
    } finally {
      demo.kill('SIGTERM')
      await new Promise((resolve) => demo.once('exit', resolve))
    }
  })
}
