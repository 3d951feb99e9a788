//! The staged close. New clients are refused at once; each connected client, at its own
//! moment within a window, gets a `retry:` drawn with jitter and the optional farewell event,
//! then its stream ends once what was queued for it is written (within the drain limit).
//!
//! Why: closed in the same instant, thousands of clients reconnect to the next instance in the
//! same second. Closed one after another over the window, in random order, and told to wait
//! different times before reconnecting, they arrive as a ramp.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::error::SseError;
use crate::frame::{retry_frame, Message};
use crate::hub::Hub;
use crate::state::HubState;

/// How a staged close goes.
#[derive(Debug, Clone, Copy)]
pub struct StagedClose<'a> {
    /// How long each client may take to receive what was queued for it, from its turn on;
    /// then it is cut.
    pub drain: Duration,
    /// The window the clients' turns are spread over.
    pub spread: Duration,
    /// Each client's `retry:` is drawn from `retry_ms ..= retry_ms + retry_jitter_ms`.
    pub retry_ms: u64,
    pub retry_jitter_ms: u64,
    /// The last event every client gets.
    pub farewell: Option<&'a Message<'a>>,
}

impl StagedClose<'_> {
    /// Each client gets this long to receive what was queued for it: a few round trips of a
    /// slow mobile link, short enough for a rolling restart.
    pub const DEFAULT_DRAIN: Duration = Duration::from_millis(5000);
    /// The `retry:` base when neither the close nor the hub sets one.
    pub const DEFAULT_RETRY_MS: u64 = 1000;
    /// Spreads the reconnects of a whole node's clients over a second.
    pub const DEFAULT_RETRY_JITTER_MS: u64 = 1000;
}

impl Hub {
    /// Starts a staged close (see the module): returns at once, with every new client refused
    /// from now on. Each client's departure is reported as usual, with reason `Server`.
    /// Whether `close_staged(plan)` would start: its farewell encodes, and the hub is open.
    /// Starts nothing, so an embedder can refuse a bad plan before it stops anything itself.
    pub fn check_staged_close(&self, plan: &StagedClose<'_>) -> Result<(), SseError> {
        plan.farewell.map(|m| self.encode(m)).transpose()?;
        self.runtime().ok_or(SseError::HubClosed)?;
        Ok(())
    }

    pub fn close_staged(&self, plan: StagedClose<'_>) -> Result<(), SseError> {
        let farewell = plan.farewell.map(|m| self.encode(m)).transpose()?;
        let runtime = self.runtime().ok_or(SseError::HubClosed)?;
        let inner = self.inner();
        let drain_ms = u64::try_from(plan.drain.as_millis()).unwrap_or(u64::MAX);
        inner
            .drain_limit_ms
            .store(drain_ms.max(1), Ordering::Release);
        let clients = inner.stop_accepting();
        let turns = Turns {
            spread: plan.spread,
            retry_ms: plan.retry_ms,
            retry_jitter_ms: plan.retry_jitter_ms,
            farewell,
        };
        runtime.spawn(close_in_turns(inner.clone(), clients, turns));
        Ok(())
    }
}

struct Turns {
    spread: Duration,
    retry_ms: u64,
    retry_jitter_ms: u64,
    farewell: Option<Bytes>,
}

async fn close_in_turns(hub: Arc<HubState>, mut clients: Vec<Arc<ClientShared>>, turns: Turns) {
    let mut random = SplitMix64::seeded();
    // Fisher-Yates: turns go in random order, not the order clients came in.
    for i in (1..clients.len()).rev() {
        let j = random.below(i as u64 + 1) as usize;
        clients.swap(i, j);
    }
    let start = Instant::now();
    let count = clients.len().max(1) as f64;
    for (turn, client) in clients.into_iter().enumerate() {
        // Evenly spaced turns: random slots would bunch up by chance.
        tokio::time::sleep_until(start + turns.spread.mul_f64(turn as f64 / count)).await;
        let retry = turns.retry_ms + random.below(turns.retry_jitter_ms.saturating_add(1));
        let frames = std::iter::once(retry_frame(retry, true)).chain(turns.farewell.clone());
        hub.deliver(&client, frames);
        hub.close(&client, CloseReason::Server);
    }
}

/// Jitter needs spread, not secrecy: a small generator seeded from the std's random keys.
struct SplitMix64(u64);

impl SplitMix64 {
    fn seeded() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        SplitMix64(hasher.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound` for jitter (the modulo bias is below 2^-40 here).
    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        self.next() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_frame_sets_retry_and_starts_as_a_comment() {
        assert_eq!(&retry_frame(1234, true)[..], b":\nretry: 1234\n\n");
    }

    #[test]
    fn jitter_draws_differ_and_stay_in_bounds() {
        let mut random = SplitMix64::seeded();
        let draws: Vec<u64> = (0..1000).map(|_| random.below(1001)).collect();
        assert!(draws.iter().all(|d| *d <= 1000));
        let mut distinct = draws.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 500, "{} distinct of 1000", distinct.len());
        assert_eq!(random.below(1), 0);
    }
}
