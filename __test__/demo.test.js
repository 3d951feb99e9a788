'use strict'

// `npm start` runs this demo: it must serve its page and stream price events to a real client.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { EventSource } = require('eventsource')
const { waitFor } = require('./helpers')

test('the Express demo serves its page and streams prices', async () => {
  const demo = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'express-demo.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  demo.stdout.on('data', (d) => { output += d })
  try {
    const url = await waitFor(() => output.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0], { what: 'the demo URL', timeoutMs: 10_000 })
    const page = await fetch(url)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /new EventSource\('\/events'\)/)

    const source = new EventSource(`${url}events`)
    const prices = []
    let hello = null
    source.addEventListener('hello', (e) => { hello = JSON.parse(e.data) })
    source.addEventListener('price', (e) => prices.push({ id: e.lastEventId, ...JSON.parse(e.data) }))
    try {
      await waitFor(() => prices.length >= 2, { what: 'two price events', timeoutMs: 5000 })
    } finally {
      source.close()
    }
    assert.equal(hello.clients, 1)
    assert.equal(prices[0].symbol, 'BTC')
    assert.equal(Number(prices[1].id), Number(prices[0].id) + 1)
    assert.ok(Number.isInteger(prices[0].price))
  } finally {
    demo.kill('SIGTERM')
    await new Promise((resolve) => demo.once('exit', resolve))
  }
})
