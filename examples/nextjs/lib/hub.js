// lib/hub.js: sharedHub() gives the same hub each time `next dev` evaluates this module again,
// so a stream opened before an edit still hears what is published after it.
import { sharedHub } from 'native-sse'

export const hub = sharedHub('events', { heartbeatMs: 15_000 })
