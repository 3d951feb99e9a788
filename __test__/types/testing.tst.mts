// Type tests (tstyche): openStream() takes every kind of target the runtime does, and what it
// gives is typed.
import * as http from 'node:http'
import { expect, test } from 'tstyche'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { createHub } from 'native-sse'
import { openStream, type StreamEnd, type TestEvent, type TestStream } from 'native-sse/testing'

const hub = createHub()

test('every kind of target is accepted', () => {
  expect(openStream).type.toBeCallableWith(express())
  expect(openStream).type.toBeCallableWith(Fastify())
  expect(openStream).type.toBeCallableWith(new Hono())
  expect(openStream).type.toBeCallableWith(http.createServer())
  expect(openStream).type.toBeCallableWith((req: http.IncomingMessage, res: http.ServerResponse) => { hub.attach(req, res) })
  expect(openStream).type.toBeCallableWith((request: Request) => hub.response(request))
  expect(openStream).type.toBeCallableWith({ fetch: async (request: Request) => hub.response(request) })
  expect(openStream).type.toBeCallableWith(express(), { path: '/events', method: 'GET', headers: { 'x-user': 'a' }, lastEventId: 7, timeoutMs: 500 })
})

test('a wrong target or option does not compile', () => {
  expect(openStream).type.not.toBeCallableWith('http://127.0.0.1/events')
  expect(openStream).type.not.toBeCallableWith({ fetch: 1 })
  expect(openStream).type.not.toBeCallableWith(express(), { timeout: 500 })
  expect(openStream).type.not.toBeCallableWith(express(), { path: 1 })
})

test('the stream and its events are typed', async () => {
  const stream = await openStream((request: Request) => hub.response(request))
  expect(stream).type.toBe<TestStream>()
  expect(stream.status).type.toBe<number>()
  expect(await stream.next()).type.toBe<TestEvent>()
  expect(await stream.waitFor('price', { timeoutMs: 100 })).type.toBe<TestEvent>()
  expect(stream.waitFor).type.toBeCallableWith((event: TestEvent) => event.data === '1')
  expect(stream.waitFor).type.not.toBeCallableWith(1)
  expect(await stream.closed).type.toBe<StreamEnd>()
  expect(await stream.reconnect()).type.toBe<TestStream>()
  for await (const event of stream) expect(event.data).type.toBe<string>()
})
