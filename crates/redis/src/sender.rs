//! Empties the outbound buffer into Redis, in order: batches of events pipelined as
//! `EVALSHA` calls of the publish script on one connection (Redis runs them in the order
//! sent), one call for each run of consecutive events of one channel. An event leaves the
//! buffer once Redis answered for it. When a connection is lost mid-batch, the batch is sent
//! again on the next one; events Redis had already applied are skipped by the script (each
//! carries this hub's increasing number), so a resend never publishes twice.
//!
//! When Redis answers an event with an error (a user whose ACL forbids a command the script
//! runs, a key of the wrong type), the script has written nothing, so that event and those
//! after it stay in the buffer, uncounted, and are sent again after the reconnect delay
//! (growing while Redis keeps refusing); the sender is reported down, with Redis's answer,
//! until Redis applies them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, Script, Value};

use crate::backoff::Backoff;
use crate::bridge::Bridge;
use crate::outbound::Numbered;
use crate::scripts;

/// Events per pipeline: enough to amortize the round trip, few enough that a resend after a
/// lost connection is cheap.
const BATCH: usize = 256;
/// Connection attempts and replies that take longer fail, so a Redis that stopped answering
/// is treated as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

pub(crate) async fn run(bridge: Arc<Bridge>) {
    let script = Script::new(scripts::PUBLISH);
    let mut backoff = Backoff::new(
        bridge.config.reconnect_min,
        bridge.config.reconnect_max,
        bridge.publisher,
    );
    let mut batch = Vec::with_capacity(BATCH);
    // Redis refused the front of the buffer (the publish script failed): the sender stays
    // reported down, and its retries keep backing off, until Redis applies it. A connection
    // made meanwhile says nothing of whether Redis now takes it.
    let mut refused = false;
    while !bridge.hub.is_closed() {
        let connected = bridge
            .client()
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await;
        let mut connection = match connected {
            Ok(connection) => connection,
            Err(error) => {
                bridge.set_up(&bridge.sender_up, false, &error.to_string());
                tokio::time::sleep(backoff.delay()).await;
                continue;
            }
        };
        if let Err(error) = script.load_async(&mut connection).await {
            bridge.set_up(&bridge.sender_up, false, &error.to_string());
            tokio::time::sleep(backoff.delay()).await;
            continue;
        }
        if !refused {
            backoff.reset();
            bridge.set_up(&bridge.sender_up, true, "connected");
        }
        loop {
            match send_until_error(&bridge, &script, &mut connection, &mut batch, refused).await {
                Stop::Applied => {
                    refused = false;
                    backoff.reset();
                    bridge.set_up(&bridge.sender_up, true, "Redis applies publishes again");
                }
                Stop::Refused(detail) => {
                    refused = true;
                    bridge.set_up(&bridge.sender_up, false, &detail);
                    break;
                }
                Stop::Lost(detail) => {
                    bridge.set_up(&bridge.sender_up, false, &detail);
                    break;
                }
            }
        }
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// Why `send_until_error` returned.
enum Stop {
    /// The connection failed, or Redis Cluster moved the namespace: connect again.
    Lost(String),
    /// Redis answered the front event with an error: nothing of it was applied (the publish
    /// script writes nothing unless it completes), and it stays at the front of the buffer.
    Refused(String),
    /// A batch was applied in full while `refused` said the last one was not.
    Applied,
}

/// Sends batches until the connection fails or Redis refuses one (what is applied leaves the
/// buffer; the rest is sent again). With `refused`, returns `Stop::Applied` as soon as a batch
/// is applied in full.
async fn send_until_error(
    bridge: &Bridge,
    script: &Script,
    connection: &mut MultiplexedConnection,
    batch: &mut Vec<Numbered>,
    refused: bool,
) -> Stop {
    // The length of each run of the batch, in order.
    let mut runs = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        bridge.outbound.front(BATCH, batch);
        if batch.is_empty() {
            bridge.outbound.ready.notified().await;
            continue;
        }
        let mut pipe = redis::pipe();
        // Each call's reply on its own, errors included: what Redis applied before a refused
        // run leaves the buffer; the refused run and those after it stay.
        pipe.ignore_errors();
        runs.clear();
        let mut previous = 0;
        for run in runs_of(batch) {
            add_publish(&mut pipe, bridge, script, run, previous);
            previous = run[run.len() - 1].number;
            runs.push(run.len());
        }
        let replies = match pipe.query_async::<Vec<Value>>(connection).await {
            Ok(replies) => replies,
            Err(error) => return Stop::Lost(error.to_string()),
        };
        // The script fails a run whose predecessor in the batch failed (`NOTNEXT`), so what
        // Redis applied is the runs answered before the first error.
        let answered = replies
            .iter()
            .take_while(|reply| !matches!(reply, Value::ServerError(_)))
            .count()
            .min(runs.len());
        let applied: usize = runs[..answered].iter().sum();
        bridge.outbound.remove_front(applied);
        bridge
            .counters
            .sent
            .fetch_add(applied as u64, Ordering::Relaxed);
        let error = match replies.into_iter().nth(answered) {
            Some(Value::ServerError(error)) => error,
            _ if applied < batch.len() => {
                return Stop::Lost(format!(
                    "Redis answered {applied} of {} publishes",
                    batch.len()
                ))
            }
            _ if refused => return Stop::Applied,
            _ => continue,
        };
        match error.code() {
            "NOSCRIPT" => {
                // Redis restarted and forgot the script: load it and send the rest again.
                if let Err(error) = script.load_async(connection).await {
                    return stop(bridge, error);
                }
            }
            "NOMETA" => {
                // A new namespace, or Redis came back empty: restore the epoch and counter
                // from what this hub applied, then send the rest again.
                if let Err(error) = ensure_namespace(bridge, connection).await {
                    return stop(bridge, error);
                }
            }
            _ => return stop(bridge, error.into()),
        }
    }
}

/// What `error` means for the sender: a redirect or a lost connection (connect again), or an
/// error Redis answered (`Stop::Refused`).
fn stop(bridge: &Bridge, error: redis::RedisError) -> Stop {
    if let Some(redirected) = bridge.follow_redirect(&error) {
        return Stop::Lost(redirected);
    }
    match (error.kind(), error.code(), error.detail()) {
        (ErrorKind::Server(_) | ErrorKind::Extension, Some(code), detail) => {
            Stop::Refused(format!(
                "Redis refused a publish, which stays buffered and is sent again: {code} {}",
                detail.unwrap_or("")
            ))
        }
        _ => Stop::Lost(error.to_string()),
    }
}

/// Runs `scripts::ENSURE` with this hub's epoch and applied position; takes the namespace's
/// epoch. Returns the namespace's last position.
pub(crate) async fn ensure_namespace(
    bridge: &Bridge,
    connection: &mut MultiplexedConnection,
) -> redis::RedisResult<u64> {
    let hub = &bridge.hub;
    let (epoch, last): (String, u64) = Script::new(scripts::ENSURE)
        .key(&bridge.keys.meta)
        .arg(format!("{:08x}", hub.epoch()))
        .arg(hub.applied_position())
        .invoke_async(connection)
        .await?;
    if let Ok(epoch) = u32::from_str_radix(&epoch, 16) {
        hub.set_epoch(epoch);
    }
    Ok(last)
}

/// The most one call of the publish script announces, in bytes of event bodies. A call's
/// announcements reach each subscriber's output buffer together, and Redis disconnects a
/// pub/sub client whose buffer passes 32 MB (`client-output-buffer-limit pubsub`, by default):
/// every hub's receiver would then go down and catch up from the streams. An event larger than
/// this is a run of its own, as every event was before runs.
const RUN_BYTES: usize = 1024 * 1024;

/// The length of the run at the front of `events` (not empty): the events after the first of
/// the same channel (or broadcasts), kept alike, up to RUN_BYTES of bodies in all.
fn run_length(events: &[Numbered]) -> usize {
    let first = &events[0].event;
    let mut bytes = first.body.len();
    let mut length = 1;
    for numbered in &events[1..] {
        let event = &numbered.event;
        bytes += event.body.len();
        let alike = event.channel == first.channel
            && event.keep_events == first.keep_events
            && event.keep_for == first.keep_for;
        if !alike || bytes > RUN_BYTES {
            break;
        }
        length += 1;
    }
    length
}

/// The runs of `batch` (see `run_length`), in order.
fn runs_of(mut rest: &[Numbered]) -> impl Iterator<Item = &[Numbered]> {
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (run, after) = rest.split_at(run_length(rest));
        rest = after;
        Some(run)
    })
}

/// One call of the publish script for `run` (events of one channel, in order); `previous`: the
/// number of the event before it in its batch (0: the batch starts with it).
fn add_publish(
    pipe: &mut redis::Pipeline,
    bridge: &Bridge,
    script: &Script,
    run: &[Numbered],
    previous: u64,
) {
    let keys = &bridge.keys;
    let first = &run[0].event;
    let channel = first.channel.as_deref();
    let keep = first
        .keep_events
        .unwrap_or(bridge.config.stream_events)
        .max(1);
    // A channel with history keeps its stream as long as its history keeps events; one
    // without keeps it only for the recovery window (what a hub needs to fill a gap).
    let keep_ms = match (first.keep_events, first.keep_for) {
        (_, Some(age)) => age.as_millis().max(1) as u64,
        (Some(_), None) => 0,
        (None, None) => bridge.config.recovery.as_millis().max(1) as u64,
    };
    let call = pipe
        .cmd("EVALSHA")
        .arg(script.get_hash())
        .arg(6)
        .arg(&keys.meta)
        .arg(keys.stream(channel))
        .arg(&keys.live)
        .arg(&keys.floors)
        .arg(&keys.lasts)
        .arg(keys.publisher(bridge.publisher))
        .arg(&keys.events)
        .arg(previous)
        .arg(keep)
        .arg(keep_ms)
        .arg(channel.unwrap_or(""))
        .arg(if channel.is_some() { "c" } else { "b" });
    for numbered in run {
        let event = &numbered.event;
        call.arg(numbered.number)
            .arg(event.app_id.as_deref().unwrap_or(""))
            .arg(&event.body[..])
            .arg(event.trace.as_deref().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use native_sse_core::backend::Outgoing;
    use std::time::Duration;

    fn event(
        number: u64,
        channel: Option<&str>,
        body: usize,
        keep_events: Option<usize>,
    ) -> Numbered {
        Numbered {
            number,
            event: Outgoing {
                channel: channel.map(Into::into),
                app_id: None,
                body: Bytes::from(vec![b'x'; body]),
                keep_events,
                keep_for: None,
                trace: None,
            },
        }
    }

    fn runs(events: &[Numbered]) -> Vec<usize> {
        runs_of(events).map(<[Numbered]>::len).collect()
    }

    #[test]
    fn a_run_is_one_channels_consecutive_events_kept_alike() {
        let events = [
            event(1, Some("a"), 10, None),
            event(2, Some("a"), 10, None),
            event(3, None, 10, None),
            event(4, None, 10, None),
            event(5, Some("a"), 10, None),
            event(6, Some("a"), 10, Some(3)),
            event(7, Some("b"), 10, Some(3)),
        ];
        assert_eq!(runs(&events), [2, 2, 1, 1, 1]);
        let mut kept_longer = event(9, Some("a"), 10, None);
        kept_longer.event.keep_for = Some(Duration::from_secs(1));
        assert_eq!(run_length(&[event(8, Some("a"), 10, None), kept_longer]), 1);
    }

    #[test]
    fn a_run_announces_at_most_run_bytes_and_a_larger_event_goes_alone() {
        let quarter = RUN_BYTES / 4;
        let events: Vec<Numbered> = (1..=9)
            .map(|n| event(n, Some("a"), quarter, None))
            .collect();
        assert_eq!(runs(&events), [4, 4, 1]);
        let big = [
            event(1, Some("a"), RUN_BYTES + 1, None),
            event(2, Some("a"), 1, None),
            event(3, Some("a"), 1, None),
        ];
        assert_eq!(runs(&big), [1, 2]);
    }
}
