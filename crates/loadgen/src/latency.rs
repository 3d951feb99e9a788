//! Publish-to-receive latency in microseconds, kept as a log-linear histogram: 32 buckets per
//! power of two above 64 µs (under 3.2 % error), exact below, so a million samples cost a
//! counter increment each and a few KB in all.

const EXACT: u64 = 64;
const PER_OCTAVE: usize = 32;
const BUCKETS: usize = EXACT as usize + PER_OCTAVE * 58;

pub struct Latency {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(micros: u64) -> usize {
    if micros < EXACT {
        return micros as usize;
    }
    // `micros >> shift` lands in [32, 64): the top six bits pick the bucket.
    let shift = (64 - micros.leading_zeros()) as usize - 6;
    EXACT as usize + (shift - 1) * PER_OCTAVE + ((micros >> shift) as usize - PER_OCTAVE)
}

/// The largest value that falls in `index`, so a percentile never reads low.
fn upper_bound(index: usize) -> u64 {
    if index < EXACT as usize {
        return index as u64;
    }
    let shift = (index - EXACT as usize) / PER_OCTAVE + 1;
    let top = ((index - EXACT as usize) % PER_OCTAVE + PER_OCTAVE) as u64;
    ((top + 1) << shift) - 1
}

impl Latency {
    pub fn record(&mut self, micros: u64) {
        let index = bucket(micros).min(BUCKETS - 1);
        self.counts[index] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at or below which `fraction` of the samples fall (0 with no samples).
    pub fn percentile(&self, fraction: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64 * fraction).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for micros in [0, 1, 63, 64, 65, 100, 1_000, 12_345, 1 << 20, 60_000_000] {
            let index = bucket(micros);
            assert!(index >= last, "{micros}");
            last = index;
            let upper = upper_bound(index);
            assert!(upper >= micros, "{micros} above its bucket's bound {upper}");
            assert!(
                (upper - micros) as f64 <= micros as f64 * 0.032 + 1.0,
                "{micros}: bound {upper}"
            );
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut latency = Latency::default();
        for micros in 1..=1000 {
            latency.record(micros);
        }
        assert_eq!(latency.count(), 1000);
        assert_eq!(latency.max(), 1000);
        let p50 = latency.percentile(0.5);
        assert!((500..=516).contains(&p50), "{p50}");
        let p99 = latency.percentile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(Latency::default().percentile(0.5), 0);
    }
}
