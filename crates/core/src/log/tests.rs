//! The log's own tests: windows, history bounds, floors, cursors.

use super::*;
use std::time::Duration;

/// A log with one reader that never reads, so the window alone decides what is kept.
fn log(events: usize, bytes: usize) -> ChannelLog {
    let log = ChannelLog::new(None, events, bytes, History::default());
    assert_eq!(log.join(false), 0);
    log
}

fn append(log: &ChannelLog, seq: u64, len: usize) {
    log.append(seq, Bytes::from(vec![b'x'; len]), None);
}

fn seqs(log: &ChannelLog, from: u64, horizon: u64, max: usize) -> (Vec<u64>, u64) {
    let mut out = Vec::new();
    let missed = log.read(from, horizon, max, usize::MAX, |seq, _, _| out.push(seq));
    (out, missed)
}

#[test]
fn reads_from_a_cursor_up_to_the_horizon() {
    let l = log(100, 1000);
    for seq in [3, 5, 9] {
        append(&l, seq, 10);
    }
    assert_eq!(l.head(), 3);
    assert_eq!(seqs(&l, 0, u64::MAX, 10), (vec![3, 5, 9], 0));
    assert_eq!(seqs(&l, 1, 8, 10), (vec![5], 0));
    assert_eq!(seqs(&l, 0, u64::MAX, 2), (vec![3, 5], 0));
    assert_eq!(seqs(&l, 3, u64::MAX, 10), (vec![], 0));
}

#[test]
fn the_window_trims_by_events_and_bytes_and_reports_what_a_cursor_missed() {
    let l = log(3, 1000);
    for seq in 1..=5 {
        append(&l, seq, 10);
    }
    assert_eq!(l.held(), (3, 30));
    assert_eq!(l.first(), 2);
    assert_eq!(seqs(&l, 0, u64::MAX, 10), (vec![3, 4, 5], 2));
    let by_bytes = log(100, 25);
    for seq in 1..=5 {
        append(&by_bytes, seq, 10);
    }
    assert_eq!(by_bytes.held(), (2, 20));
    // A frame larger than the window is still kept, alone.
    append(&by_bytes, 6, 40);
    assert_eq!(by_bytes.held(), (1, 40));
}

#[test]
fn the_slowest_reader_sets_the_logs_lag() {
    let l = ChannelLog::new(None, 100, 1000, History::default());
    assert_eq!(l.slowest_lag(), Lag::default());
    let slow = l.join(false);
    append(&l, 1, 10);
    let fast = l.join(false);
    append(&l, 2, 20);
    let lag = l.append(3, Bytes::from(vec![b'x'; 30]), None);
    assert_eq!((lag.events, lag.bytes), (3, 60));
    // The slow reader passes two; the fast one (from the second entry) is now slowest.
    l.passed(slow, 2);
    assert_eq!((l.slowest_lag().events, l.slowest_lag().bytes), (2, 50));
    l.passed(fast, 2);
    assert_eq!((l.slowest_lag().events, l.slowest_lag().bytes), (1, 30));
    l.passed(slow + 2, 1);
    assert_eq!(l.slowest_lag(), Lag::default());
}

#[test]
fn lag_counts_events_and_bytes_behind_the_head() {
    let l = log(3, 1000);
    assert_eq!(l.lag(0), Lag::default());
    append(&l, 1, 10);
    append(&l, 2, 20);
    assert_eq!(
        l.lag(0),
        Lag {
            events: 2,
            bytes: 30,
            missed: 0
        }
    );
    assert_eq!(
        l.lag(1),
        Lag {
            events: 1,
            bytes: 20,
            missed: 0
        }
    );
    assert_eq!(
        l.lag(2),
        Lag {
            events: 0,
            bytes: 0,
            missed: 0
        }
    );
    append(&l, 3, 30);
    append(&l, 4, 40);
    // Offset 0 was trimmed: its lag counts what is kept, plus what it missed.
    assert_eq!(
        l.lag(0),
        Lag {
            events: 4,
            bytes: 90,
            missed: 1
        }
    );
}

#[test]
fn entries_every_reader_passed_are_released() {
    let l = ChannelLog::new(None, 100, 1000, History::default());
    // No reader: nothing is kept.
    append(&l, 1, 10);
    assert_eq!(l.held(), (0, 0));
    let a = l.join(false);
    let b = l.join(false);
    assert_eq!((a, b), (1, 1));
    for seq in 2..=4 {
        append(&l, seq, 10);
    }
    assert_eq!(l.held(), (3, 30));
    l.passed(a, 2);
    assert_eq!(l.held(), (3, 30), "b has read nothing yet");
    l.passed(b, 1);
    assert_eq!(l.held(), (2, 20));
    // b leaves: what only it was missing goes.
    l.leave(b + 1, false);
    assert_eq!(l.held(), (1, 10));
    assert_eq!(l.first(), 3);
    l.passed(a + 2, 1);
    assert_eq!(l.held(), (0, 0));
}

fn history(max_events: usize, max_bytes: usize, max_age: Option<Duration>) -> ChannelLog {
    ChannelLog::new(
        None,
        100,
        10_000,
        History {
            max_events,
            max_bytes,
            max_age,
        },
    )
}

#[test]
fn history_keeps_read_entries_within_its_bounds() {
    let by_events = history(3, 10_000, None);
    for seq in 1..=5 {
        append(&by_events, seq, 10);
    }
    // Nobody reads, yet the last three stay.
    assert_eq!(by_events.held(), (3, 30));
    let by_bytes = history(100, 25, None);
    for seq in 1..=5 {
        append(&by_bytes, seq, 10);
    }
    assert_eq!(by_bytes.held(), (2, 20));
    let by_age = history(100, 10_000, Some(Duration::from_millis(30)));
    append(&by_age, 1, 10);
    std::thread::sleep(Duration::from_millis(60));
    append(&by_age, 2, 10);
    assert_eq!(by_age.held(), (1, 10));
}

#[test]
fn a_cursor_joins_just_past_a_sequence_number_while_the_history_covers_it() {
    let l = history(3, 10_000, None);
    for seq in [10, 20, 30, 40] {
        append(&l, seq, 10);
    }
    // 10 was dropped: resuming after 10 is whole (20 is held), after 5 is not.
    assert!(l.covers(10));
    assert!(!l.covers(5));
    assert_eq!(l.join_after(5, false), None);
    let cursor = l.join_after(20, false).unwrap();
    assert_eq!(seqs(&l, cursor, u64::MAX, 10).0, vec![30, 40]);
    assert_eq!(
        l.join_after(40, false),
        Some(4),
        "past the newest: at the head"
    );
}

#[test]
fn app_ids_are_indexed_while_held() {
    let l = history(2, 10_000, None);
    l.append(1, Bytes::from_static(b"a"), Some("evt-1"));
    l.append(2, Bytes::from_static(b"b"), Some("evt-2"));
    assert_eq!(l.find_app_id("evt-1"), Some(AppId::Once(1)));
    l.append(3, Bytes::from_static(b"c"), None);
    assert_eq!(l.find_app_id("evt-1"), None, "dropped with its entry");
    assert_eq!(l.find_app_id("evt-2"), Some(AppId::Once(2)));
    let plain = ChannelLog::new(None, 100, 1000, History::default());
    plain.append(1, Bytes::from_static(b"a"), Some("x"));
    assert_eq!(plain.find_app_id("x"), None, "no history, no index");
}

#[test]
fn an_id_given_twice_is_ambiguous_while_both_are_held() {
    let l = history(2, 10_000, None);
    l.append(1, Bytes::from_static(b"a"), Some("7"));
    l.append(2, Bytes::from_static(b"b"), Some("7"));
    assert_eq!(l.find_app_id("7"), Some(AppId::Repeated));
    l.append(3, Bytes::from_static(b"c"), None);
    assert_eq!(
        l.find_app_id("7"),
        Some(AppId::Once(2)),
        "the older one left"
    );
}

#[test]
fn a_stream_is_held_while_any_of_its_events_is_and_not_once_its_age_passed() {
    let l = history(3, 10_000, None);
    assert!(!l.holds_stream("s", &[]));
    l.append(1, Bytes::from_static(b"start"), Some("s.0"));
    l.append(2, Bytes::from_static(b"a"), Some("s.1"));
    l.append(3, Bytes::from_static(b"b"), Some("s.2"));
    assert!(l.holds_stream("s", &[]));
    assert!(
        !l.holds_stream("s.1", &[]) && !l.holds_stream("t", &[]),
        "a stream's name, not an id"
    );
    // Its start event leaves first; its tokens still make it held.
    l.append(4, Bytes::from_static(b"x"), Some("other"));
    assert_eq!(l.find_app_id("s.0"), None);
    assert!(l.holds_stream("s", &[]));
    l.append(5, Bytes::from_static(b"y"), None);
    l.append(6, Bytes::from_static(b"z"), None);
    assert!(!l.holds_stream("s", &[]), "every event of it left");
    // Its end event, an id of its own, still held after the numbered ones left.
    let closing = ["e.end".to_string(), "e.error".to_string()];
    l.append(7, Bytes::from_static(b"1"), Some("e.1"));
    l.append(8, Bytes::from_static(b"end"), Some("e.end"));
    l.append(9, Bytes::from_static(b"w"), None);
    l.append(10, Bytes::from_static(b"w"), None);
    assert!(!l.holds_stream("e", &[]));
    assert!(l.holds_stream("e", &closing));
    l.append(11, Bytes::from_static(b"w"), None);
    assert!(!l.holds_stream("e", &closing));

    // An age a loaded machine cannot pass between the append and the first look.
    let aged = history(100, 10_000, Some(Duration::from_millis(250)));
    aged.append(1, Bytes::from_static(b"start"), Some("s.0"));
    assert!(aged.holds_stream("s", &[]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !aged.holds_stream("s", &[]),
        "past its age, with nothing appended since"
    );
}

#[test]
fn history_can_be_changed_while_the_log_lives() {
    let l = ChannelLog::new(None, 100, 10_000, History::default());
    append(&l, 1, 10);
    assert_eq!(l.held(), (0, 0), "no history, no reader: nothing kept");
    l.set_history(History {
        max_events: 2,
        max_bytes: 10_000,
        max_age: None,
    });
    assert!(l.has_history());
    l.append(2, Bytes::from_static(b"b"), Some("two"));
    append(&l, 3, 10);
    append(&l, 4, 10);
    assert_eq!(l.held().0, 2);
    l.append(5, Bytes::from_static(b"e"), Some("five"));
    assert_eq!(l.find_app_id("five"), Some(AppId::Once(5)));
    l.set_history(History::default());
    assert!(!l.has_history());
    assert_eq!(l.held(), (0, 0), "unread by anyone, no longer kept");
    assert_eq!(l.find_app_id("five"), None);
}

#[test]
fn an_entry_stays_small() {
    // Every event a history keeps pays this; a resumable stream's 40-byte token, about as much
    // again. 120 bytes before the time stamp shrank and the rare fields were boxed together.
    assert!(
        std::mem::size_of::<Entry>() <= 96,
        "{}",
        std::mem::size_of::<Entry>()
    );
}

#[test]
fn time_stamps_follow_an_older_event_and_a_log_held_past_49_days() {
    // Packed (nobody reads these logs) or not, every entry held.
    let stamps = |log: &ChannelLog| {
        let state = log.state();
        let epoch = state.epoch;
        let at = |ms: u32| epoch + Duration::from_millis(u64::from(ms));
        (state.packed.iter().map(|e| at(e.meta.at_ms)))
            .chain(state.entries.iter().map(|e| at(e.at_ms)))
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    let day = Duration::from_secs(86_400);
    let frame = || Bytes::from_static(b"data: x\n\n");
    let log = ChannelLog::new(None, 100, 1 << 20, History::DEFAULT_ON);
    log.append_at(1, 1, frame(), None, start + day, None);
    // A catch-up event stored before the oldest entry: the epoch moves back to it.
    log.append_at(2, 2, frame(), None, start, None);
    assert_eq!(stamps(&log), vec![start + day, start]);
    // A log that kept events for 60 days: 32 bits of milliseconds count 49.7 days, so the
    // counts restart at the oldest event still held.
    let two = History {
        max_events: 2,
        ..History::DEFAULT_ON
    };
    let log = ChannelLog::new(None, 100, 1 << 20, two);
    for (seq, days) in [(1, 0), (2, 40), (3, 45), (4, 60)] {
        log.append_at(seq, seq, frame(), None, start + days * day, None);
    }
    assert_eq!(stamps(&log), vec![start + 45 * day, start + 60 * day]);
    assert_eq!(log.state().epoch, start + 40 * day);
}

/// The frames a cursor at `from` reads, as text.
fn frames(log: &ChannelLog, from: u64) -> Vec<String> {
    let mut out = Vec::new();
    log.read(from, u64::MAX, usize::MAX, usize::MAX, |_, frame, _| {
        out.push(String::from_utf8(frame.to_vec()).unwrap())
    });
    out
}

fn token(n: u64) -> String {
    format!("id: s.{n}\ndata: token {n}\n\n")
}

#[test]
fn history_every_reader_passed_is_packed_and_a_resume_reads_it_back_whole() {
    let l = history(1000, 1 << 20, None);
    let reader = l.join(false);
    for n in 1..=300 {
        l.append(n, Bytes::from(token(n)), Some(&format!("s.{n}")));
    }
    let bytes: usize = (1..=300).map(|n| token(n).len()).sum();
    // Unread, nothing is packed.
    assert_eq!(l.state().packed.len(), 0);
    assert_eq!(l.slowest_lag().bytes, bytes as u64);
    l.passed(reader, 250);
    {
        let state = l.state();
        assert_eq!((state.packed.len(), state.entries.len()), (250, 50));
        assert_eq!(state.packed.first(), 0);
    }
    assert_eq!(l.held(), (300, bytes));
    assert_eq!(l.find_app_id("s.7"), Some(AppId::Once(7)));
    assert_eq!(l.find_app_id("s.299"), Some(AppId::Once(299)));

    // A reader resuming after s.100 reads 101..=300, byte for byte, and is that far behind.
    let resumed = l.join_after(100, false).unwrap();
    assert_eq!(resumed, 100);
    assert_eq!(
        frames(&l, resumed),
        (101..=300).map(token).collect::<Vec<_>>()
    );
    let behind: usize = (101..=300).map(|n| token(n).len()).sum();
    assert_eq!(l.lag(resumed).bytes, behind as u64);
    assert_eq!(l.slowest_lag().bytes, behind as u64);
    assert_eq!(l.state().packed.len(), 100);
    assert_eq!(l.held(), (300, bytes));
    assert_eq!(l.find_app_id("s.150"), Some(AppId::Once(150)));

    // Once both readers passed everything, all of it is packed again, and still resumable.
    l.passed(reader + 250, 50);
    l.passed(resumed, 200);
    assert_eq!(l.state().packed.len(), 300);
    let again = l.join_after(299, false).unwrap();
    assert_eq!(frames(&l, again), vec![token(300)]);
}

#[test]
fn packed_history_still_keeps_to_its_bounds() {
    let l = history(100, 1 << 20, None);
    for n in 1..=250 {
        l.append(n, Bytes::from(token(n)), Some(&format!("s.{n}")));
    }
    // Nobody reads: everything kept is packed, the newest 100.
    assert_eq!(l.state().packed.len(), 100);
    assert_eq!(l.held().0, 100);
    assert!(l.covers(150) && !l.covers(149));
    assert_eq!(l.find_app_id("s.150"), None);
    assert_eq!(l.find_app_id("s.151"), Some(AppId::Once(151)));
    let bytes: usize = (151..=250).map(|n| token(n).len()).sum();
    assert_eq!(l.held().1, bytes);

    let by_age = history(1000, 1 << 20, Some(Duration::from_millis(30)));
    for n in 1..=10 {
        by_age.append(n, Bytes::from(token(n)), None);
    }
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(by_age.expire(), Some(10), "aged out, packed or not");
    assert_eq!(by_age.held(), (0, 0));

    // Turned off, the history lets its packed entries go.
    let off = history(1000, 1 << 20, None);
    for n in 1..=10 {
        off.append(n, Bytes::from(token(n)), Some(&format!("s.{n}")));
    }
    off.set_history(History::default());
    assert_eq!(off.held(), (0, 0));
    assert_eq!(off.find_app_id("s.5"), None);
}

#[test]
fn an_older_event_behind_packed_history_stays_until_they_go() {
    // A backend's event can be older than the one before it: past its age, it still waits
    // behind the packed ones in front of it, as it waited behind entries.
    let now = Instant::now();
    let l = history(100, 1 << 20, Some(Duration::from_secs(10)));
    let frame = |n: u64| Bytes::from(token(n));
    l.append_at(1, 1, frame(0), Some("s.0"), now, None);
    l.append_at(
        2,
        2,
        frame(1),
        Some("s.1"),
        now - Duration::from_secs(20),
        None,
    );
    l.append_at(3, 3, frame(2), Some("s.2"), now, None);
    {
        let state = l.state();
        assert_eq!(
            state.packed.first() + state.packed.len() as u64,
            state.first
        );
    }
    let found: Vec<_> = ["s.0", "s.1", "s.2"]
        .iter()
        .map(|id| l.find_app_id(id))
        .collect();
    assert_eq!(
        found,
        [
            Some(AppId::Once(1)),
            Some(AppId::Once(2)),
            Some(AppId::Once(3))
        ]
    );
    let resumed = l.join_after(1, false).unwrap();
    assert_eq!(frames(&l, resumed), vec![token(1), token(2)]);
}

#[test]
fn an_empty_frame_packs_and_comes_back() {
    let l = history(100, 1 << 20, None);
    l.append(1, Bytes::new(), None);
    l.append(2, Bytes::from(token(2)), None);
    let at = l.join_after(0, false).unwrap();
    assert_eq!(frames(&l, at), vec![String::new(), token(2)]);
}
