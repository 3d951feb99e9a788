// The Express route test under vitest: the same helper, vitest's test and expect.
import { test, expect } from 'vitest'
import express from 'express'
import { createHub } from 'native-sse'
import { sse } from 'native-sse/express'
import { openStream } from 'native-sse/testing'

test('GET /prices streams the prices published', async () => {
  const hub = createHub()
  const app = express()
  app.get('/prices', sse(hub, { channels: ['prices'] }))
  const stream = await openStream(app, { path: '/prices' })
  try {
    expect(stream.status).toBe(200)
    hub.publish('prices', { event: 'price', id: 'p1', data: { price: 101 } })
    const price = await stream.waitFor('price')
    expect(JSON.parse(price.data)).toEqual({ price: 101 })
    await expect(stream.waitFor('price', { timeoutMs: 100 })).rejects.toThrow(/expected event 'price' within 100 ms/)
  } finally {
    await stream.close()
    await hub.close()
  }
})
