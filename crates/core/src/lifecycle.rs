//! How a client leaves: a close request (drained or cut, by the writer), and the one place its
//! departure is recorded (registry, cursors, counters, the embedder's `closed`), reached
//! exactly once whether the writer ended, panicked, or never started.

use std::sync::Arc;

use crate::client::{ClientShared, Phase};
use crate::close::CloseReason;
use crate::events::Departure;
use crate::hub::HubInner;
use crate::writer::Sink;

impl HubInner {
    pub(crate) fn close(&self, client: &ClientShared, reason: CloseReason) {
        if client.advance(Phase::Pending, Phase::Done) {
            self.finish(client.id, reason);
        } else {
            client.request_close(reason, self.sequence.committed());
        }
    }

    pub(crate) fn finish(&self, id: u64, reason: CloseReason) {
        let mut channels: Vec<Arc<str>> = Vec::new();
        let removed = {
            let mut registry = self.write_registry();
            let removed = registry.clients.remove(&id);
            if let Some(client) = &removed {
                let names: Vec<Arc<str>> = client
                    .lock_cursors()
                    .iter()
                    .filter_map(|c| c.log.name.clone())
                    .collect();
                // What it was still subscribed to (not the cursors an unsubscribe left
                // draining) is what this unsubscribes.
                channels = names
                    .into_iter()
                    .filter(|name| registry.unsubscribe(client, name, 0))
                    .collect();
            }
            removed
        };
        if let Some(client) = removed {
            // The broadcast cursor stops holding entries back (its writer has ended, or never
            // started); the channels' cursors left with their subscriptions.
            for cursor in client.lock_cursors().drain(..) {
                cursor.log.leave(cursor.next);
            }
            if let Some(transport) = client.mark_done().transport() {
                self.stats.writer_ended(transport);
            }
            self.stats.add_closed(reason);
            let departure = Departure {
                reason,
                delivered: client.delivered(),
                channels,
            };
            self.events.closed(id, departure);
        }
    }
}

/// One client's writer task: runs the writer over `sink`, then reports the close. The guard
/// comes first so that, should the writer panic, it is dropped last (parameters drop in
/// reverse order), after the sink released its socket.
pub(crate) async fn write_client<S: Sink>(
    mut guard: FinishGuard,
    mut sink: S,
    client: Arc<ClientShared>,
) {
    let hub = guard.hub.clone();
    guard.reason = Some(crate::writer::run(&mut sink, &client, &hub).await);
    // The sink (and a socket's descriptor) goes before the close is reported, so an
    // embedder counting descriptors after `closed` sees it released.
    drop(sink);
}

/// Reports the end of a writer task exactly once, including when the task panics or is
/// dropped by a runtime shutdown before it could report.
pub(crate) struct FinishGuard {
    pub hub: Arc<HubInner>,
    pub id: u64,
    pub reason: Option<CloseReason>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let reason = self.reason.unwrap_or(if std::thread::panicking() {
            CloseReason::Error
        } else {
            CloseReason::Server
        });
        self.hub.finish(self.id, reason);
    }
}
