'use strict'
// needs: redis-server, chromium

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
const { startHttp, startExample, waitFor } = require('./helpers')
const { startRedis } = require('../test-support/redis')

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

/**
 * A server whose `/?stream=<id>` follows the answer `<id>` in channel `answer:<id>` from its
 * start (`<id>.0`), as the README's answers route does.
 */
function answerServer (hub) {
  return startHttp((req, res) => {
    const id = new URL(req.url, 'http://x').searchParams.get('stream')
    hub.attach(req, res, { channels: [`answer:${id}`], lastEventId: `${id}.0` })
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
  const http = await answerServer(hub)
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

test('publishStream: a source that throws ends the stream with a generic error event (errorData chooses another); bad arguments throw at once', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await answerServer(hub)
  try {
    const secret = '401 Incorrect API key provided: sk-live-SECRET1234 (org org-internal)'
    async function * failing () {
      yield 'a'
      yield 'b'
      throw new Error(secret)
    }
    const stream = hub.publishStream('answer:bad', failing(), { id: 'bad' })
    const got = await followToEnd(`${http.url}/?stream=bad`)
    const result = await stream.done
    assert.equal(result.completed, false)
    assert.equal(result.events, 2)
    assert.equal(result.error.message, secret, 'done has the whole error')
    assert.deepEqual(got.tokens, ['a', 'b'])
    assert.deepEqual(got.error, { message: 'stream failed' }, 'subscribers get nothing of the source\'s error')

    const chosen = hub.publishStream('answer:chosen', failing(), {
      id: 'chosen',
      errorData: (error) => ({ code: 'upstream', retryable: error.message.startsWith('401') ? false : true })
    })
    assert.deepEqual((await followToEnd(`${http.url}/?stream=chosen`)).error, { code: 'upstream', retryable: false })
    assert.equal((await chosen.done).error.message, secret)
    // An errorData that throws falls back to the generic message.
    const broken = hub.publishStream('answer:broken', failing(), { id: 'broken', errorData: () => { throw new Error('oops') } })
    assert.deepEqual((await followToEnd(`${http.url}/?stream=broken`)).error, { message: 'stream failed' })
    assert.equal((await broken.done).completed, false)
    assert.throws(() => hub.publishStream('answer:x', [], { errorData: 'text' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.throws(() => hub.publishStream('answer:x', 42), { name: 'TypeError', code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => hub.publishStream('answer:x', [], { id: 'has space' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION' })
    assert.throws(() => hub.publishStream('answer:x', [], { unknown: 1 }), { name: 'TypeError', code: 'ERR_SSE_UNKNOWN_OPTION' })
    // Event names are checked once, at the start: tokens go to the core unchecked by JS.
    assert.throws(() => hub.publishStream('answer:x', ['t'], { event: 'tok\ud800' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION', message: /well-formed/ })
    assert.throws(() => hub.publishStream('answer:x', ['t'], { event: 'a\nb' }), { name: 'TypeError', code: 'ERR_SSE_INVALID_OPTION', message: /without CR or LF/ })
    const withId = await hub.publishStream('answer:x', [{ data: 'x', id: 'mine' }]).done
    assert.equal(withId.completed, false)
    assert.equal(withId.error.code, 'ERR_SSE_INVALID_MESSAGE')
    // An array of promises is a sync iterable of promises: said so, where it read "no data".
    const promised = await hub.publishStream('answer:x', [Promise.resolve('a')]).done
    assert.equal(promised.error.code, 'ERR_SSE_INVALID_MESSAGE')
    assert.match(promised.error.message, /got a Promise: give an async iterable/)
  } finally {
    await hub.close()
    await http.close()
  }
})

/** `promise`, or a rejection naming `what` when it has not settled within `ms`. */
function settlesWithin (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

/** A source that never yields, and records whether it was told to stop. */
function silentSource () {
  const source = {
    returned: false,
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise(() => {}),
      return: () => {
        source.returned = true
        return Promise.resolve({ done: true, value: undefined })
      }
    })
  }
  return source
}

test('publishStream: one live stream per id; a second with the same id throws and sends nothing', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: ['answer:dup'], lastEventId: 'dup.0' }))
  try {
    let release
    const gate = new Promise((resolve) => { release = resolve })
    async function * gated (words) {
      for (const word of words) {
        await gate
        yield word
      }
    }
    const first = hub.publishStream('answer:dup', gated(['one ', 'two ']), { id: 'dup' })
    const sent = hub.metrics().published.channel
    assert.throws(() => hub.publishStream('answer:dup', ['three '], { id: 'dup' }),
      { name: 'Error', code: 'ERR_SSE_STREAM_LIVE', message: /'dup' is still running/ })
    assert.throws(() => hub.publishStream('answer:elsewhere', ['three '], { id: 'dup' }), { code: 'ERR_SSE_STREAM_LIVE' })
    assert.equal(hub.metrics().published.channel, sent, 'the refused stream published nothing')
    const live = followToEnd(http.url)
    release()
    assert.deepEqual(await first.done, { id: 'dup', events: 2, completed: true })
    const got = await live
    assert.deepEqual(got.ids, ['dup.1', 'dup.2'])
    // Once it ended, the id is free again.
    assert.equal((await hub.publishStream('answer:other', ['x'], { id: 'dup' }).done).completed, true)
  } finally {
    await hub.close()
    await http.close()
  }
})

test('publishStream: an id whose earlier stream the channel still holds is refused until it expires, and resumes into the first stay exact', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: ['answer:again'] }))
  try {
    const history = { maxAgeMs: 3000 }
    assert.deepEqual(await hub.publishStream('answer:again', ['one ', 'two ', 'three '], { id: 'again', history }).done,
      { id: 'again', events: 3, completed: true })
    const sent = hub.metrics().published.channel
    assert.throws(() => hub.publishStream('answer:again', ['other '], { id: 'again', history }),
      { name: 'Error', code: 'ERR_SSE_STREAM_HELD', message: /channel 'answer:again' still holds events with the ids of stream 'again'.*own id/ })
    assert.equal(hub.metrics().published.channel, sent, 'the refused stream published nothing')
    // Another channel does not hold it.
    assert.equal((await hub.publishStream('answer:elsewhere', ['x'], { id: 'again' }).done).completed, true)
    // A channel whose history kept only the end of a run still holds its id: the end has it.
    assert.equal((await hub.publishStream('answer:short', ['a', 'b'], { id: 'again', history: { maxEvents: 2 } }).done).completed, true)
    hub.publish('answer:short', { data: 'after' })
    assert.throws(() => hub.publishStream('answer:short', ['c'], { id: 'again' }), { code: 'ERR_SSE_STREAM_HELD', message: /'again.end'/ })
    // A reader that saw the first token gets the rest of the first run, once each.
    const resumed = await followToEnd(http.url, { lastEventId: 'again.1' })
    assert.deepEqual(resumed.ids, ['again.2', 'again.3'])
    assert.deepEqual(resumed.tokens, ['two ', 'three '])
    // Once the channel no longer keeps it, the id is free there again.
    let second
    await waitFor(() => {
      try {
        second = hub.publishStream('answer:again', ['new '], { id: 'again', history })
        return true
      } catch (error) {
        assert.equal(error.code, 'ERR_SSE_STREAM_HELD')
        return false
      }
    }, { what: 'the first stream to expire', timeoutMs: 15_000, intervalMs: 50 })
    assert.deepEqual(await second.done, { id: 'again', events: 1, completed: true })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('publishStream: a stream that runs longer than its history.maxAgeMs is kept whole while it runs and after it ends', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await startHttp((req, res) => hub.attach(req, res, { channels: ['answer:long'] }))
  try {
    let midRun = null
    async function * longerThanItsAge () {
      yield 'a '
      yield 'b '
      // The answer takes twice its age bound (an agent's run, a slow model).
      await new Promise((resolve) => setTimeout(resolve, 500))
      // A reader resuming from its start now gets what the stream published so far.
      midRun = await readUntil(http.url, 'long.0', (text) => text.includes('id: long.2'))
      yield 'c '
    }
    const run = hub.publishStream('answer:long', longerThanItsAge(), { id: 'long', history: { maxAgeMs: 250 } })
    assert.deepEqual(await run.done, { id: 'long', events: 3, completed: true })
    assert.doesNotMatch(midRun, /sse-reset/)
    assert.match(midRun, /id: long\.1\ndata: a \n\nid: long\.2\ndata: b \n\n/)
    const resumed = await followToEnd(http.url, { lastEventId: 'long.0' })
    assert.deepEqual(resumed.ids, ['long.1', 'long.2', 'long.3'])
    assert.deepEqual(resumed.end, { events: 3 })
  } finally {
    await hub.close()
    await http.close()
  }
})

/** The raw stream from `lastEventId` until `enough(text)` holds (or 10 s), then closed. */
async function readUntil (url, lastEventId, enough) {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), 10_000)
  let text = ''
  try {
    const response = await fetch(url, { headers: { 'last-event-id': lastEventId }, signal: controller.signal })
    const decoder = new TextDecoder()
    for await (const chunk of response.body) {
      text += decoder.decode(chunk, { stream: true })
      if (enough(text)) break
    }
  } catch (error) {
    if (error.name !== 'AbortError') throw error
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
  return text
}

test('publishStream: an AbortSignal and hub.close() end a source that never yields; done resolves, never rejects', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await answerServer(hub)
  try {
    const controller = new AbortController()
    const aborted = silentSource()
    const stream = hub.publishStream('answer:aborted', aborted, { id: 'aborted', signal: controller.signal })
    const follower = followToEnd(`${http.url}/?stream=aborted`)
    await waitFor(() => hub.channel('answer:aborted').size === 1, { what: 'the follower to attach' })
    controller.abort()
    const result = await settlesWithin(stream.done, 5000, 'done after the abort')
    assert.equal(result.completed, false)
    assert.equal(result.error.name, 'AbortError')
    assert.ok(aborted.returned, 'the source was told to stop (iterator.return())')
    assert.deepEqual((await follower).error, { message: 'stream failed' })
    assert.throws(() => hub.publishStream('answer:x', [], { signal: 'nope' }), { code: 'ERR_SSE_INVALID_OPTION' })

    const closing = silentSource()
    const open = hub.publishStream('answer:closing', closing, { id: 'closing' })
    const reader = followToEnd(`${http.url}/?stream=closing`)
    await waitFor(() => hub.channel('answer:closing').size === 1, { what: 'the second follower to attach' })
    await hub.close()
    // Awaited bare: a rejection fails the test.
    const closed = await settlesWithin(open.done, 5000, 'done after hub.close()')
    assert.equal(closed.completed, false)
    assert.equal(closed.error.code, 'ERR_SSE_HUB_CLOSED')
    assert.ok(closing.returned, 'hub.close() told the source to stop')
    assert.deepEqual((await reader).error, { message: 'stream failed' }, 'the follower heard why before its stream ended')
    assert.throws(() => hub.publishStream('answer:late', ['x']), { code: 'ERR_SSE_HUB_CLOSED' })
  } finally {
    await hub.close()
    await http.close()
  }
})

test('publishStream: a signal aborted before the start sends no item; a synchronous source stops at its next yield to the event loop', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await answerServer(hub)
  try {
    const early = silentSource()
    const before = hub.publishStream('answer:early', early, { id: 'early', signal: AbortSignal.abort() })
    const outcome = await settlesWithin(before.done, 5000, 'done of a stream aborted before it started')
    assert.equal(outcome.completed, false)
    assert.equal(outcome.events, 0)
    assert.equal(outcome.error.name, 'AbortError')
    assert.ok(early.returned, 'the source was told to stop')
    const replay = await followToEnd(`${http.url}/?stream=early`)
    assert.deepEqual(replay.tokens, [])
    assert.deepEqual(replay.error, { message: 'stream failed' })

    // A synchronous source gives the event loop a turn every 1,024 items: an abort then is seen
    // before the next item.
    const controller = new AbortController()
    let returned = false
    function * many () {
      try {
        for (let i = 0; i < 100_000; i++) yield `t${i}`
      } finally {
        returned = true
      }
    }
    const sync = hub.publishStream('answer:sync', many(), { id: 'sync', signal: controller.signal, history: false })
    setImmediate(() => controller.abort())
    const stopped = await settlesWithin(sync.done, 5000, 'done of an aborted synchronous source')
    assert.equal(stopped.completed, false)
    assert.equal(stopped.error.name, 'AbortError')
    assert.ok(stopped.events >= 1024 && stopped.events < 100_000 && stopped.events % 1024 === 0, `stopped at a yield, after ${stopped.events} items`)
    assert.ok(returned, "the generator's finally ran")
  } finally {
    await hub.close()
    await http.close()
  }
})

test('publishStream: done settles and the id frees whatever the source does when told to stop; a source that stops itself inside next() sends nothing after its error event', async () => {
  const hub = createHub({ heartbeatMs: 60_000 })
  const http = await answerServer(hub)
  const unhandled = []
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const sources = {
      // An iterator that is no iterator: next() cannot be called, return() cannot be read.
      'null-iterator': { [Symbol.asyncIterator]: () => null },
      'throwing-return': {
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.reject(new Error('the model went away')),
          get return () { throw new Error('return is not readable') }
        })
      }
    }
    for (const [id, source] of Object.entries(sources)) {
      const outcome = await settlesWithin(hub.publishStream(`answer:${id}`, source, { id }).done, 5000, `done of ${id}`)
      assert.equal(outcome.completed, false, id)
      assert.ok(outcome.error instanceof Error, id)
      // The id is free again: the stream left the live set.
      const again = hub.publishStream(`answer:${id}-2`, [], { id })
      assert.equal((await settlesWithin(again.done, 5000, `done of ${id} reused`)).completed, true)
    }
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(unhandled, [], 'no rejection escaped')
    assert.throws(() => hub.publishStream('answer:x', [], { signal: { aborted: false, addEventListener () {} } }), { code: 'ERR_SSE_INVALID_OPTION' })

    // The source's own next() aborts the stream, then yields an item: the item is dropped.
    const controller = new AbortController()
    let calls = 0
    const selfStopping = {
      [Symbol.iterator]: () => ({
        next: () => {
          calls++
          if (calls === 3) controller.abort()
          return { done: calls > 5, value: `t${calls}` }
        }
      })
    }
    const stopped = await settlesWithin(hub.publishStream('answer:self', selfStopping, { id: 'self', signal: controller.signal }).done, 5000, 'done of a source that stops itself')
    assert.equal(stopped.events, 2)
    const replay = await followToEnd(`${http.url}/?stream=self`)
    assert.deepEqual(replay.tokens, ['t1', 't2'], 'nothing after the error event')
    assert.deepEqual(replay.error, { message: 'stream failed' })
  } finally {
    process.off('unhandledRejection', onUnhandled)
    await hub.close()
    await http.close()
  }
})

test('publishStream: the stream\'s retention covers the stream, then the channel keeps its own history again', async () => {
  const hub = createHub({ heartbeatMs: 60_000, history: true })
  // The channel keeps nothing of its own, in a hub that keeps history.
  const http = await startHttp((req, res) => {
    const lastEventId = new URL(req.url, 'http://x').searchParams.get('from') ?? undefined
    hub.attach(req, res, { channels: ['answer:quiet'], lastEventId })
  })
  try {
    hub.channel('answer:quiet', { history: false })
    const retention = 300
    const stream = hub.publishStream('answer:quiet', ['a', 'b', 'c'], { id: 'q', history: { maxAgeMs: retention } })
    assert.equal((await stream.done).completed, true)
    const ended = performance.now()
    // Kept while its retention lasts: a late reader replays it whole.
    assert.deepEqual((await followToEnd(`${http.url}/?from=q.0`)).tokens, ['a', 'b', 'c'])
    // Then the channel's own setting (nothing kept) applies again, to the stream and after it.
    const reset = async () => {
      const got = await rawEvents(`${http.url}/?from=q.0`, 1)
      return got[0].event === 'sse-reset' ? got[0] : null
    }
    const first = await waitFor(reset, { timeoutMs: 10_000, what: 'the stream to go when its retention ends' })
    assert.ok(performance.now() - ended >= retention, 'kept for its retention')
    assert.match(JSON.parse(first.data).reason, /^(expired|unknown)$/)
    // Within a sweep (a second at most) of the retention's end, an ordinary publish is not
    // kept either: two events, and a resume from the first is reset rather than replayed.
    let probe = 0
    const notKept = async () => {
      probe++
      hub.publish('answer:quiet', { id: `later-${probe}-a`, data: 'x' })
      hub.publish('answer:quiet', { id: `later-${probe}-b`, data: 'y' })
      const got = await rawEvents(`${http.url}/?from=later-${probe}-a`, 1)
      return got[0].event === 'sse-reset'
    }
    await waitFor(notKept, { timeoutMs: 10_000, intervalMs: 50, what: 'ordinary publishes to stop being kept once the stream\'s retention ended' })
    assert.ok(performance.now() - ended < retention + 5000, 'within a few sweeps of the retention')
  } finally {
    await hub.close()
    await http.close()
  }
})

/** The first `count` events an EventSource-less reader gets from `url` (a fetch, then closed). */
async function rawEvents (url, count) {
  const { createParser } = await import('eventsource-parser')
  const controller = new AbortController()
  const response = await fetch(url, { signal: controller.signal })
  const events = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  const decoder = new TextDecoder()
  const timer = setTimeout(() => controller.abort(), 5000)
  try {
    for await (const chunk of response.body) {
      parser.feed(decoder.decode(chunk, { stream: true }))
      if (events.length >= count) break
    }
  } catch (error) {
    if (error.name !== 'AbortError') throw error
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
  if (events.length < count) throw new Error(`${url}: ${events.length} of ${count} events within 5 s`)
  return events
}

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

test("headless Chromium runs docs/RESUMABLE.md's resumable answer as written (server route and page): a reload mid-answer shows every token once", async () => {
  const express = require('express')
  const { randomUUID } = require('node:crypto')
  const section = fs.readFileSync(require('node:path').join(__dirname, '..', 'docs', 'RESUMABLE.md'), 'utf8')
  const serverCode = section.match(/```js\n([\s\S]*?)```/)[1]
  const pageCode = section.match(/```html\n([\s\S]*?)```/)[1]

  // The model: 20 words, then it waits for the test (the reload happens there), then 40 more.
  const words = Array.from({ length: 60 }, (_, i) => `w${i} `)
  let release
  const reloaded = new Promise((resolve) => { release = resolve })
  const model = {
    async * stream (prompt) {
      assert.equal(prompt, 'why?')
      for (let i = 0; i < words.length; i++) {
        if (i === 20) await reloaded
        yield words[i]
      }
    }
  }
  const hub = createHub()
  const app = express()
  // eslint-disable-next-line no-new-func
  new Function('app', 'hub', 'model', 'randomUUID', 'express', serverCode)(app, hub, model, randomUUID, express)
  app.get('/', (req, res) => res.type('html').send(`<!doctype html>\n${pageCode}`))
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  const url = `http://127.0.0.1:${server.address().port}`
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS })
  try {
    const asked = await fetch(`${url}/answers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'why?' }) })
    assert.equal(asked.status, 201)
    const { id } = await asked.json()
    const page = await browser.newPage()
    await page.goto(`${url}/?answer=${id}`)
    await page.waitForFunction(() => document.getElementById('answer').textContent.endsWith('w19 '), null, { timeout: 15_000 })
    await page.reload()
    assert.equal(await page.textContent('#answer'), words.slice(0, 20).join(''), 'after the reload, what was shown, from sessionStorage')
    release()
    await page.waitForFunction(() => document.getElementById('answer').textContent.endsWith('w59 '), null, { timeout: 15_000 })
    assert.equal(await page.textContent('#answer'), words.join(''), 'every token once, in order')
    // A second tab, with nothing stored, gets the whole answer from its start.
    const second = await browser.newPage()
    await second.goto(`${url}/?answer=${id}`)
    await second.waitForFunction(() => document.getElementById('answer').textContent.endsWith('w59 '), null, { timeout: 15_000 })
    assert.equal(await second.textContent('#answer'), words.join(''))
  } finally {
    release()
    await browser.close()
    await hub.close()
    await new Promise((resolve) => server.close(resolve))
  }
})
