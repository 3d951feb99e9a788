//! A randomized model test of the log: appends (with app ids, runs of `<p>.<n>`, frames larger
//! than a chunk, events older than the one before), cursors that join, resume, read, pass and
//! leave, history changed and expired, each checked against a plain list of every event: what a
//! cursor reads, held counts and bytes, lags, unread counts, that no cursor points among packed
//! entries, and what an app id finds. Deterministic seeds; a failure names its seed and step.

use super::*;
use std::time::Duration;

fn hist(events: usize, bytes: usize, age: Option<u64>) -> History {
    History {
        max_events: events,
        max_bytes: bytes,
        max_age: age.map(Duration::from_secs),
    }
}

fn invariants(log: &ChannelLog) -> Result<(), String> {
    let s = log.state();
    if s.packed.len() > 0 && s.packed.first() + s.packed.len() as u64 != s.first {
        return Err(format!(
            "gap: packed {}..{} but entries start at {}",
            s.packed.first(),
            s.packed.first() + s.packed.len() as u64,
            s.first
        ));
    }
    let entry_bytes: usize = s.entries.iter().map(|e| e.frame.len()).sum();
    if s.held_bytes != entry_bytes + s.packed.bytes() {
        return Err(format!(
            "held_bytes {} != entries {} + packed {}",
            s.held_bytes,
            entry_bytes,
            s.packed.bytes()
        ));
    }
    Ok(())
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone)]
struct M {
    seq: u64,
    position: u64,
    frame: Vec<u8>,
    id: Option<String>,
    indexed: bool,
}

struct Cur {
    next: u64,
    zipped: bool,
}

struct Opts {
    window: usize,
    skewed_ages: bool,
    zipped: bool,
    big_frames: bool,
}

fn lowest_held(log: &ChannelLog) -> u64 {
    let s = log.state();
    if s.packed.len() > 0 {
        s.packed.first()
    } else {
        s.first
    }
}

fn run(seed: u64, steps: usize, o: &Opts) -> Result<(), String> {
    let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let now = Instant::now();
    let mut history = hist(8 + r.below(40) as usize, 600 + r.below(4000) as usize, None);
    let l = ChannelLog::new(None, o.window, 1 << 22, history);
    if o.zipped {
        l.compress_with(Some(GzipSettings {
            level: 1,
            keyframe_every: 8,
        }));
    }
    let mut model: Vec<M> = Vec::new();
    let mut cursors: Vec<Cur> = Vec::new();
    let mut pos = 0u64;
    let mut run_n = 0u64;
    let mut run_prefix = 0u64;
    for step in 0..steps {
        let op = r.below(100);
        let ctx = |what: &str| format!("seed {seed} step {step} {what}");
        match op {
            0..=39 => {
                let seq = model.len() as u64 + 1;
                pos += 1 + r.below(3);
                let len = if o.big_frames && r.below(20) == 0 {
                    20_000 + r.below(2000) as usize
                } else {
                    1 + r.below(120) as usize
                };
                let frame: Vec<u8> = (0..len).map(|i| (seq as usize * 31 + i) as u8).collect();
                let id = match r.below(4) {
                    0 => None,
                    1 => Some(format!("k{}", r.below(4))),
                    _ => {
                        if r.below(30) == 0 {
                            run_prefix += 1;
                            run_n = 0;
                        }
                        let id = format!("p{run_prefix}.{run_n}");
                        run_n += 1;
                        Some(id)
                    }
                };
                let age = if o.skewed_ages {
                    [0, 0, 0, 50, 200][r.below(5) as usize]
                } else {
                    0
                };
                l.append_at(
                    seq,
                    pos,
                    Bytes::from(frame.clone()),
                    id.as_deref(),
                    now - Duration::from_secs(age),
                    None,
                );
                model.push(M {
                    seq,
                    position: pos,
                    frame,
                    id,
                    indexed: history.is_on(),
                });
            }
            40..=44 => {
                let z = o.zipped && r.below(2) == 0;
                let at = l.join(z);
                if at != model.len() as u64 {
                    return Err(ctx(&format!("join at {at}, head {}", model.len())));
                }
                cursors.push(Cur {
                    next: at,
                    zipped: z,
                });
            }
            45..=54 => {
                if model.is_empty() {
                    continue;
                }
                let i = r.below(model.len() as u64 + 1) as usize;
                let p = if i == 0 { 0 } else { model[i - 1].position };
                let lowest = lowest_held(&l) as usize;
                let z = o.zipped && r.below(2) == 0;
                if !l.has_history() {
                    continue;
                }
                let joined = l.join_after(p, z);
                let lowest_after = lowest_held(&l) as usize;
                let _ = lowest;
                let whole = lowest_after == 0 || model[lowest_after - 1].position <= p;
                match joined {
                    None if whole => {
                        // dropped_through may be raised by an entry dropped earlier: fine only
                        // if some entry after p is really gone.
                        return Err(ctx(&format!(
                            "join_after({p}) refused, held from {lowest_after}"
                        )));
                    }
                    None => {}
                    Some(_) if !whole => {
                        return Err(ctx(&format!(
                            "join_after({p}) accepted but entry {} gone",
                            lowest_after - 1
                        )));
                    }
                    Some(at) => {
                        let want = model
                            .iter()
                            .position(|m| m.position > p)
                            .unwrap_or(model.len());
                        if at != want as u64 {
                            return Err(ctx(&format!("join_after({p}) at {at}, want {want}")));
                        }
                        cursors.push(Cur {
                            next: at,
                            zipped: z,
                        });
                    }
                }
            }
            55..=79 => {
                if cursors.is_empty() {
                    continue;
                }
                let c = r.below(cursors.len() as u64) as usize;
                let max = 1 + r.below(12) as usize;
                let from = cursors[c].next;
                let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
                let missed = l.read(from, u64::MAX, max, usize::MAX, |seq, f, _| {
                    got.push((seq, f.to_vec()))
                });
                if missed > 0 && o.window >= 1 << 20 {
                    return Err(ctx(&format!(
                        "cursor at {from} missed {missed} in a huge window"
                    )));
                }
                let start = from + missed;
                for (k, (seq, f)) in got.iter().enumerate() {
                    let m = &model[start as usize + k];
                    if *seq != m.seq || *f != m.frame {
                        return Err(ctx(&format!(
                            "cursor at {from} read seq {seq} at offset {}, model seq {}",
                            start as usize + k,
                            m.seq
                        )));
                    }
                }
                let expect = (model.len() as u64 - start).min(max as u64);
                if got.len() as u64 != expect {
                    return Err(ctx(&format!(
                        "cursor at {from} read {} want {expect}",
                        got.len()
                    )));
                }
                let next = from + missed;
                cursors[c].next = next;
                l.passed(next, got.len() as u64);
                cursors[c].next += got.len() as u64;
            }
            80..=85 => {
                if cursors.is_empty() {
                    continue;
                }
                let c = r.below(cursors.len() as u64) as usize;
                let cur = cursors.swap_remove(c);
                l.leave(cur.next, cur.zipped);
            }
            86..=89 => {
                history = match r.below(4) {
                    0 => hist(0, 0, None),
                    1 => hist(4 + r.below(40) as usize, 300 + r.below(4000) as usize, None),
                    2 => hist(4 + r.below(40) as usize, 1 << 20, Some(100)),
                    _ => hist(1000, 1 << 20, None),
                };
                l.set_history(history);
                if !history.is_on() {
                    for m in model.iter_mut() {
                        m.indexed = false;
                    }
                }
            }
            90..=92 => {
                l.expire();
            }
            _ => {
                // find_app_id against the model.
                let id = match r.below(3) {
                    0 => format!("k{}", r.below(4)),
                    _ => format!("p{}.{}", r.below(run_prefix + 1), r.below(run_n + 3)),
                };
                let lowest = lowest_held(&l) as usize;
                let hits: Vec<&M> = model[lowest..]
                    .iter()
                    .filter(|m| m.indexed && m.id.as_deref() == Some(&id))
                    .collect();
                let want = match hits.len() {
                    0 => None,
                    1 => Some(AppId::Once(hits[0].position)),
                    _ => Some(AppId::Repeated),
                };
                let got = l.find_app_id(&id);
                if got != want {
                    return Err(ctx(&format!("find_app_id({id}) = {got:?}, model {want:?}")));
                }
            }
        }
        invariants(&l).map_err(|e| format!("seed {seed} step {step} op {op}: {e}"))?;
        // Held count and bytes against the model.
        let lowest = lowest_held(&l) as usize;
        let (n, b) = l.held();
        let mb: usize = model[lowest..].iter().map(|m| m.frame.len()).sum();
        if (n, b) != (model.len() - lowest, mb) {
            return Err(format!(
                "seed {seed} step {step}: held {:?}, model {:?}",
                (n, b),
                (model.len() - lowest, mb)
            ));
        }
        // Unread counts and no cursor among packed entries.
        {
            let s = l.state();
            for c in &cursors {
                if s.packed.len() > 0 && c.next >= s.packed.first() && c.next < s.first {
                    return Err(format!(
                        "seed {seed} step {step}: cursor {} among packed",
                        c.next
                    ));
                }
            }
            for (i, e) in s.entries.iter().enumerate() {
                let off = s.first + i as u64;
                let want = cursors.iter().filter(|c| c.next <= off).count() as u32;
                let got = e.unread.load(Ordering::Acquire);
                if got != want {
                    return Err(format!(
                        "seed {seed} step {step}: unread of {off} is {got}, want {want}"
                    ));
                }
            }
            if s.readers as usize != cursors.len() {
                return Err(format!("seed {seed} step {step}: readers {}", s.readers));
            }
        }
        // Lag bytes of every cursor against the model.
        for c in &cursors {
            let lag = l.lag(c.next);
            let start = c.next.max(l.first()) as usize;
            let want: u64 = model[start..].iter().map(|m| m.frame.len() as u64).sum();
            if lag.bytes != want {
                return Err(format!(
                    "seed {seed} step {step}: lag bytes at {} = {}, model {want}",
                    c.next, lag.bytes
                ));
            }
        }
        let slow = l.slowest_lag();
        let slowest = cursors.iter().map(|c| c.next.max(l.first())).min();
        let want = slowest.map_or(0, |s| model.len() as u64 - s);
        if slow.events != want {
            return Err(format!(
                "seed {seed} step {step}: slowest_lag {} want {want}",
                slow.events
            ));
        }
    }
    Ok(())
}

fn sweep(o: Opts, seeds: u64) {
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed, 400, &o)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(p) => failures.push(format!(
                "seed {seed} panicked: {:?}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            )),
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {seeds} failed; first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}

#[test]
fn the_log_matches_its_model_in_a_huge_window() {
    sweep(
        Opts {
            window: 1 << 20,
            skewed_ages: false,
            zipped: false,
            big_frames: true,
        },
        300,
    );
}

#[test]
fn the_log_matches_its_model_in_a_small_window() {
    sweep(
        Opts {
            window: 6,
            skewed_ages: false,
            zipped: false,
            big_frames: true,
        },
        300,
    );
}

#[test]
fn the_log_matches_its_model_with_compressed_readers() {
    sweep(
        Opts {
            window: 1 << 20,
            skewed_ages: false,
            zipped: true,
            big_frames: false,
        },
        200,
    );
}

#[test]
fn the_log_matches_its_model_with_events_older_than_the_one_before() {
    sweep(
        Opts {
            window: 1 << 20,
            skewed_ages: true,
            zipped: false,
            big_frames: false,
        },
        200,
    );
}
