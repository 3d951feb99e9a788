import type { Request, Response, NextFunction } from 'express'
import type { AttachOptions, AnyEvents, Client, EventMap, Hub } from './index'

export interface SseHandlerOptions<Events extends EventMap = AnyEvents> extends Omit<AttachOptions, 'channels'> {
  /**
   * Channels the client receives `hub.publish(channel, ...)` events from: an array, or a
   * function of the request returning one (e.g. `(req) => ['user:' + req.user.id]`). Chosen
   * here rather than with `client.subscribe()` in `onConnect`, they are known at attach, so a
   * client reconnecting with `Last-Event-ID` resumes in them; a later `subscribe()` joins at
   * the channel's head. Default `[]`.
   */
  channels?: readonly string[] | ((req: Request) => readonly string[])
  /**
   * Called once the client is attached, with Express's request (`req.query`, `req.params`, and
   * what your middleware added, such as `req.user`). The stream has begun, so a thrown error or
   * a rejected promise cannot become an error page: the client is closed gracefully (what was
   * queued is still delivered) and the error goes to `onError`.
   */
  onConnect?: (client: Client<Events>, req: Request) => void | Promise<void>
  /** Receives what `onConnect` threw or rejected with. Default: written to stderr. */
  onError?: (error: unknown, client: Client<Events>, req: Request) => void
}

/**
 * An Express route handler that attaches every request to `hub`.
 * @throws {TypeError} `ERR_SSE_INVALID_ARGUMENT` when `hub` is not a hub, `ERR_SSE_UNKNOWN_OPTION`
 *   for an option it does not know.
 */
export declare function sse<Events extends EventMap = AnyEvents>(
  hub: Hub<Events>,
  options?: SseHandlerOptions<Events>
): (req: Request, res: Response, next: NextFunction) => void
