// GET /events: an event stream served by the hub through the Fetch API transport.
import { getHub } from '../../hub'

export function GET (request) {
  return getHub().response(request, { channels: ['ticks'] }, (client) => {
    client.send({ event: 'hello', data: { id: client.id, transport: client.transport } })
  })
}
