//! Reconnection delays: doubling from `min` to `max`, each drawn at random from its upper
//! half ("equal jitter"), so hubs that lost Redis together do not all come back in the same
//! millisecond, and a hub never retries faster than `min / 2`.

use std::time::Duration;

pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    /// xorshift64 state: jitter needs spread, not cryptographic quality.
    random: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
            random: seed | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let half = ceiling / 2;
        let spread = half.as_micros() as u64 + 1;
        half + Duration::from_micros(self.random % spread)
    }

    /// Connected: the next loss starts from `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1000), 42);
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for ceiling in ceilings {
            let delay = backoff.delay();
            assert!(
                delay >= ms(ceiling) / 2 && delay <= ms(ceiling),
                "{delay:?} for {ceiling}"
            );
        }
        backoff.reset();
        assert!(backoff.delay() <= ms(100));
        let draws: std::collections::HashSet<_> = (0..20)
            .map(|seed| Backoff::new(ms(100), ms(1000), seed * 2 + 1).delay())
            .collect();
        assert!(draws.len() > 15, "hubs draw different delays: {draws:?}");
    }
}
