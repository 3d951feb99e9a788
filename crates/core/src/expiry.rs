//! Age bounds that hold without traffic: a task that trims every log whose history has an age
//! bound, and drops the channels left holding nothing for nobody. Without it a log is trimmed
//! only when touched, so a quiet channel kept its old events and an abandoned one its place
//! (with `maxAgeMs: 200`, every event was still held 500 ms later).

use std::sync::Arc;
use std::time::Duration;

use crate::state::HubState;

/// A sweep at least this often when some history has an age bound, so an event outlives its
/// bound by at most about a quarter of it (and never by more than this).
const LONGEST_PERIOD: Duration = Duration::from_secs(1);
/// ...and no more often than this, however small the bound.
const SHORTEST_PERIOD: Duration = Duration::from_millis(25);

pub(crate) async fn expire(hub: Arc<HubState>) {
    loop {
        let smallest = hub.read_registry().smallest_max_age(&hub.config);
        let period = smallest.map_or(LONGEST_PERIOD, |age| {
            (age / 4).clamp(SHORTEST_PERIOD, LONGEST_PERIOD)
        });
        tokio::time::sleep(period).await;
        if smallest.is_some() {
            sweep(&hub);
        }
    }
}

/// Trims the logs with an age bound, then drops the channels among them that nobody reads
/// and that hold nothing now. Only logs with an age bound change without traffic, so only
/// they are visited; the write lock is taken only when a channel goes.
fn sweep(hub: &HubState) {
    if hub.broadcast_log.max_age().is_some() {
        hub.broadcast_log.expire();
    }
    let unused: Vec<Arc<str>> = {
        let registry = hub.read_registry();
        registry
            .channels
            .iter()
            .filter(|(_, channel)| channel.log.max_age().is_some())
            .filter_map(|(name, channel)| {
                let empty = channel.log.expire().is_some();
                (empty && channel.subscribers.is_empty()).then(|| name.clone())
            })
            .collect()
    };
    if unused.is_empty() {
        return;
    }
    let mut registry = hub.write_registry();
    for name in unused {
        // Checked again: someone may have subscribed, or published, in between.
        registry.remove_if_unused(&name);
    }
}
