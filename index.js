'use strict'

const { Hub } = require('./lib/hub')
const { Channel } = require('./lib/channel')
const { Client } = require('./lib/connection')
const { sharedHub } = require('./lib/shared-hub')
const { HUB_DEFAULTS, HISTORY_DEFAULTS, REDIS_DEFAULTS, CLOSE_DEFAULTS } = require('./lib/options')

/** Creates a hub: a registry of event-stream clients served from Rust threads. */
function createHub (options) {
  return new Hub(options)
}

let defaultHub = null

/** The hub behind the module-level attach() and broadcast(), created on first use. */
function getDefaultHub () {
  if (defaultHub === null || defaultHub.closed) defaultHub = new Hub()
  return defaultHub
}

/** attach(req, res, options) on the default hub. */
function attach (req, res, options) {
  return getDefaultHub().attach(req, res, options)
}

module.exports = {
  createHub,
  sharedHub,
  attach,
  getDefaultHub,
  Hub,
  Channel,
  Client,
  defaults: HUB_DEFAULTS,
  historyDefaults: HISTORY_DEFAULTS,
  redisDefaults: REDIS_DEFAULTS,
  closeDefaults: CLOSE_DEFAULTS
}
