// Type tests (tstyche): one event map types createHub<Events>() on the server and
// connect<Events>() in the browser; a wrong handler payload does not compile.
import { expect, test } from 'tstyche'
import { createHub } from 'native-sse'
import { connect, type ReceivedEvent, type RevokeInfo, type SseClient } from 'native-sse/client'

type Price = { symbol: string; price: number }
type Events = { price: Price; note: string; message: number[] }

const hub = createHub<Events>()
const client = connect<Events>('/events', { text: ['note'] })

test('the hub and the client share the event map', () => {
  expect(hub.broadcast).type.toBeCallableWith({ event: 'price', data: { symbol: 'X', price: 1 } })
  expect(client).type.toBe<SseClient<Events>>()
  expect(client.on).type.toBeCallableWith('price', (data: Price, meta: { event: 'price'; id: string }) => {})
  expect(client.on).type.toBeCallableWith('message', (data: number[]) => {})
  expect(client.off).type.toBeCallableWith('note', (data: string) => {})
})

test('a wrong handler payload or an unknown event does not compile', () => {
  expect(client.on).type.not.toBeCallableWith('price', (data: string) => {})
  expect(client.on).type.not.toBeCallableWith('note', (data: Price) => {})
  expect(client.on).type.not.toBeCallableWith('unknown', (data: unknown) => {})
  expect(client.on).type.not.toBeCallableWith('price', 'not a function')
})

test('only string events can be listed in text; options are checked', () => {
  expect(connect<Events>).type.toBeCallableWith('/events', { text: ['note'] })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { text: ['price'] })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { transport: 'websocket' })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { colour: 'red' })
  expect(connect<Events>).type.toBeCallableWith(new URL('http://127.0.0.1/events'), {
    headers: async () => ({ authorization: 'Bearer t' }), method: 'POST', body: '{}', credentials: 'include'
  })
})

test('the iterator narrows data by event name', async () => {
  for await (const received of client) {
    expect(received).type.toBe<ReceivedEvent<Events>>()
    if (received.event === 'price') expect(received.data).type.toBe<Price>()
    if (received.event === 'note') expect(received.data).type.toBe<string>()
  }
})

test('an untyped client takes any event name, with unknown data', () => {
  const untyped = connect('/events')
  expect(untyped.on).type.toBeCallableWith('anything', (data: unknown) => {})
  expect(connect).type.toBeCallableWith('/events', { text: ['anything'] })
})

test('onRevoke gets the channel and why its grant ended; revokedEvent names the hub\'s event', () => {
  expect(connect<Events>).type.toBeCallableWith('/events', {
    revokedEvent: 'access-ended',
    onRevoke: (info: RevokeInfo) => {
      expect(info.channel).type.toBe<string>()
      expect(info.reason).type.toBe<'expired' | 'revoked' | (string & {})>()
    }
  })
  expect(connect<Events>).type.toBeCallableWith('/events', { onRevoke: ({ channel, reason }: { channel: string; reason: string }) => {} })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { onRevoke: (info: { channel: number }) => {} })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { revokedEvent: true })
})
