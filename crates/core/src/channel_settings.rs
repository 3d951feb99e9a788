//! What an application set on one channel (its own history, a cap on subscribers) and the
//! history holds of the streams published into it. They live on the channel and go with it:
//! kept in tables of their own, they outlived their channels (a million one-off channels left
//! a million entries, and the expiry task walked all of them on every sweep).

use std::time::{Duration, Instant};

use crate::config::History;
use crate::gzip::GzipSettings;

/// How long settings keep a channel that nothing else keeps (no subscriber, nothing held):
/// long enough for a handler that gives them and then awaits its own checks before it
/// attaches or publishes, short enough that a million one-off names given settings and never
/// used (600 B each) come back soon. Settings meant for good are `createHub({ channels })`'s.
pub(crate) const SETTINGS_GRACE: Duration = Duration::from_secs(10);

/// Settings the application gave for good (`createHub({ channels })`): they apply whenever the
/// channel exists, and cost one entry per name the application wrote down.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StandingSettings {
    pub history: Option<History>,
    pub cap: Option<usize>,
    pub compression: ChannelCompression,
}

/// How one channel's log compresses for the gzip clients of a compressing hub. A channel
/// whose events do not shrink (already compressed or encrypted payloads, one-token deltas)
/// is better sent as stored blocks: no deflate work, and the bytes are the plain ones plus 5
/// per event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelCompression {
    /// The hub's settings.
    #[default]
    Hub,
    /// Not compressed.
    Off,
    /// These settings instead of the hub's.
    With(GzipSettings),
}

impl ChannelCompression {
    /// The settings its log compresses with when the hub's are `hub` (None: the hub does not
    /// compress, so no client reads gzip and nothing is compressed).
    pub fn resolve(self, hub: Option<GzipSettings>) -> Option<GzipSettings> {
        match self {
            ChannelCompression::Hub => hub,
            ChannelCompression::Off => None,
            ChannelCompression::With(own) => hub.map(|_| own),
        }
    }
}

/// A history a stream needs its channel to keep while it runs and, once it ended, for its
/// age bound: the stream's retention covers the stream, not the channel for good.
#[derive(Debug, Clone, Copy)]
struct Hold {
    id: u64,
    history: History,
    /// None while the stream runs; then when its retention ends (None again for a history
    /// with no age bound: kept by count and bytes, for good).
    until: Option<Instant>,
    released: bool,
}

#[derive(Debug, Default)]
pub(crate) struct ChannelSettings {
    /// The channel's own history; None: the hub's.
    pub history: Option<History>,
    /// At most this many subscribers; None: no cap.
    pub cap: Option<usize>,
    /// How its log compresses; None: the standing setting, or the hub's.
    pub compression: Option<ChannelCompression>,
    /// Settings given now keep the channel until then, used or not.
    kept_until: Option<Instant>,
    holds: Vec<Hold>,
}

impl ChannelSettings {
    /// Called each time the application gives settings: they keep the channel a while.
    pub fn configured(&mut self, now: Instant) -> Instant {
        let until = now + SETTINGS_GRACE;
        self.kept_until = Some(until);
        until
    }

    pub fn hold(&mut self, id: u64, history: History) {
        self.holds.push(Hold {
            id,
            history,
            until: None,
            released: false,
        });
    }

    /// Starts hold `id`'s retention; returns when it ends (None: never, or no such hold).
    pub fn release(&mut self, id: u64, now: Instant) -> Option<Instant> {
        let hold = self.holds.iter_mut().find(|h| h.id == id && !h.released)?;
        hold.released = true;
        hold.until = hold.history.max_age.map(|age| now + age);
        hold.until
    }

    /// Drops the holds whose retention ended; true if any did.
    pub fn drop_ended_holds(&mut self, now: Instant) -> bool {
        let before = self.holds.len();
        self.holds
            .retain(|h| !h.released || h.until.is_none_or(|until| until > now));
        self.holds.len() != before
    }

    /// Whether the settings (or a hold) keep the channel at `now`, used or not.
    pub fn keep(&self, now: Instant) -> bool {
        self.kept_until.is_some_and(|until| until > now) || !self.holds.is_empty()
    }

    /// What the channel's log keeps: its own history (or `base`, the standing or the hub's),
    /// widened by every hold. A hold keeps its stream whole, by count and bytes only: its age
    /// bound counts from the stream's end (`release`, then `drop_ended_holds`), not from each
    /// event, or a stream running longer than its `maxAgeMs` lost its first events while it
    /// ran and the rest the moment it ended.
    pub fn effective_history(&self, base: History) -> History {
        self.holds
            .iter()
            .fold(self.history.unwrap_or(base), |kept, hold| {
                let whole = History {
                    max_age: None,
                    ..hold.history
                };
                widest(kept, whole)
            })
    }
}

/// A history that keeps whatever either keeps.
fn widest(a: History, b: History) -> History {
    if !a.is_on() {
        return b;
    }
    if !b.is_on() {
        return a;
    }
    History {
        max_events: a.max_events.max(b.max_events),
        max_bytes: a.max_bytes.max(b.max_bytes),
        max_age: match (a.max_age, b.max_age) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: History = History {
        max_events: 0,
        max_bytes: 0,
        max_age: None,
    };

    fn kept(events: usize, age_ms: Option<u64>) -> History {
        History {
            max_events: events,
            max_bytes: 1 << 20,
            max_age: age_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn a_hold_widens_the_channel_history_until_its_retention_ends() {
        let now = Instant::now();
        let mut settings = ChannelSettings {
            history: Some(OFF),
            ..Default::default()
        };
        assert!(!settings.effective_history(kept(10, None)).is_on());
        settings.hold(1, kept(100, Some(1000)));
        assert_eq!(settings.effective_history(OFF).max_events, 100);
        assert_eq!(
            settings.effective_history(kept(10, Some(50))).max_age,
            None,
            "no event of a held stream ages out: its age bound runs from its end"
        );
        assert!(settings.keep(now), "a running stream keeps its channel");
        let until = settings.release(1, now).expect("an age bound ends it");
        assert_eq!(until, now + Duration::from_millis(1000));
        assert!(!settings.drop_ended_holds(now + Duration::from_millis(999)));
        assert_eq!(settings.effective_history(OFF).max_events, 100);
        assert_eq!(settings.effective_history(OFF).max_age, None);
        assert!(settings.drop_ended_holds(until));
        assert!(
            !settings.effective_history(OFF).is_on(),
            "back to the channel's own"
        );
        assert!(!settings.keep(until));
    }

    #[test]
    fn the_widest_history_wins_bound_by_bound_and_no_age_bound_is_the_widest() {
        let merged = widest(kept(10, Some(500)), kept(5, Some(900)));
        assert_eq!(merged.max_events, 10);
        assert_eq!(merged.max_age, Some(Duration::from_millis(900)));
        assert_eq!(widest(kept(10, None), kept(5, Some(900))).max_age, None);
        assert_eq!(widest(OFF, kept(5, Some(900))).max_events, 5);
    }

    #[test]
    fn settings_keep_a_channel_for_the_grace_after_each_configuration() {
        let now = Instant::now();
        let mut settings = ChannelSettings::default();
        assert!(!settings.keep(now));
        let until = settings.configured(now);
        assert!(settings.keep(until - Duration::from_millis(1)));
        assert!(!settings.keep(until));
    }

    #[test]
    fn releasing_twice_or_an_unknown_hold_does_nothing() {
        let now = Instant::now();
        let mut settings = ChannelSettings::default();
        settings.hold(7, kept(10, Some(10)));
        assert!(settings.release(8, now).is_none());
        assert!(settings.release(7, now).is_some());
        assert!(settings.release(7, now).is_none());
    }
}
