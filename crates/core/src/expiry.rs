//! Bounds that hold without traffic: a task that trims every log whose history has an age
//! bound, drops the channels left holding nothing for nobody, and looks again at channels
//! that settings or a stream's hold kept for a while. Without it a log is trimmed only when
//! touched, so a quiet channel kept its old events and an abandoned one its place (with
//! `maxAgeMs: 200`, every event was still held 500 ms later).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::HubState;

/// A sweep at least this often, so an event outlives its age bound by at most about a
/// quarter of it (and never by more than this), and a channel its settings by this.
const LONGEST_PERIOD: Duration = Duration::from_secs(1);
/// ...and no more often than this, however small the bound.
const SHORTEST_PERIOD: Duration = Duration::from_millis(25);
/// A sweep may take at most this share of the time between two: with very many channels
/// (a million, each with an age bound) the period stretches instead of taking a core.
const MOST_BUSY: u32 = 10;

/// Channels revisited (and maybe removed) under one hold of the registry's write lock.
const REVISIT_BATCH: usize = 4096;

pub(crate) async fn expire(hub: Arc<HubState>) {
    let mut period = LONGEST_PERIOD;
    loop {
        tokio::time::sleep(period).await;
        let started = Instant::now();
        let smallest = sweep(&hub, started);
        // Only the walk repeats every period; what the revisits cost is paid once.
        let walk = started.elapsed();
        // A wave of settings given at once ends at once: taken a batch at a time, so that
        // attaches and publishes get the lock in between.
        if hub.read_registry().revisit_is_due(started) {
            while hub
                .write_registry()
                .revisit_due(started, &hub.config, REVISIT_BATCH)
            {
                tokio::task::yield_now().await;
            }
        }
        if hub.read_registry().is_sparse() {
            hub.write_registry().shrink_if_sparse();
        }
        period = smallest
            .map_or(LONGEST_PERIOD, |age| {
                (age / 4).clamp(SHORTEST_PERIOD, LONGEST_PERIOD)
            })
            .max(walk * MOST_BUSY);
    }
}

/// Trims the logs with an age bound and drops the channels among them that nobody reads and
/// that hold nothing now. Only logs with an age bound change without traffic, so only they
/// are trimmed; the write lock is taken only when a channel may go, a batch at a time.
/// Returns the smallest age bound seen, for the next period.
fn sweep(hub: &HubState, now: Instant) -> Option<Duration> {
    let mut smallest = hub.broadcast_log.max_age();
    if smallest.is_some() {
        hub.broadcast_log.expire();
    }
    let unused = {
        let registry = hub.read_registry();
        let mut unused: Vec<Arc<str>> = Vec::new();
        for (name, channel) in registry.channels.iter() {
            let Some(age) = channel.log.max_age() else {
                continue;
            };
            smallest = Some(smallest.map_or(age, |s| s.min(age)));
            let empty = channel.log.expire().is_some();
            // One that settings keep is revisited when they stop keeping it.
            if empty && channel.subscribers.is_empty() && !channel.kept_by_settings(now) {
                unused.push(name.clone());
            }
        }
        unused
    };
    for batch in unused.chunks(REVISIT_BATCH) {
        let mut registry = hub.write_registry();
        for name in batch {
            // Checked again: someone may have subscribed, or published, in between.
            registry.remove_if_unused(name);
        }
    }
    smallest
}
