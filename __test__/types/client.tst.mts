// Type tests (tstyche): one event map types createHub<Events>() on the server and
// connect<Events>() in the browser; a wrong handler payload does not compile.
import { expect, test } from 'tstyche'
import { createHub, type Member } from 'native-sse'
import { connect, type PresenceInfo, type PresenceMember, type ReceivedEvent, type RevokeInfo, type SseClient } from 'native-sse/client'

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

test('presence: members() and onPresence type member data by connect()\'s second parameter, unknown by default', () => {
  type Profile = { name: string } | null
  const typed = connect<Events, Profile>('/events', {
    presenceEvent: 'who',
    onPresence: (info) => {
      expect(info).type.toBe<PresenceInfo<Profile>>()
      expect(info.channel).type.toBe<string>()
      expect(info.members).type.toBe<PresenceMember<Profile>[]>()
      expect(info.joins).type.toBe<PresenceMember<Profile>[]>()
      expect(info.leaves).type.toBe<PresenceMember<Profile>[]>()
      expect(info.snapshot).type.toBe<boolean>()
    }
  })
  expect(typed).type.toBe<SseClient<Events, Profile>>()
  expect(typed.members('room:1')).type.toBe<PresenceMember<Profile>[]>()
  expect(typed.members('room:1')[0]!.data).type.toBe<Profile>()
  expect(typed.members).type.not.toBeCallableWith(1)
  // Without the second parameter, member data is unknown.
  expect(client.members('room:1')).type.toBe<PresenceMember<unknown>[]>()
  expect(connect('/events').members('x')[0]!.data).type.toBe<unknown>()
  // Inferred from an annotated callback.
  expect(connect('/events', { onPresence: (info: PresenceInfo<{ name: string }>) => {} })).type.toBe<SseClient<{ [event: string]: unknown }, { name: string }>>()
  expect(connect<Events>).type.not.toBeCallableWith('/events', { onPresence: (info: { members: number }) => {} })
  expect(connect<Events>).type.not.toBeCallableWith('/events', { presenceEvent: 1 })
  // The hub's members (with their connection counts) read as the client's.
  expect<PresenceMember>().type.toBeAssignableFrom<Member>()
})
