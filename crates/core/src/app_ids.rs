//! The index of application-given event ids a log holds (history only), by which a
//! `Last-Event-ID` is found. Most ids are kept one by one. A resumable stream's ids are not:
//! `<stream>.<n>` with `n` counting up, one per token, appended one after another to its
//! channel's log. Kept one by one, each token cost an id string and an index slot (about
//! 100 bytes on top of its frame); here a run of them costs one `Run`, and each entry a
//! reference to the stream's name, allocated once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a log holds under an application's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppId {
    /// One held event has it, at this position.
    Once(u64),
    /// More than one held event has it.
    Repeated,
}

/// What an entry keeps of its id, to take it out of the index when the entry goes.
pub(crate) enum IdRef {
    /// Indexed on its own: the index's key.
    Key(Arc<str>),
    /// Part of a run of `<prefix>.<n>` ids: the prefix.
    Run(Arc<str>),
}

/// Consecutive entries of a log (by offset) whose ids are `<prefix>.<n>` with `n` counting up.
struct Run {
    first_n: u64,
    first_offset: u64,
    len: u64,
}

#[derive(Default)]
pub(crate) struct AppIds {
    /// Ids kept one by one: the newest position with the id, and how many held entries have it.
    keys: HashMap<Arc<str>, (u64, u32)>,
    /// Runs by prefix, oldest first.
    runs: HashMap<Arc<str>, Runs>,
}

/// A prefix's runs, with the prefix itself: what each of their entries keeps (one lookup per
/// append finds both).
struct Runs {
    prefix: Arc<str>,
    runs: VecDeque<Run>,
}

/// `<prefix>.<n>` with `n` written as Rust would write it (no sign, no leading zero): only
/// then does the number name that one string.
fn numbered(id: &str) -> Option<(&str, u64)> {
    let (prefix, digits) = id.rsplit_once('.')?;
    if prefix.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    Some((prefix, digits.parse().ok()?))
}

impl AppIds {
    /// Indexes `id` for the entry appended at `offset` (the log's count of appends) and
    /// `position`; returns what the entry keeps.
    pub fn add(&mut self, id: &str, offset: u64, position: u64) -> IdRef {
        if let Some((prefix, n)) = numbered(id) {
            if let Some(Runs { prefix, runs }) = self.runs.get_mut(prefix) {
                match runs.back_mut() {
                    Some(last)
                        if last.first_n + last.len == n
                            && last.first_offset + last.len == offset =>
                    {
                        last.len += 1;
                    }
                    _ => runs.push_back(Run {
                        first_n: n,
                        first_offset: offset,
                        len: 1,
                    }),
                }
                return IdRef::Run(prefix.clone());
            }
            // A prefix seen for the first time starts a run only at its stream's first ids:
            // `<id>.0` (its start event) or `<id>.1`. Other numbered ids stay keys.
            if n <= 1 {
                let prefix: Arc<str> = Arc::from(prefix);
                let runs = VecDeque::from([Run {
                    first_n: n,
                    first_offset: offset,
                    len: 1,
                }]);
                self.runs.insert(
                    prefix.clone(),
                    Runs {
                        prefix: prefix.clone(),
                        runs,
                    },
                );
                return IdRef::Run(prefix);
            }
        }
        let key = match self.keys.get_key_value(id) {
            Some((key, _)) => key.clone(),
            None => Arc::from(id),
        };
        let count = self.keys.entry(key.clone()).or_insert((position, 0));
        *count = (position, count.1 + 1);
        IdRef::Key(key)
    }

    /// The entry at `offset`, the oldest held, goes.
    pub fn remove(&mut self, id: IdRef, offset: u64) {
        match id {
            IdRef::Key(key) => {
                if let Some((_, count)) = self.keys.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        self.keys.remove(&key);
                    }
                }
            }
            IdRef::Run(prefix) => {
                let Some(Runs { runs, .. }) = self.runs.get_mut(&prefix) else {
                    return;
                };
                if let Some(first) = runs.front_mut() {
                    debug_assert_eq!(first.first_offset, offset, "entries leave oldest first");
                    first.first_n += 1;
                    first.first_offset += 1;
                    first.len -= 1;
                    if first.len == 0 {
                        runs.pop_front();
                    }
                }
                if runs.is_empty() {
                    self.runs.remove(&prefix);
                }
            }
        }
    }

    /// Where the held event the application gave `id` is: `Once` with its offset (runs) or
    /// position (keys), told apart by `position_of`, which maps a run's offset to a position.
    pub fn find(&self, id: &str, position_of: impl Fn(u64) -> Option<u64>) -> Option<AppId> {
        let mut found: Option<u64> = None;
        let mut count = 0u32;
        if let Some(&(position, n)) = self.keys.get(id) {
            found = Some(position);
            count += n;
        }
        if let Some((prefix, n)) = numbered(id) {
            for run in self.runs.get(prefix).into_iter().flat_map(|r| &r.runs) {
                if run.first_n <= n && n < run.first_n + run.len {
                    found = position_of(run.first_offset + (n - run.first_n));
                    count += 1;
                }
            }
        }
        match count {
            0 => None,
            1 => found.map(AppId::Once),
            _ => Some(AppId::Repeated),
        }
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_numbers_are_numbered() {
        assert_eq!(numbered("s.0"), Some(("s", 0)));
        assert_eq!(numbered("a.b.12"), Some(("a.b", 12)));
        for id in [
            "s",
            "s.",
            ".1",
            "s.01",
            "s.+1",
            "s.1a",
            "s.99999999999999999999",
        ] {
            assert_eq!(numbered(id), None, "{id}");
        }
    }

    /// Offsets map to positions as a log's would: position = offset * 10.
    fn find(ids: &AppIds, id: &str) -> Option<AppId> {
        ids.find(id, |offset| Some(offset * 10))
    }

    #[test]
    fn a_stream_is_one_run_and_its_ids_are_found_until_they_leave() {
        let mut ids = AppIds::default();
        let refs: Vec<IdRef> = (0..5)
            .map(|n| ids.add(&format!("s.{n}"), n, n * 10))
            .collect();
        assert_eq!(ids.runs.get("s").map(|r| r.runs.len()), Some(1));
        assert!(ids.keys.is_empty());
        assert_eq!(find(&ids, "s.3"), Some(AppId::Once(30)));
        assert_eq!(find(&ids, "s.5"), None);
        assert_eq!(find(&ids, "s.03"), None);
        for (offset, id) in refs.into_iter().enumerate().take(4) {
            ids.remove(id, offset as u64);
        }
        assert_eq!(find(&ids, "s.3"), None);
        assert_eq!(find(&ids, "s.4"), Some(AppId::Once(40)));
    }

    #[test]
    fn interleaved_events_split_runs_and_the_same_stream_twice_is_repeated() {
        let mut ids = AppIds::default();
        ids.add("s.0", 0, 0);
        ids.add("s.1", 1, 10);
        ids.add("other", 2, 20);
        ids.add("s.2", 3, 30);
        assert_eq!(ids.runs.get("s").map(|r| r.runs.len()), Some(2));
        assert_eq!(find(&ids, "s.2"), Some(AppId::Once(30)));
        assert_eq!(find(&ids, "other"), Some(AppId::Once(20)));
        // The stream again with the same id: each of its ids is now held twice.
        ids.add("s.0", 4, 40);
        ids.add("s.1", 5, 50);
        assert_eq!(find(&ids, "s.1"), Some(AppId::Repeated));
        assert_eq!(find(&ids, "s.2"), Some(AppId::Once(30)));
        // An app's own "s.1" beside the stream's.
        let mut mixed = AppIds::default();
        mixed.add("s.1", 0, 0);
        mixed.add("x.7", 1, 10);
        assert_eq!(
            find(&mixed, "x.7"),
            Some(AppId::Once(10)),
            "a number above 1 first is a key"
        );
        assert!(mixed.keys.contains_key("x.7"));
    }
}
