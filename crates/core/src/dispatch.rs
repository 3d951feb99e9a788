//! The dispatcher: one task on the runtime that wakes the readers of every log appended to.
//! Publishing only marks the log dirty and notifies this task, so the publishing thread pays
//! O(1) whatever the audience, and a burst of appends costs one pass over the readers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::state::HubState;
use crate::wakeup::DATA;

/// Wakes the writers of every log appended to since the last round, on the runtime's
/// threads: a burst of publishes costs one round, and the publishing thread none of it.
pub(crate) async fn dispatch(hub: Arc<HubState>) {
    let mut logs = Vec::new();
    loop {
        hub.dispatch.notified().await;
        std::mem::swap(&mut logs, &mut *hub.lock_dirty_logs());
        let registry = hub.read_registry();
        for log in logs.drain(..) {
            // A swap, not a store: it acquires what the appender released with its own swap,
            // so every append that found the flag set is visible to the writers woken here.
            log.dirty.swap(false, Ordering::AcqRel);
            let readers = match &log.name {
                None => Some(&registry.clients),
                Some(name) => registry.channels.get(name).map(|c| &c.subscribers),
            };
            for client in readers.into_iter().flat_map(HashMap::values) {
                client.wakeup.notify(DATA);
            }
        }
    }
}
