import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AttachOptions, AnyEvents, Client, EventMap, Hub } from './index'

export interface SseHandlerOptions<Events extends EventMap = AnyEvents> extends AttachOptions {
  /** Called once the client is attached. A thrown error or rejected promise closes the client and goes to `next(err)`. */
  onConnect?: (client: Client<Events>, req: IncomingMessage) => void | Promise<void>
}

/** An Express route handler that attaches every request to `hub`. */
export declare function sse<Events extends EventMap = AnyEvents>(
  hub: Hub<Events>,
  options?: SseHandlerOptions<Events>
): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void
