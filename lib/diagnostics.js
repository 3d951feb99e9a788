'use strict'

// What the hub tells node:diagnostics_channel, the convention of Node libraries (undici,
// fastify): observers (APM agents, loggers, tests) subscribe by name, with nothing to patch,
// under CommonJS, ESM, Bun and Deno alike. Each message is built only when a channel has
// subscribers, so a hub nobody observes pays one property read per publish or per client.
//
//   native-sse:publish      { hub, channel (null: broadcast), message, recipients }
//   native-sse:connect      { hub, client, channels, transport, resume, resetReason }
//   native-sse:refuse       { hub, reason, channels, error? }
//   native-sse:close        { hub, client, reason, events, bytes, channels }
//   native-sse:revoke       { hub, client, channel, reason ('expired' | 'revoked') }
//   native-sse:backend      { hub, state ('up' | 'down'), detail }

const diagnostics = require('node:diagnostics_channel')

const channels = {
  publish: diagnostics.channel('native-sse:publish'),
  connect: diagnostics.channel('native-sse:connect'),
  refuse: diagnostics.channel('native-sse:refuse'),
  close: diagnostics.channel('native-sse:close'),
  revoke: diagnostics.channel('native-sse:revoke'),
  backend: diagnostics.channel('native-sse:backend')
}

module.exports = channels
