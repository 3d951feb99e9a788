//! Event ids the hub makes, and what a client's `Last-Event-ID` resumes to.
//!
//! With history on, an event published without an id gets `{epoch}-{seq}` (hex): opaque to
//! clients, increasing within a hub, and carrying the hub's epoch, a random number drawn when
//! the hub starts, so an id from another hub or from before a restart is recognised as foreign
//! instead of being taken for a position here. App-given ids are looked up in the logs' index.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a client's `Last-Event-ID` could not be resumed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// Neither an id this hub made nor an app id its history holds.
    Unknown,
    /// An id made by another hub, or by this process before a restart.
    Foreign,
    /// The history no longer reaches back to it.
    Expired,
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
