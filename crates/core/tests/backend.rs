//! The hub fed by a shared backend (`backend.rs`), without Redis: publishes leave through the
//! backend instead of the logs, events come back numbered, and a `Last-Event-ID` resumes by
//! the backend's position, not by this hub's sequence numbers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use native_sse_core::backend::{Backend, Outgoing};
mod common;

use common::Quiet;
use native_sse_core::{
    History, Hub, HubConfig, Message, RemoteEvent, ResetReason, Resume, SseError,
};

/// Keeps what it is given; refuses once `capacity` events are waiting.
struct Recording {
    taken: Mutex<Vec<Outgoing>>,
    capacity: usize,
}

impl Backend for Recording {
    fn publish(&self, event: Outgoing) -> Result<(), SseError> {
        let mut taken = self.taken.lock().unwrap();
        if taken.len() >= self.capacity {
            return Err(SseError::BackendUnavailable {
                events: taken.len(),
                bytes: 0,
                connected: false,
            });
        }
        taken.push(event);
        Ok(())
    }
}

fn hub_with_backend(capacity: usize) -> (Hub, Arc<Recording>) {
    let config = HubConfig {
        history: History {
            max_events: 100,
            max_bytes: 1 << 20,
            max_age: Some(Duration::from_secs(60)),
        },
        ..HubConfig::default()
    };
    let hub = Hub::new(config, Box::new(Quiet)).unwrap();
    let backend = Arc::new(Recording {
        taken: Mutex::new(Vec::new()),
        capacity,
    });
    hub.set_backend(backend.clone());
    (hub, backend)
}

fn message(data: &str) -> Message<'_> {
    Message {
        data: Some(data),
        ..Default::default()
    }
}

#[test]
fn publishes_leave_through_the_backend_encoded_once_with_the_history_to_keep() {
    let (hub, backend) = hub_with_backend(10);
    hub.broadcast(&message("one")).unwrap();
    hub.publish(
        "prices",
        &Message {
            id: Some("p-1"),
            ..message("two")
        },
    )
    .unwrap();
    let taken = backend.taken.lock().unwrap();
    assert_eq!(taken.len(), 2);
    assert_eq!(
        (taken[0].channel.as_deref(), &taken[0].body[..]),
        (None, &b"data: one\n\n"[..])
    );
    assert_eq!(taken[0].app_id, None);
    assert_eq!(taken[1].channel.as_deref(), Some("prices"));
    assert_eq!(taken[1].app_id.as_deref(), Some("p-1"));
    assert_eq!(&taken[1].body[..], b"id: p-1\ndata: two\n\n");
    assert_eq!(taken[1].keep_events, Some(100));
    assert_eq!(taken[1].keep_for, Some(Duration::from_secs(60)));
    // Nothing was appended here: it comes back through `apply_remote`.
    assert_eq!(hub.queue_levels().held_events, 0);
}

#[test]
fn a_full_backend_refuses_the_publish_and_a_bad_message_never_reaches_it() {
    let (hub, backend) = hub_with_backend(1);
    hub.broadcast(&message("fits")).unwrap();
    let refused = hub.broadcast(&message("does not")).unwrap_err();
    assert_eq!(refused.code().as_str(), "ERR_SSE_BACKEND_UNAVAILABLE");
    let (hub, backend_2) = hub_with_backend(10);
    let bad = Message {
        event: Some("a\nb"),
        ..message("x")
    };
    assert!(hub.broadcast(&bad).is_err());
    assert!(backend_2.taken.lock().unwrap().is_empty());
    assert_eq!(backend.taken.lock().unwrap().len(), 1);
}

/// An event of epoch 0xabc without an app id or a trace.
fn remote<'a>(
    channel: Option<&'a str>,
    position: u64,
    body: &'a [u8],
    age: Duration,
) -> RemoteEvent<'a> {
    RemoteEvent {
        channel,
        position,
        epoch: 0xabc,
        app_id: None,
        body,
        age,
        trace: None,
    }
}

#[test]
fn resume_places_clients_by_the_backends_position() {
    let (hub, _backend) = hub_with_backend(10);
    let handle = hub.handle();
    handle.set_epoch(0xabc);
    // This hub's own sequence numbers run ahead (clients' opening frames take some), so a
    // position and a sequence number differ; only the position may be resumed from.
    for _ in 0..3 {
        hub.register(None, vec![], None).unwrap();
    }
    for position in [10, 11, 12] {
        let body = format!("data: {position}\n\n");
        handle.apply_remote(remote(None, position, body.as_bytes(), Duration::ZERO));
    }
    assert_eq!(handle.applied_position(), 12);
    assert_eq!(hub.queue_levels().held_events, 3);
    let resume = |id: &str| hub.register(None, vec![], Some(id)).unwrap().1;
    assert_eq!(resume("00000abc-b"), Resume::Replayed);
    assert_eq!(
        resume("00000abc-d"),
        Resume::Reset(ResetReason::Unknown),
        "not applied yet"
    );
    assert_eq!(resume("0badf00d-b"), Resume::Reset(ResetReason::Foreign));
    // Positions up to 9 were published before this hub could keep them.
    handle.raise_floor(None, 9);
    assert_eq!(resume("00000abc-8"), Resume::Reset(ResetReason::Expired));
    assert_eq!(resume("00000abc-9"), Resume::Replayed);
    // Its age counts from when the backend stored it: on a channel nobody reads, an event
    // stored longer ago than the history's age is not kept, a recent one is.
    let held = hub.queue_levels().held_events;
    handle.apply_remote(remote(
        Some("quiet"),
        13,
        b"data: old\n\n",
        Duration::from_secs(120),
    ));
    assert_eq!(
        hub.queue_levels().held_events,
        held,
        "the stale event was not kept"
    );
    handle.apply_remote(remote(
        Some("quiet"),
        14,
        b"data: new\n\n",
        Duration::from_secs(1),
    ));
    assert_eq!(hub.queue_levels().held_events, held + 1);
}

#[test]
fn a_gap_sends_the_reset_signal_to_the_channels_readers_only() {
    let (hub, _backend) = hub_with_backend(10);
    let handle = hub.handle();
    let (reader, _) = hub.register(None, vec!["a".into()], None).unwrap();
    let (other, _) = hub.register(None, vec!["b".into()], None).unwrap();
    // Neither transport started: each mailbox holds its opening frame.
    assert_eq!(hub.queue_levels().queued_events, 2);
    assert_eq!(handle.reset_readers(Some("a")), 1);
    assert_eq!(hub.stats().resets_gap, 1);
    assert_eq!(hub.queue_levels().queued_events, 3);
    // Which mailbox holds it: with the other client gone, one frame is left (the reader's
    // opening frame and the reset make two).
    assert!(hub.close_client(other, native_sse_core::CloseReason::Server));
    assert_eq!(
        hub.queue_levels().queued_events,
        2,
        "the reset went to the channel's reader alone"
    );
    assert_eq!(handle.reset_readers(None), 1, "None: every client");
    assert_eq!(hub.queue_levels().queued_events, 3);
    assert!(hub.close_client(reader, native_sse_core::CloseReason::Server));
}
