//! The index of application-given event ids a log holds (history only), by which a
//! `Last-Event-ID` is found. Most ids are kept one by one. A resumable stream's ids are not:
//! `<stream>.<n>` with `n` counting up, one per token, appended one after another to its
//! channel's log. Kept one by one, each token cost an id string and an index slot (about
//! 100 bytes on top of its frame); here a run of them costs one `Run`, and each entry a
//! reference to the stream's name, allocated once.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;

/// What a log holds under an application's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppId {
    /// One held event has it, at this position.
    Once(u64),
    /// More than one held event has it.
    Repeated,
}

/// What an entry keeps of its id, to take it out of the index when the entry goes: the slot
/// of its name (4 bytes in every entry, where a shared string would take 16 and a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRef(NonZeroU32);

impl IdRef {
    /// Its name's index in `AppIds::names`.
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// A name the index holds, in a slot entries refer to.
struct Name {
    text: Arc<str>,
    /// A run prefix, or an id kept on its own.
    run: bool,
}

/// Consecutive entries of a log (by offset) whose ids are `<prefix>.<n>` with `n` counting up.
struct Run {
    first_n: u64,
    first_offset: u64,
    len: u64,
}

#[derive(Default)]
pub(crate) struct AppIds {
    /// Ids kept one by one: the newest position with the id, how many held entries have it,
    /// and its name's slot.
    keys: HashMap<Arc<str>, Keyed>,
    /// Runs by prefix, oldest first.
    runs: HashMap<Arc<str>, Runs>,
    /// The names entries refer to (slot `n` at index `n - 1`); None: free, listed in `free`.
    names: Vec<Option<Name>>,
    free: Vec<IdRef>,
}

struct Keyed {
    position: u64,
    count: u32,
    slot: IdRef,
}

/// A prefix's runs, with its name's slot: what each of their entries keeps (one lookup per
/// append finds both).
struct Runs {
    slot: IdRef,
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
            if let Some(Runs { slot, runs }) = self.runs.get_mut(prefix) {
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
                return *slot;
            }
            // A prefix seen for the first time starts a run only at its stream's first ids:
            // `<id>.0` (its start event) or `<id>.1`. Other numbered ids stay keys.
            if n <= 1 {
                let prefix: Arc<str> = Arc::from(prefix);
                let slot = self.name(prefix.clone(), true);
                let runs = VecDeque::from([Run {
                    first_n: n,
                    first_offset: offset,
                    len: 1,
                }]);
                self.runs.insert(prefix, Runs { slot, runs });
                return slot;
            }
        }
        if let Some(keyed) = self.keys.get_mut(id) {
            keyed.position = position;
            keyed.count += 1;
            return keyed.slot;
        }
        let key: Arc<str> = Arc::from(id);
        let slot = self.name(key.clone(), false);
        self.keys.insert(
            key,
            Keyed {
                position,
                count: 1,
                slot,
            },
        );
        slot
    }

    /// A slot for `text`: a free one, or a new one.
    fn name(&mut self, text: Arc<str>, run: bool) -> IdRef {
        let name = Some(Name { text, run });
        if let Some(slot) = self.free.pop() {
            self.names[slot.index()] = name;
            return slot;
        }
        self.names.push(name);
        // More than 4 billion distinct ids held at once is beyond any memory this runs in.
        IdRef(
            NonZeroU32::new(u32::try_from(self.names.len()).unwrap_or(u32::MAX))
                .unwrap_or(NonZeroU32::MAX),
        )
    }

    /// The entry at `offset`, the oldest held, goes.
    pub fn remove(&mut self, id: IdRef, offset: u64) {
        let Some(Some(name)) = self.names.get(id.index()) else {
            return;
        };
        let text: &str = &name.text;
        let gone = if name.run {
            let Some(Runs { runs, .. }) = self.runs.get_mut(text) else {
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
            runs.is_empty() && self.runs.remove(text).is_some()
        } else {
            let Some(keyed) = self.keys.get_mut(text) else {
                return;
            };
            keyed.count -= 1;
            keyed.count == 0 && self.keys.remove(text).is_some()
        };
        if gone {
            self.names[id.index()] = None;
            self.free.push(id);
        }
    }

    /// Where the held event the application gave `id` is: `Once` with its offset (runs) or
    /// position (keys), told apart by `position_of`, which maps a run's offset to a position.
    pub fn find(&self, id: &str, position_of: impl Fn(u64) -> Option<u64>) -> Option<AppId> {
        let mut found: Option<u64> = None;
        let mut count = 0u32;
        if let Some(keyed) = self.keys.get(id) {
            found = Some(keyed.position);
            count += keyed.count;
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

    /// Whether any id `<prefix>.<n>` of a run is held: a resumable stream's events, its start
    /// `<prefix>.0` perhaps gone already.
    pub fn holds_run(&self, prefix: &str) -> bool {
        self.runs.contains_key(prefix)
    }

    /// Whether an id kept on its own (not in a run) is held.
    pub fn holds_key(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.runs.clear();
        self.names.clear();
        self.free.clear();
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

    #[test]
    fn a_name_gone_frees_its_slot_for_the_next() {
        let mut ids = AppIds::default();
        let a = ids.add("a", 0, 0);
        let again = ids.add("a", 1, 10);
        assert_eq!(a, again, "one slot per name");
        let run = ids.add("s.1", 2, 20);
        assert_ne!(run, a);
        ids.remove(a, 0);
        assert_eq!(
            find(&ids, "a"),
            Some(AppId::Once(10)),
            "one entry still has it"
        );
        ids.remove(again, 1);
        assert_eq!(find(&ids, "a"), None);
        // The slot "a" had serves the next new name; the run's is untouched.
        let b = ids.add("b", 3, 30);
        assert_eq!(b, a);
        assert_eq!(ids.names.len(), 2);
        assert_eq!(find(&ids, "s.1"), Some(AppId::Once(20)));
        assert_eq!(find(&ids, "b"), Some(AppId::Once(30)));
    }
}
