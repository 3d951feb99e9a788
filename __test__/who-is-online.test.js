'use strict'
// needs: chromium

// examples/who-is-online.js and its page, in headless Chromium: three users in a room (one in
// two tabs) and one in another room. Each page lists exactly its room's users, the two-tab user
// once; closing one of that user's tabs keeps it listed, closing the other takes it off every
// page within about 2 s.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { chromium } = require('playwright-core')
const { startExample, waitFor, sleep } = require('./helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const BROWSER_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** The page's flush of changes is at most a second behind (presence.js FLUSH_MS): the leave shows within this. */
const GONE_WITHIN_MS = 2500

/** The users a page lists, in its order. */
const listed = (page) => page.$$eval('#online li', (items) => items.map((item) => item.textContent))

test('examples/who-is-online: each page lists who is in its room, a user\'s two tabs once, and drops it when both are closed', async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`)
  const { url, stop } = await startExample('who-is-online.js')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS })
  const errors = []
  /** A tab of `user` (its own browser profile) in `room`. */
  const contexts = new Map()
  const open = async (user, room) => {
    if (!contexts.has(user)) contexts.set(user, await browser.newContext())
    const page = await contexts.get(user).newPage()
    page.on('pageerror', (error) => errors.push(`${user}: ${error}`))
    page.on('console', (message) => {
      // The browser asks for a /favicon.ico the example has not got.
      if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) errors.push(`${user}: ${message.text()}`)
    })
    await page.goto(`${url}?room=${room}&user=${user}`)
    return page
  }
  /** Waits until each of `pages` lists `users` (in any order, each once). */
  const allList = (pages, users, what, timeoutMs) => {
    let lists = []
    return waitFor(async () => {
      lists = await Promise.all(pages.map(listed))
      return lists.every((list) => list.sort().join() === users.join())
    }, { what: () => `${what} (the pages list ${JSON.stringify(lists)})`, timeoutMs })
  }
  try {
    const [annFirst, annSecond, bob, cy] = [await open('ann', 'lobby'), await open('ann', 'lobby'), await open('bob', 'lobby'), await open('cy', 'lobby')]
    const dan = await open('dan', 'kitchen')
    await allList([annFirst, annSecond, bob, cy], ['ann', 'bob', 'cy'], 'ann (two tabs), bob and cy in the lobby')
    for (const page of [annFirst, annSecond, bob, cy]) assert.deepEqual((await listed(page)).sort(), ['ann', 'bob', 'cy'])
    await allList([dan], ['dan'], 'dan alone in the kitchen')

    // One of ann's tabs closes: ann is still there, past the next flush.
    await annFirst.close()
    for (const until = Date.now() + GONE_WITHIN_MS; Date.now() < until; await sleep(100)) {
      for (const page of [annSecond, bob, cy]) assert.deepEqual((await listed(page)).sort(), ['ann', 'bob', 'cy'], 'ann still has a tab open')
    }
    // The other: ann is gone from every page.
    const closed = performance.now()
    await annSecond.close()
    await allList([bob, cy], ['bob', 'cy'], 'ann to be gone', 5000)
    const took = performance.now() - closed
    t.diagnostic(`ann was gone from the other pages ${Math.round(took)} ms after its last tab closed`)
    assert.ok(took < GONE_WITHIN_MS, `ann was gone ${Math.round(took)} ms after its last tab closed`)
    assert.deepEqual(await listed(dan), ['dan'])
    assert.deepEqual(errors, [], 'no error in the pages')
  } finally {
    await browser.close()
    await stop()
  }
})
