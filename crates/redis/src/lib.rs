//! Fan-out of native-sse hubs across processes (and machines) through Redis.
//!
//! Every hub of a namespace publishes through one Lua script that numbers the event (one
//! counter per namespace), appends it to its channel's stream (trimmed like the channel's
//! history), and announces it on one pub/sub channel. Every hub, the publisher's included,
//! applies the announcements in position order, so all deliver the same events with the same
//! ids in the same order. Pub/sub is at-most-once: a hub that sees a position skip, or that
//! lost its subscription, reads what it missed from the streams before going on, and where a
//! stream no longer holds it, sends the channel's clients the reset signal.
//!
//! Two tasks on the hub's runtime, each with its own connection and reconnect loop (backoff
//! with jitter): the sender (`sender`) empties the bounded outbound buffer (`outbound`) in
//! order, and the receiver (`receiver`) subscribes, catches up and applies. Both share the
//! hub's `Bridge` (`bridge`: where to connect, both links' state, the counters), and each runs
//! under a supervisor (`supervisor`) that starts it again after a panic. This root only puts
//! them together (`Bridge::start`); no module uses it.
//!
//! Beside the events, signals: the embedder's text for the namespace's other processes
//! (`Bridge::send_signal`), published on a control channel (`{prefix}:signals`) and stored
//! nowhere. A third task, the signaler (`signaler`), with a connection of its own opened at
//! the first signal, publishes them in order from their bounded buffer (`signals`); the
//! receiver's subscription takes them along with the announcements, so a resubscription
//! covers both, and hands each to the embedder (`HubEvents::signal`). A hub hears the signals
//! sent while it is subscribed: one whose receiver was away (the `backend` report down, then
//! up) may have missed some.
//!
//! Why the `redis` crate: it is the maintained, tokio-native client (multiplexed pipelined
//! connection, pub/sub stream, `EVALSHA` scripts); its `ConnectionManager` reconnects but
//! fails the commands sent meanwhile and does not resubscribe by default, so the bridge owns
//! its retries (the outbound buffer) and its resubscription (the receiver's loop), and the
//! stream catch-up covers whatever pub/sub dropped in between.

mod announcement;
mod backoff;
mod bridge;
mod config;
mod keys;
mod outbound;
mod receiver;
mod scripts;
mod sender;
mod signaler;
mod signals;
mod supervisor;

use std::sync::Arc;

use native_sse_core::Hub;

pub use bridge::{Bridge, BridgeMetrics, SignalMetrics};
pub use config::RedisConfig;
pub use signals::{SignalTooLarge, MAX_SIGNAL_BYTES};
use supervisor::Task;

impl Bridge {
    /// Connects `hub` to Redis: publishes go through it from now on; the tasks connect in the
    /// background (a publish meanwhile waits in the buffer). Fails on an unusable URL.
    pub fn start(hub: &Hub, config: RedisConfig) -> Result<Arc<Bridge>, String> {
        let bridge = Arc::new(Bridge::new(hub.handle(), config)?);
        hub.set_backend(bridge.outbound.clone());
        hub.spawn(supervisor::supervise(
            bridge.clone(),
            Task::Sender,
            sender::run,
        ));
        hub.spawn(supervisor::supervise(
            bridge.clone(),
            Task::Receiver,
            receiver::run,
        ));
        hub.spawn(supervisor::supervise(
            bridge.clone(),
            Task::Signaler,
            signaler::run,
        ));
        Ok(bridge)
    }
}
