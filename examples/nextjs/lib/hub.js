// The app's one hub. sharedHub() returns the same hub to every evaluation of this module:
// `next dev` evaluates it again after an edit, and a second hub would hold none of the open streams.
import { sharedHub } from 'native-sse'

export const hub = sharedHub('events', { heartbeatMs: 15_000 })
