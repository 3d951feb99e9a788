//! The task that sends parked writers their heartbeats: it sleeps until the earliest entry of
//! the hub's `HeartbeatQueue`, then resumes each writer whose heartbeat is due (the writer
//! writes it at once, as its own timer would have) and queues again those that wrote since.

use std::sync::Arc;

use tokio::time::{sleep_until, Instant};

use crate::state::HubState;
use crate::wakeup::HeartbeatDue;

/// Clients handled before the task yields, so a heartbeat wave at 100,000 idle clients does
/// not hold a worker thread from every connection.
const PER_TURN: usize = 1024;

pub(crate) async fn send_heartbeats(hub: Arc<HubState>) {
    let queue = &hub.heartbeats;
    let period = hub.config.heartbeat;
    let mut due = Vec::with_capacity(PER_TURN);
    loop {
        match queue.next() {
            None => queue.earlier.notified().await,
            Some(at) if at > Instant::now() => {
                tokio::select! {
                    () = sleep_until(at) => {}
                    () = queue.earlier.notified() => {}
                }
            }
            Some(_) => {
                let now = Instant::now();
                queue.take_due(now, PER_TURN, &mut due);
                for id in due.drain(..) {
                    // A client that left meanwhile has no entry to keep.
                    let Some(client) = hub.client(id) else {
                        continue;
                    };
                    match client.wakeup.heartbeat_due(now, client.heartbeat(period)) {
                        HeartbeatDue::Resume(writer) => writer.resume(),
                        HeartbeatDue::Later(at) => queue.push(at, id),
                        HeartbeatDue::Running => {}
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    }
}
