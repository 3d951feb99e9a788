//! Keeps the bridge's tasks running. Each runs as a task of its own under a supervisor, so
//! a panic in one (a bug, or a reply no code path expected) does not silently stop the hub
//! from publishing or applying: the hub hears `backend` down with what happened, and the task
//! starts again after the reconnect delay, which catches up from the streams as after any
//! lost connection.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::backoff::Backoff;
use crate::bridge::Bridge;

/// Which of the bridge's tasks, for what is reported and which link it marks down.
#[derive(Clone, Copy)]
pub(crate) enum Task {
    Sender,
    Receiver,
    Signaler,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Sender => "sender",
            Task::Receiver => "receiver",
            Task::Signaler => "signaler",
        }
    }

    /// The link the hub's `backend` reports are made of; the signaler's is not one of them
    /// (its signals wait in their buffer while it starts again).
    fn link(self, bridge: &Bridge) -> Option<&AtomicBool> {
        match self {
            Task::Sender => Some(&bridge.sender_up),
            Task::Receiver => Some(&bridge.receiver_up),
            Task::Signaler => None,
        }
    }
}

/// Runs `task` until the hub closes, starting it again whenever it panics.
pub(crate) async fn supervise<F, Fut>(bridge: Arc<Bridge>, which: Task, task: F)
where
    F: Fn(Arc<Bridge>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Backoff::new(
        bridge.config.reconnect_min,
        bridge.config.reconnect_max,
        bridge.publisher.rotate_left(31),
    );
    while !bridge.hub.is_closed() {
        let failure = match tokio::spawn(task(bridge.clone())).await {
            // It returns only once the hub closed.
            Ok(()) => return,
            Err(error) if error.is_panic() => panic_message(error.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        let detail = format!(
            "the Redis {} task failed ({failure}); it starts again",
            which.name()
        );
        if let Some(link) = which.link(&bridge) {
            bridge.set_up(link, false, &detail);
        }
        tokio::time::sleep(backoff.delay()).await;
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
