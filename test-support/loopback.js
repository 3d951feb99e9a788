'use strict'

// Where the services and the servers under test listen (127.0.0.1 only), and how long anything
// waits for them: every wait is bounded in time. __test__/helpers.js hands these on to the suites.

const net = require('node:net')

const HOST = '127.0.0.1'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `check` until it returns a truthy value; throws after `timeoutMs`. `what` may be a
 * function, called at the timeout, so the message tells the state then.
 */
async function waitFor (check, { timeoutMs = 10_000, intervalMs = 5, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await sleep(intervalMs)
  }
}

/** A port of `HOST` nothing listens on right now. */
async function freePort () {
  const server = net.createServer()
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, resolve)
  })
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

module.exports = { HOST, sleep, waitFor, freePort }
