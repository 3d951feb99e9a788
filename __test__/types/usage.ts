// Compiled by `tsc --noEmit` in `npm test`: the public types accept the documented usage.
import * as http from 'node:http'
import { createHub, attach, type Client, type CloseReason, type HubStats } from '../../index'

const hub = createHub({ heartbeatMs: 10_000, overflow: 'drop-oldest', maxLagBytes: 1 << 20 })
http.createServer((req, res) => {
  const client: Client = hub.attach(req, res, { retryMs: 1000 })
  client.on('close', (reason: CloseReason) => console.log(reason))
  const ok: boolean = client.send({ data: { any: 'json' }, event: 'e', id: 1, retry: 10 })
  client.comment('note')
  client.signal.addEventListener('abort', () => {})
  console.log(ok, client.lastEventId, client.closeReason)
  attach(req, res)
})
const recipients: number = hub.broadcast({ data: 'x' })
const stats: HubStats = hub.stats()
console.log(recipients, stats.maxClientQueuedBytes, hub.size)
void hub.close()
