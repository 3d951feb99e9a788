import { hub } from '../../lib/hub'

// GET /events: an event stream, through the Fetch API transport.
export function GET (request) {
  return hub.response(request, { channels: ['news'] }, (client) => {
    client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
  })
}

// POST /events: the body, as a `news` event, to every open stream.
export async function POST (request) {
  const delivered = hub.publish('news', { event: 'news', data: await request.text() })
  return Response.json({ delivered })
}
