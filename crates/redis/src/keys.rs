//! The Redis keys of one hub namespace (`prefix`).
//!
//! Every key carries the hash tag `{prefix}`, so all of a namespace's keys live in one hash
//! slot: the publish script touches the counter, a channel's stream and the bookkeeping in one
//! atomic call, which Redis Cluster allows only within a slot. (Per-channel slots would shard
//! channels across a cluster, but then one `Last-Event-ID` could not name a position in every
//! stream a client reads: SSE resumes from a single id, so the namespace has one order.)

pub struct Keys {
    /// Hash: `seq` (the last position given) and `epoch` (hex, stamped into ids).
    pub meta: String,
    /// Sorted set of the channels whose stream may still exist, scored by when it expires
    /// (`+inf`: never); the broadcast stream is not in it.
    pub live: String,
    /// Hash: stream key -> the highest position of that stream no longer held.
    pub floors: String,
    /// Hash: stream key -> the position of its newest event (what an expired stream lost),
    /// for the channels in `live`. `expired` in `meta` covers those forgotten since.
    pub lasts: String,
    /// The pub/sub channel every event is announced on.
    pub events: String,
    /// The pub/sub channel of signals: the embedder's messages between the hubs of the
    /// namespace (`Bridge::send_signal`), stored nowhere.
    pub signals: String,
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        let tag = format!("{{{prefix}}}");
        Keys {
            meta: format!("{tag}:meta"),
            live: format!("{tag}:live"),
            floors: format!("{tag}:floors"),
            lasts: format!("{tag}:lasts"),
            events: format!("{tag}:events"),
            signals: format!("{tag}:signals"),
            prefix: tag,
        }
    }

    /// The stream of `channel` (None: the broadcast stream).
    pub fn stream(&self, channel: Option<&str>) -> String {
        match channel {
            None => format!("{}:b", self.prefix),
            Some(name) => format!("{}:c:{name}", self.prefix),
        }
    }

    /// Where a publisher's last applied number is kept, so a batch resent after a lost reply
    /// is not applied twice.
    pub fn publisher(&self, id: u64) -> String {
        format!("{}:pub:{id:016x}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_namespace_hash_tag() {
        let keys = Keys::new("app");
        for key in [
            keys.meta.as_str(),
            &keys.live,
            &keys.floors,
            &keys.lasts,
            &keys.events,
            &keys.signals,
            &keys.stream(None),
            &keys.stream(Some("prices")),
            &keys.publisher(7),
        ] {
            assert!(key.starts_with("{app}:"), "{key}");
        }
        assert_ne!(keys.stream(None), keys.stream(Some("b")));
        // A channel's stream is `c:`-prefixed: no channel name makes the signals channel.
        assert_ne!(keys.signals, keys.stream(Some("signals")));
        assert_ne!(keys.signals, keys.events);
    }
}
