//! Event ids the hub makes, and what a client's `Last-Event-ID` resumes to: resuming is
//! placing the client's cursors just past that event (`placement`), and the writer catching up.
//!
//! With history on, an event published without an id gets `{epoch}-{seq}` (hex): opaque to
//! clients, increasing within a hub, and carrying the hub's epoch, a random number drawn when
//! the hub starts, so an id from another hub or from before a restart is recognised as foreign
//! instead of being taken for a position here. App-given ids are looked up in the logs' index.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::log::{AppId, ChannelLog};

/// Why a client's `Last-Event-ID` could not be resumed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// Neither an id this hub made nor an app id its history holds.
    Unknown,
    /// An id made by another hub, or by this process before a restart.
    Foreign,
    /// The history no longer reaches back to it.
    Expired,
    /// An id the application gave more than one event the client's logs still hold: which of
    /// them the client saw last cannot be told, and resuming after either could skip events.
    Ambiguous,
    /// Sent on a live stream, not at attach: events published through the shared backend
    /// were lost on their way to this process (pub/sub is at-most-once) and its stream no
    /// longer held them when the hub went back for them.
    Gap,
}

impl ResetReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Unknown => "unknown",
            ResetReason::Foreign => "foreign",
            ResetReason::Expired => "expired",
            ResetReason::Ambiguous => "ambiguous",
            ResetReason::Gap => "gap",
        }
    }
}

/// What attaching with a `Last-Event-ID` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No id was given, or none of the client's logs keeps history.
    None,
    /// The client's cursors were placed just past that event: it gets everything after it.
    Replayed,
    /// It could not be placed: the client got the reset event and starts at the head.
    Reset(ResetReason),
}

/// What an id says about where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdOrigin {
    /// Made by this hub: the event's sequence number.
    Ours(u64),
    /// Made by another hub (or this one before a restart).
    Foreign,
    /// Not in the hub's format.
    NotHubMade,
}

/// A hub's epoch. Fed from a shared backend, the hub takes the backend's instead of its own,
/// so every process makes the same ids.
pub(crate) struct Epoch(AtomicU32);

impl Epoch {
    /// A random epoch: the hasher's per-process random keys, mixed with the time.
    pub fn new() -> Self {
        Epoch(AtomicU32::new(random_epoch()))
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    pub fn set(&self, epoch: u32) {
        self.0.store(epoch, Ordering::Release);
    }

    pub fn event_id(&self, seq: u64) -> String {
        format!("{:08x}-{seq:x}", self.get())
    }

    pub fn origin(&self, id: &str) -> IdOrigin {
        let Some((epoch, seq)) = id.split_once('-') else {
            return IdOrigin::NotHubMade;
        };
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        if epoch.len() != 8 || !hex(epoch) || seq.len() > 16 || !hex(seq) {
            return IdOrigin::NotHubMade;
        }
        match (u32::from_str_radix(epoch, 16), u64::from_str_radix(seq, 16)) {
            (Ok(epoch), Ok(seq)) if epoch == self.get() => IdOrigin::Ours(seq),
            (Ok(_), Ok(_)) => IdOrigin::Foreign,
            _ => IdOrigin::NotHubMade,
        }
    }
}

/// The hasher's per-process random keys, mixed with the time.
pub fn random_epoch() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    hasher.write_u64(now);
    hasher.finish() as u32
}

/// Where a client attaching with `last_event_id` starts reading `logs` (the broadcast log and
/// its channels'): just past that event, as a sequence number, when every log that keeps
/// history still holds everything published after it; otherwise at the head, with the reason
/// the client is sent the reset signal. An empty id, or logs without history, is a plain start.
/// `last_position`: the newest position this hub knows; an id of ours beyond it is unknown.
pub(crate) fn placement(
    last_event_id: Option<&str>,
    logs: &[Arc<ChannelLog>],
    epoch: &Epoch,
    last_position: u64,
) -> (Resume, Option<u64>) {
    match last_event_id.filter(|id| !id.is_empty()) {
        Some(event_id) if logs.iter().any(|log| log.has_history()) => {
            match place(event_id, logs, epoch, last_position) {
                Ok(seq) => (Resume::Replayed, Some(seq)),
                Err(reason) => (Resume::Reset(reason), None),
            }
        }
        _ => (Resume::None, None),
    }
}

fn place(
    event_id: &str,
    logs: &[Arc<ChannelLog>],
    epoch: &Epoch,
    last_position: u64,
) -> Result<u64, ResetReason> {
    let mut found = logs.iter().filter_map(|l| l.find_app_id(event_id));
    let seq = match (found.next(), found.next()) {
        (Some(AppId::Once(seq)), None) => seq,
        (Some(_), _) => return Err(ResetReason::Ambiguous),
        (None, _) => match epoch.origin(event_id) {
            IdOrigin::Ours(position) if position <= last_position => position,
            IdOrigin::Foreign => return Err(ResetReason::Foreign),
            IdOrigin::Ours(_) | IdOrigin::NotHubMade => return Err(ResetReason::Unknown),
        },
    };
    // A log that still indexes the id covers it only if it still holds what followed: one
    // whose history went off (a stream's hold ended) may have dropped that already, and a
    // client placed after it would get nothing, neither the events nor the reset.
    let covered = logs
        .iter()
        .filter(|log| log.has_history() || log.find_app_id(event_id).is_some())
        .all(|log| log.covers(seq));
    if covered {
        Ok(seq)
    } else {
        Err(ResetReason::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_other_epochs_are_foreign() {
        let ours = Epoch(AtomicU32::new(0x1234abcd));
        assert_eq!(ours.event_id(0x2f), "1234abcd-2f");
        assert_eq!(ours.origin("1234abcd-2f"), IdOrigin::Ours(0x2f));
        assert_eq!(ours.origin("0badf00d-2f"), IdOrigin::Foreign);
        for other in [
            "",
            "42",
            "evt-7",
            "1234abcd-",
            "1234abcd-zz",
            "1234abc-2f",
            "1234abcd-2f-1",
        ] {
            assert_eq!(ours.origin(other), IdOrigin::NotHubMade, "{other:?}");
        }
        assert_ne!(
            Epoch::new().get(),
            Epoch::new().get(),
            "two hubs, two epochs"
        );
    }
}
