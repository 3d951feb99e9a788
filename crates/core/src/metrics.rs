//! What an operator reads: the counters, plus gauges taken from the channels' logs. Gathering
//! them costs one pass over the channels, never one over the clients, so a scrape of a hub
//! with a hundred thousand idle clients costs what one with ten does.

use std::sync::Arc;

use crate::hub::Hub;
use crate::stats::StatsSnapshot;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub stats: StatsSnapshot,
    /// Clients registered now, whatever their phase.
    pub clients: u64,
    /// Channels that exist now (with subscribers, or keeping history).
    pub channels: u64,
    /// How far the slowest reader of any log is behind its head now, in events and bytes.
    pub lag_events: u64,
    pub lag_bytes: u64,
    /// Frames and bytes the logs hold now (history, and what readers have not passed yet).
    pub held_events: u64,
    pub held_bytes: u64,
    pub worker_threads: u64,
    /// Per channel, when asked for.
    pub per_channel: Vec<ChannelMetrics>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMetrics {
    pub name: Arc<str>,
    pub subscribers: u64,
    pub lag_events: u64,
    pub lag_bytes: u64,
    pub held_events: u64,
    pub held_bytes: u64,
}

impl Hub {
    /// The hub's figures. `per_channel`: how many channels to list at most in `per_channel`
    /// (None: none). Listed are those with the most subscribers (ties: by name), in name
    /// order: an exposition repeats each one's name on several lines, and a hub of a million
    /// channels would make a string no scrape can take.
    pub fn metrics(&self, per_channel: Option<usize>) -> Metrics {
        let inner = self.inner();
        let registry = inner.read_registry();
        let mut metrics = Metrics {
            stats: inner.stats.snapshot(),
            clients: registry.clients.len() as u64,
            channels: registry.channels.len() as u64,
            worker_threads: inner.config.worker_threads as u64,
            ..Default::default()
        };
        let mut add = |log: &crate::log::ChannelLog| {
            let lag = log.slowest_lag();
            let (held_events, held_bytes) = log.held();
            metrics.lag_events = metrics.lag_events.max(lag.events);
            metrics.lag_bytes = metrics.lag_bytes.max(lag.bytes);
            metrics.held_events += held_events as u64;
            metrics.held_bytes += held_bytes as u64;
            (lag, held_events as u64, held_bytes as u64)
        };
        add(&inner.broadcast_log);
        let mut channels = Vec::new();
        for (name, channel) in &registry.channels {
            let (lag, held_events, held_bytes) = add(&channel.log);
            if per_channel.is_some() {
                channels.push(ChannelMetrics {
                    name: name.clone(),
                    subscribers: channel.subscribers.len() as u64,
                    lag_events: lag.events,
                    lag_bytes: lag.bytes,
                    held_events,
                    held_bytes,
                });
            }
        }
        if let Some(limit) = per_channel {
            if channels.len() > limit {
                // The most subscribed first; among equals the name decides, so a scrape lists
                // the same channels as the last one while nothing changed.
                let order = |a: &ChannelMetrics, b: &ChannelMetrics| {
                    b.subscribers
                        .cmp(&a.subscribers)
                        .then_with(|| a.name.cmp(&b.name))
                };
                if limit > 0 {
                    channels.select_nth_unstable_by(limit - 1, order);
                }
                channels.truncate(limit);
            }
        }
        channels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        metrics.per_channel = channels;
        metrics
    }
}

/// Per-client queue levels, summed over the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLevels {
    pub clients: usize,
    pub queued_events: usize,
    pub queued_bytes: usize,
    /// The largest byte level of any one client: the figure the per-client bound applies to.
    pub max_client_bytes: usize,
    /// Frames and bytes the logs hold, once however many clients read them.
    pub held_events: usize,
    pub held_bytes: usize,
}

impl Hub {
    pub fn queue_levels(&self) -> QueueLevels {
        let registry = self.inner.read_registry();
        let clients = &registry.clients;
        let mut levels = QueueLevels {
            clients: clients.len(),
            ..Default::default()
        };
        for client in clients.values() {
            let mut events = client.mailbox.queued_events();
            let mut bytes = client.mailbox.queued_bytes();
            for cursor in client.lock_cursors().iter() {
                let lag = cursor.log.lag(cursor.next);
                events += lag.events as usize;
                bytes += lag.bytes as usize;
            }
            levels.queued_events += events;
            levels.queued_bytes += bytes;
            levels.max_client_bytes = levels.max_client_bytes.max(bytes);
        }
        let logs = std::iter::once(&self.inner.broadcast_log)
            .chain(registry.channels.values().map(|c| &c.log));
        for log in logs {
            let (events, bytes) = log.held();
            levels.held_events += events;
            levels.held_bytes += bytes;
        }
        levels
    }
}
