// Type tests (tstyche): correct code with typed events compiles, wrong code does not.
import * as http from 'node:http'
import * as http2 from 'node:http2'
import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import express from 'express'
import { createHub, type StreamEvents, type Channel, type Client, type Hub, type HubStats, type HubMetrics, type DisconnectInfo, type CloseReason, type Refusal, type BackendInfo } from 'native-sse'
import type * as binding from '../../binding.js'
import { collectHubMetrics } from 'native-sse/prometheus'
import { Registry } from 'prom-client'
import nativeSse, { nativeSse as named } from 'native-sse/fastify'
import { sse } from 'native-sse/express'

type Events = { price: { symbol: string; price: number }; note: string }
const typed = createHub<Events>()
const untyped = createHub()

test('typed events: the right payload for each event name compiles', () => {
  expect(typed.broadcast).type.toBeCallableWith({ event: 'price', data: { symbol: 'X', price: 1 } })
  expect(typed.broadcast).type.toBeCallableWith({ event: 'note', data: 'hi', id: 7, retry: 1000 })
  expect(typed.publish).type.toBeCallableWith('prices', { event: 'price', data: { symbol: 'X', price: 1 }, id: 'a' })
})

test('typed events: a wrong payload, an unknown event or a missing name does not compile', () => {
  expect(typed.broadcast).type.not.toBeCallableWith({ event: 'price', data: { symbol: 'X', price: '1' } })
  expect(typed.broadcast).type.not.toBeCallableWith({ event: 'price', data: 'not a price' })
  expect(typed.broadcast).type.not.toBeCallableWith({ event: 'unknown', data: 'x' })
  expect(typed.broadcast).type.not.toBeCallableWith({ data: 'no event name' })
  expect(typed.broadcast).type.not.toBeCallableWith({ event: 'note', data: 'x', extra: true })
})

test('a "message" key types events sent without a name', () => {
  const hub = createHub<{ message: number; alert: string }>()
  expect(hub.broadcast).type.toBeCallableWith({ data: 42 })
  expect(hub.broadcast).type.toBeCallableWith({ event: 'alert', data: 'fire' })
  expect(hub.broadcast).type.not.toBeCallableWith({ data: 'not a number' })
})

test('clients of a typed hub are typed too', () => {
  http.createServer((req, res) => {
    const client = typed.attach(req, res, { channels: ['prices'], transport: 'auto' })
    expect(client).type.toBe<Client<Events>>()
    expect(client.send).type.toBeCallableWith({ event: 'note', data: 'hello' })
    expect(client.send).type.not.toBeCallableWith({ event: 'note', data: 1 })
    expect(client.transport).type.toBe<'native' | 'node' | 'fetch' | null>()
    expect(client.refusal).type.toBe<'hub-full' | 'channel-full' | 'closing' | 'forbidden' | 'authorization-failed' | null>()
    expect(client.stream).type.toBeCallableWith(['token', Buffer.from('x')])
    expect(client.stream).type.toBeCallableWith([{ event: 'note', data: 'hi' }])
    expect(client.stream).type.not.toBeCallableWith([{ event: 'note', data: 1 }])
    expect(client.drain()).type.toBe<Promise<void>>()
  })
})

test('hub.route(): open returns attach options but transport, plus headers; onClient gets a typed client', () => {
  const server = http.createServer()
  const route = typed.route(server, '/events', async (request) => ({ channels: [request.url], user: request.headers['x-user'] as string, headers: { 'access-control-allow-origin': '*' } }), {
    backlog: 1024,
    openTimeoutMs: 5000,
    onClient: (client, request) => {
      expect(client).type.toBe<Client<Events>>()
      expect(request.remoteAddress).type.toBe<string | null>()
    }
  })
  expect(route.counts).type.toBe<{ taken: number, passed: number }>()
  expect(typed.route).type.toBeCallableWith(server, '/events')
  expect(typed.route).type.toBeCallableWith(server, '/events', () => undefined, { backlog: false })
  expect(typed.route).type.not.toBeCallableWith(server, '/events', () => ({ transport: 'node' }))
  expect(typed.route).type.not.toBeCallableWith(server, '/events', undefined, { queue: 1 })
})

test('untyped hubs accept any event and any data', () => {
  expect(untyped.broadcast).type.toBeCallableWith({ event: 'anything', data: { any: 'thing' } })
  expect(untyped.broadcast).type.toBeCallableWith({ retry: 500 })
  expect(typed.broadcast).type.toBeCallableWith({ retry: 500 })
  expect(untyped.broadcast).type.not.toBeCallableWith({ event: 'no data' })
  expect(untyped.broadcast).type.not.toBeCallableWith({ id: 1, retry: 500 })
  expect(untyped.stats()).type.toBe<HubStats>()
})

test('attach takes HTTP/1, HTTP/2 compat and raw HTTP/2 streams', () => {
  http2.createSecureServer({}, (req, res) => { untyped.attach(req, res) })
    .on('stream', (stream, headers) => { untyped.attach(stream, headers, { transport: 'node' }) })
  expect(untyped.attach).type.not.toBeCallableWith({}, {})
})

test('options are checked', () => {
  expect(createHub).type.toBeCallableWith({ heartbeatMs: 1000, overflow: 'drop-oldest', maxEventBytes: 1 << 20 })
  expect(createHub).type.not.toBeCallableWith({ overflow: 'block' })
  expect(createHub).type.not.toBeCallableWith({ heartbeat: 1000 })
})

test('a channel can take its own history', () => {
  expect(typed.channel('orders', { history: { maxEvents: 10 } })).type.toBe<Channel<Events>>()
  expect(typed.channel).type.toBeCallableWith('typing', { history: false })
  expect(typed.channel).type.not.toBeCallableWith('orders', { history: { maxEvent: 10 } })
  expect(typed.channel).type.not.toBeCallableWith('orders', { histroy: true })
})

test('the Fastify plugin decorates the instance and the reply', async () => {
  const app = Fastify()
  await app.register(nativeSse, { heartbeatMs: 10_000 })
  expect(app.register).type.toBeCallableWith(named, { overflow: 'drop-oldest' })
  expect(app.sse).type.toBe<Hub>()
  app.get('/events', (request, reply) => {
    expect(reply.sse({ channels: ['a'] })).type.toBe<Client>()
  })
  expect(app.register).type.not.toBeCallableWith(nativeSse, { heartbeatMs: 'often' })
})

test('the Express helper takes a hub and options', () => {
  const app = express()
  app.get('/events', sse(typed, { channels: ['prices'], onConnect: (client) => { client.send({ event: 'note', data: 'hi' }) } }))
  expect(sse).type.not.toBeCallableWith({}, {})
  expect(sse).type.toBeCallableWith(typed, { onError: (error: unknown, client: Client<Events>) => { client.close() } })
  expect(sse(typed, { onConnect: (client) => { client.send({ event: 'note', data: 2 }) } })).type.toRaiseError()
})

test('operations: staged close, caps, metrics and lifecycle events are typed', () => {
  expect(untyped.close).type.toBeCallableWith({ spreadMs: 10_000, drainMs: 5000, finalEvent: { event: 'bye', data: '' } })
  expect(untyped.close).type.toBeCallableWith()
  expect(untyped.close).type.not.toBeCallableWith({ spread: 10 })
  expect(createHub).type.toBeCallableWith({ maxClients: 10_000, retryAfterSeconds: 2 })
  expect(typed.channel).type.toBeCallableWith('room', { maxClients: 50 })
  expect(typed.channel).type.toBeCallableWith('room', { maxClients: null })
  expect(untyped.metrics()).type.toBe<HubMetrics>()
  expect(untyped.metrics().closes.slow).type.toBe<number>()
  expect(untyped.metricsText).type.toBeCallableWith({ prefix: 'app_sse_', labels: { hub: 'chat' }, perChannel: true })
  expect(untyped.metricsText).type.not.toBeCallableWith({ labels: { hub: 1 } })
  untyped.on('disconnect', (info) => {
    expect(info).type.toBe<DisconnectInfo>()
    expect(info.events).type.toBe<number>()
  })
  expect(untyped.on).type.not.toBeCallableWith('disconnect', (info: { nope: string }) => {})
  expect(collectHubMetrics).type.toBeCallableWith(untyped, { registry: new Registry(), prefix: 'x_' })
  expect(collectHubMetrics(untyped).unregister).type.toBe<() => void>()
})

test('redis: a URL or options, ready(), the backend event and its metrics', () => {
  expect(createHub).type.toBeCallableWith({ redis: 'redis://127.0.0.1:6379' })
  expect(createHub).type.toBeCallableWith({ redis: { url: 'redis://127.0.0.1:6379', prefix: 'app', maxBufferEvents: 10, streamEvents: 100 } })
  expect(createHub).type.not.toBeCallableWith({ redis: { prefix: 'no url' } })
  expect(createHub).type.not.toBeCallableWith({ redis: { url: 'redis://x', maxBufferEvent: 10 } })
  expect(untyped.ready()).type.toBe<Promise<void>>()
  untyped.on('backend', (info) => {
    expect(info.state).type.toBe<'up' | 'down'>()
    expect(info.detail).type.toBe<string>()
  })
  const metrics = untyped.metrics()
  expect(metrics.redis?.buffered.events).type.toBe<number | undefined>()
  expect(metrics.resumes.reset.gap).type.toBe<number>()
})

test('the words the binding hands over are the documented ones', () => {
  expect<`${binding.CloseReason}`>().type.toBe<Exclude<CloseReason, 'refused' | 'head'>>()
  expect<`${binding.Refusal}`>().type.toBe<Refusal>()
  expect<`${binding.Resume}`>().type.toBe<Client['resume']>()
  // 'gap' is sent mid-stream, never what an attach resumed to.
  expect<Exclude<`${binding.ResetReason}`, 'gap'>>().type.toBe<NonNullable<Client['resetReason']>>()
  expect<`${binding.BackendState}`>().type.toBe<BackendInfo['state']>()
  expect<keyof HubMetrics['closes']>().type.toBe<`${binding.CloseReason}`>()
  expect<keyof HubMetrics['resumes']['reset']>().type.toBe<`${binding.ResetReason}`>()
  expect<keyof HubMetrics['connections']>().type.toBe<NonNullable<Client['transport']> | 'pending'>()
})

test('each fact has one name: no refused beside refusal, no channelSize beside channel().size, no counters in stats()', () => {
  http.createServer((req, res) => {
    const client = untyped.attach(req, res)
    expect(client).type.not.toHaveProperty('refused')
    expect(client.refusal).type.toBe<Refusal | null>()
  })
  expect(untyped).type.not.toHaveProperty('channelSize')
  expect(untyped.channel('news').size).type.toBe<number>()
  expect<keyof HubStats>().type.toBe<'queuedEvents' | 'queuedBytes' | 'maxClientQueuedBytes' | 'deadlinesExtended'>()
  expect(createHub).type.not.toBeCallableWith({ maxQueueEvents: 10 })
  expect(createHub).type.not.toBeCallableWith({ maxQueueBytes: 1 << 20 })
})

test('hub.response() takes a Fetch Request and returns a Response; its client is typed', () => {
  const request = new Request('http://127.0.0.1/events')
  expect(typed.response(request)).type.toBe<Response>()
  expect(typed.response(request, { channels: ['prices'], retryMs: 1000, headers: { 'access-control-allow-origin': '*' } })).type.toBe<Response>()
  typed.response(request, (client) => {
    expect(client).type.toBe<Client<Events>>()
    expect(client.transport).type.toBe<'native' | 'node' | 'fetch' | null>()
  })
  expect(typed.response).type.not.toBeCallableWith(request, { transport: 'native' })
  expect(typed.response).type.not.toBeCallableWith({ url: '/' })
})

test('hub.publishStream() takes async and sync iterables; attach and response take lastEventId', () => {
  async function * tokens () { yield 'a' }
  const stream = untyped.publishStream('answer:1', tokens(), { id: 'a1', history: { maxAgeMs: 60_000 } })
  expect(stream.startId).type.toBe<string>()
  expect(stream.done).type.toBe<Promise<{ id: string; events: number; completed: boolean; error?: unknown }>>()
  expect(untyped.publishStream).type.toBeCallableWith('answer:2', ['a', 'b'])
  expect(untyped.publishStream).type.not.toBeCallableWith('answer:3', 42)
  expect(untyped.publishStream).type.not.toBeCallableWith('answer:3', [], { id: 1 })
  http.createServer((req, res) => { untyped.attach(req, res, { channels: ['answer:1'], lastEventId: stream.startId }) })
  expect(untyped.response(new Request('http://127.0.0.1/'), { lastEventId: 'a1.0' })).type.toBe<Response>()
})

test('hub.publishStream() on a typed hub: names and items are checked against the event map', () => {
  type Chat = { token: string; price: { symbol: string; price: number } } & StreamEvents
  const hub = createHub<Chat>()
  async function * tokens () { yield 'a'; yield 'b' }
  async function * prices () { yield { event: 'price' as const, data: { symbol: 'X', price: 1 } } }
  async function * unknowns (): AsyncGenerator<unknown> { yield 1 }
  expect(hub.publishStream).type.toBeCallableWith('answer:1', tokens(), { event: 'token' })
  expect(hub.publishStream).type.toBeCallableWith('answer:1', tokens(), { event: 'token', startEvent: 'start', endEvent: 'end', errorEvent: 'stream-error' })
  expect(hub.publishStream).type.toBeCallableWith('prices', prices())
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', tokens(), { event: 'nope' })
  // Text items need an event whose data is a string.
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', tokens(), { event: 'price' })
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', tokens(), { startEvent: 'price' })
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', tokens(), { endEvent: 'token' })
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', tokens(), { errorEvent: 'nope' })
  // Items of unknown type, items with an id, and messages the map refuses do not compile.
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', unknowns())
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', [{ event: 'token', data: 'a', id: '1' }])
  expect(hub.publishStream).type.not.toBeCallableWith('answer:1', [{ event: 'price', data: 'cheap' }])
  // An untyped hub takes any name.
  expect(untyped.publishStream).type.toBeCallableWith('answer:1', tokens(), { event: 'anything', startEvent: 'x' })
})

test('hub.authorize(): parameters typed from the pattern, answers checked; revoke takes a user or a channel; subscribe may be a promise', () => {
  const hub = createHub<Events>()
  hub.authorize('org:{org}/room:{room}', ({ params, client, renewal }) => {
    expect(params).type.toBe<{ org: string } & { room: string } & {}>()
    expect(client).type.toBe<Client<Events> | null>()
    expect(renewal).type.toBe<boolean>()
    return { user: params.org, expiresAt: new Date() }
  })
  expect(hub.authorize).type.toBeCallableWith('user:{id}', async () => true)
  expect(hub.authorize).type.toBeCallableWith('user:{id}', () => ({ allow: false as const }), { renew: true })
  expect(hub.authorize).type.not.toBeCallableWith('user:{id}', () => 'yes')
  expect(hub.authorize).type.not.toBeCallableWith('user:{id}', () => ({ expiresAt: 'tomorrow' }))
  expect(hub.authorize).type.not.toBeCallableWith('user:{id}', () => true, { ttl: 1 })
  expect(hub.revoke({ user: 'ann' })).type.toBe<number>()
  expect(hub.revoke).type.toBeCallableWith({ channel: 'room:a' })
  expect(hub.revoke).type.not.toBeCallableWith({})
  http.createServer((req, res) => {
    const client = hub.attach(req, res, { channels: ['room:a'], user: 'ann' })
    expect(client.user).type.toBe<string | null>()
    expect(client.subscribe('x')).type.toBe<boolean | Promise<boolean>>()
    expect(client.subscribe).type.toBeCallableWith('x', { request: req })
  })
})

test('hub.presence(), members() and memberCount() are typed', () => {
  const hub = createHub()
  expect(hub.presence('room:{room}', { events: false })).type.toBe<Hub>()
  expect(hub.presence).type.not.toBeCallableWith('room:{room}', { events: 'yes' })
  expect(hub.members('room:1').members).type.toBe<{ user: string; connections: number; data: unknown }[]>()
  expect(hub.memberCount('room:1')).type.toBe<{ users: number; connections: number }>()
})
