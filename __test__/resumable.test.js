'use strict'

// Resumable streams (hub.publishStream): an answer published token by token survives a reload
// in headless Chromium (every token once, in order), shows whole in a second tab, and does the
// same across two processes linked through a real redis-server. Node EventSource clients check
// the wire: numbered ids, the end event, the error event, a stream nobody read kept whole.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { chromium } = require('playwright-core')
const { EventSource } = require('eventsource')
const { createHub } = require('..')
const { startHttp, startExample } = require('./helpers')
const { startRedis } = require('./redis')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const BROWSER_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Follows `url` with the eventsource package until the end event; resolves with what it got. */
function followToEnd (url, { lastEventId } = {}) {
  return new Promise((resolve, reject) => {
    const got = { tokens: [], ids: [], end: null, error: null }
    const source = new EventSource(url, lastEventId === undefined ? {} : { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'last-event-id': lastEventId } }) })
    const timer = setTimeout(() => { source.close(); reject(new Error(`no end within 20 s (got ${got.tokens.length} tokens)`)) }, 20_000)
    source.onmessage = (event) => { got.tokens.push(event.data); got.ids.push(event.lastEventId) }
    const finish = (key) => (event) => {
      got[key] = JSON.parse(event.data)
      clearTimeout(timer)
      source.close()
      resolve(got)
    }
    source.addEventListener('end', finish('end'))
    source.addEventListener('stream-error', finish('error'))
  })
}

async function * paced (words, ms, failAt = -1) {
  for (let i = 0; i < words.length; i++) {
    if (i === failAt) throw new Error('the model went away')
    await new Promise((resolve) => setTimeout(resolve, ms))
    yield words[i]
  }
}

test('publishStream: numbered events, the end event, a late client replays from the start, a resume from the middle gets the rest once', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => {
    const id = new URL(req.url, 'http://x').searchParams.get('stream')
    hub.attach(req, res, { channels: [`answer:${id}`], lastEventId: `${id}.0` })
  })
  try {
    const words = Array.from({ length: 40 }, (_, i) => `w${i} `)
    const stream = hub.publishStream('answer:s1', paced(words, 5), { id: 's1' })
    assert.equal(stream.id, 's1')
    assert.equal(stream.startId, 's1.0')
    const live = followToEnd(`${http.url}/?stream=s1`)
    const result = await stream.done
    assert.deepEqual(result, { id: 's1', events: 40, completed: true })
    const first = await live
    assert.deepEqual(first.tokens, words)
    assert.deepEqual(first.ids, words.map((_, i) => `s1.${i + 1}`))
    assert.deepEqual(first.end, { events: 40 })
    // Nobody read it from here on: it is kept whole, for a late reader and for a resume.
    const late = await followToEnd(`${http.url}/?stream=s1`)
    assert.deepEqual(late.tokens, words)
    const resumed = await followToEnd(`${http.url}/?stream=s1`, { lastEventId: 's1.25' })
    assert.deepEqual(resumed.tokens, words.slice(25))
  } finally {
    await hub.close()
    await http.close()
  }
})

test('publishStream: a source that throws ends the stream with the error event; bad arguments throw at once', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: ['answer:bad'], lastEventId: 'bad.0' }))
  try {
    const stream = hub.publishStream('answer:bad', paced(['a', 'b', 'c', 'd'], 5, 2), { id: 'bad' })
    const got = await followToEnd(http.url)
    const result = await stream.done
    assert.equal(result.completed, false)
    assert.equal(result.events, 2)
    assert.equal(result.error.message, 'the model went away')
    assert.deepEqual(got.tokens, ['a', 'b'])
    assert.deepEqual(got.error, { message: 'the model went away' })
    assert.throws(() => hub.publishStream('answer:x', 42), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => hub.publishStream('answer:x', [], { id: 'has space' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.throws(() => hub.publishStream('answer:x', [], { unknown: 1 }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
    const withId = await hub.publishStream('answer:x', [{ data: 'x', id: 'mine' }]).done
    assert.equal(withId.completed, false)
    assert.equal(withId.error.code, 'ERR_SSE_INVALID_MESSAGE')
  } finally {
    await hub.close()
    await http.close()
  }
})

/** Starts examples/resumable-chat.js (40 ms a token); resolves with its URL and a stop function. */
async function startChat (env = {}) {
  const { url, stop } = await startExample('resumable-chat.js', { TOKEN_MS: '40', ...env }, { timeoutMs: 15_000 })
  return { url: url.replace(/\/$/, ''), stop }
}

/**
 * Asks in headless Chromium, reloads mid-answer (onto `resumeOn`'s events when given), waits
 * for the end; then a second tab opens the answer's URL. Returns what each tab shows, and
 * the ids the first tab received, across its reload, as it recorded them.
 */
async function askReloadAndOpenTwice (pageUrl, { resumeOn = null } = {}) {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS })
  try {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(pageUrl)
    await page.click('button')
    await page.waitForFunction(() => document.getElementById('answer').textContent.split(' ').length >= 8, null, { timeout: 15_000 })
    const id = new URL(page.url()).searchParams.get('answer')
    const wordsBefore = (await page.textContent('#answer')).split(' ').length
    if (resumeOn === null) {
      await page.reload()
    } else {
      await page.goto(`${pageUrl}?answer=${id}&events=${encodeURIComponent(resumeOn)}`)
    }
    assert.match(await page.textContent('#status'), /resumed after|done/)
    await page.waitForFunction(() => document.getElementById('status').textContent === 'done', null, { timeout: 20_000 })
    const first = await page.evaluate((key) => JSON.parse(sessionStorage.getItem(key)), `answer:${id}`)
    const shown = await page.textContent('#answer')
    const second = await context.newPage()
    await second.goto(`${pageUrl}?answer=${id}${resumeOn === null ? '' : `&events=${encodeURIComponent(resumeOn)}`}`)
    await second.waitForFunction(() => document.getElementById('status').textContent === 'done', null, { timeout: 20_000 })
    return { id, wordsBefore, first, shown, secondShown: await second.textContent('#answer') }
  } finally {
    await browser.close()
  }
}

function assertWhole (result, reference) {
  const expectedIds = reference.ids
  assert.ok(result.wordsBefore < expectedIds.length, 'the reload came mid-answer')
  // Every token once, in order, across the reload.
  assert.deepEqual(result.first.ids, expectedIds)
  assert.equal(result.shown, reference.tokens.join(''))
  assert.equal(result.secondShown, reference.tokens.join(''))
}

test('headless Chromium: an answer survives a reload mid-answer and shows whole in a second tab (one process)', async () => {
  const chat = await startChat()
  try {
    const result = await askReloadAndOpenTwice(`${chat.url}/`)
    // What a Node EventSource gets from the answer's start: the reference, from another client.
    const reference = await followToEnd(`${chat.url}/answers/${result.id}/events`)
    assert.equal(reference.end.events, reference.tokens.length)
    assertWhole(result, reference)
  } finally {
    await chat.stop()
  }
})

test('headless Chromium: the answer is written by one process and resumed on another, through Redis', async () => {
  const redis = await startRedis({ durable: false })
  const a = await startChat({ REDIS_URL: redis.url })
  const b = await startChat({ REDIS_URL: redis.url })
  try {
    // Asked on A (which runs the model); the reload follows it from B.
    const result = await askReloadAndOpenTwice(`${a.url}/`, { resumeOn: b.url })
    const reference = await followToEnd(`${b.url}/answers/${result.id}/events`)
    assert.equal(reference.end.events, reference.tokens.length)
    assertWhole(result, reference)
  } finally {
    await a.stop()
    await b.stop()
    await redis.close()
  }
})
