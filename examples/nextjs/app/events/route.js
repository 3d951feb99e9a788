// app/events/route.js: GET streams, POST publishes its body to every open stream.
import { hub } from '../../lib/hub'

export function GET (request) {
  return hub.response(request, { channels: ['news'] }, (client) => {
    client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
  })
}

export async function POST (request) {
  const delivered = hub.publish('news', { event: 'news', data: await request.text() })
  return Response.json({ delivered })
}
