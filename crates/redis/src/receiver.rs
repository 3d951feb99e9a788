//! Subscribes to the namespace's announcements and applies them in position order. Before
//! taking live announcements (at start and after every reconnect), and whenever a position
//! skips, it reads what it has not applied from the streams (`catch_up`): pub/sub drops what
//! arrives while a subscriber is away, the streams do not. What a stream no longer holds
//! cannot be recovered: that channel's clients get the reset signal (reason `gap`).
//!
//! The same subscription takes the namespace's signals (`Keys::signals`), handed to the
//! embedder as they come: subscribed to both before the hub is told it is up, so every
//! resubscription covers both. Signals are stored nowhere: those published while the
//! subscription was lost are not caught up, which the `backend` reports (down, then up) tell.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use native_sse_core::RemoteEvent;
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use crate::announcement;
use crate::backoff::Backoff;
use crate::bridge::Bridge;
use crate::sender::{connection_config, ensure_namespace};

/// Entries per `XRANGE` page.
const PAGE: usize = 1000;

pub(crate) async fn run(bridge: Arc<Bridge>) {
    let mut backoff = Backoff::new(
        bridge.config.reconnect_min,
        bridge.config.reconnect_max,
        bridge.publisher.rotate_left(17),
    );
    while !bridge.hub.is_closed() {
        let lost = match listen(&bridge, &mut backoff).await {
            Ok(()) => "the subscription ended".to_string(),
            Err(error) => bridge
                .follow_redirect(&error)
                .unwrap_or_else(|| error.to_string()),
        };
        bridge.set_up(&bridge.receiver_up, false, &lost);
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// One subscription: connect, subscribe, catch up, then apply until it is lost.
async fn listen(bridge: &Bridge, backoff: &mut Backoff) -> RedisResult<()> {
    let hub = &bridge.hub;
    // Subscribed before reading where the namespace is: whatever is published from here on
    // is announced to us or already in the streams, so nothing falls between the two.
    let client = bridge.client();
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&bridge.keys.events).await?;
    pubsub
        .subscribe(&bridge.keys.signals)
        .await
        .map_err(|error| match error.code() {
            // Redis's answer names no channel, and an ACL rule written before signals lacks it.
            Some("NOPERM") => redis::RedisError::from((
                error.kind(),
                "NOPERM: the Redis user may not subscribe to the namespace's signals channel",
                bridge.keys.signals.clone(),
            )),
            _ => error,
        })?;
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&connection_config())
        .await?;
    let last = ensure_namespace(bridge, &mut connection).await?;
    let initial = !bridge.is_loaded();
    catch_up(bridge, &mut connection, last, initial).await?;
    bridge.loaded.store(true, Ordering::Release);
    backoff.reset();
    bridge.set_up(&bridge.receiver_up, true, "subscribed");
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        #[cfg(feature = "test-hooks")]
        if message.get_payload_bytes() == b"native-sse test hook: panic the receiver" {
            panic!("test hook: the receiver panicked");
        }
        if message.get_channel_name() == bridge.keys.signals {
            bridge.receive_signal(message.get_payload_bytes());
            continue;
        }
        let applied = hub.applied_position();
        let event = announcement::parse(message.get_payload_bytes())
            .filter(|event| event.epoch == hub.epoch());
        let position = event.as_ref().map(|event| event.position);
        let Some(event) = event.filter(|event| event.position == applied.saturating_add(1)) else {
            // Not the next event: one already applied, one after a gap, or nothing a hub sent
            // (malformed, another epoch, a position never given). Only Redis's own records are
            // trusted then: the streams, up to the namespace's counter. A real event beyond
            // the next is among them; a forged one never is, and moves nothing.
            if position.is_some_and(|position| position <= applied) {
                continue;
            }
            let last = namespace_last(bridge, &mut connection).await?;
            if last > applied {
                bridge.counters.gaps.fetch_add(1, Ordering::Relaxed);
                catch_up(bridge, &mut connection, last, false).await?;
            }
            continue;
        };
        let age = age_of(event.stored_ms);
        hub.apply_remote(RemoteEvent {
            channel: event.channel,
            position: event.position,
            epoch: event.epoch,
            app_id: event.app_id,
            body: event.body,
            age,
            trace: event.trace,
        });
        bridge.counters.received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The last position the namespace gave (its counter in Redis).
async fn namespace_last(
    bridge: &Bridge,
    connection: &mut MultiplexedConnection,
) -> RedisResult<u64> {
    let seq: Option<u64> = redis::cmd("HGET")
        .arg(&bridge.keys.meta)
        .arg("seq")
        .query_async(connection)
        .await
        .unwrap_or(None);
    Ok(seq.unwrap_or(0))
}

/// One stream entry read back.
struct Stored {
    position: u64,
    stream: usize,
    stored_ms: u64,
    app_id: Option<String>,
    body: Vec<u8>,
    /// The publisher's trace context (field `c`).
    trace: Option<String>,
}

/// Applies, in position order, every event the streams hold past what this hub applied, and
/// moves the applied position to at least `through` (positions up to it that no stream holds
/// were trimmed or expired). On the first catch-up this loads the history Redis keeps and
/// records each log's floor; later, a stream whose floor passed what was applied lost events
/// this hub never got, and its readers get the reset signal.
async fn catch_up(
    bridge: &Bridge,
    connection: &mut MultiplexedConnection,
    through: u64,
    initial: bool,
) -> RedisResult<()> {
    let hub = &bridge.hub;
    let applied = hub.applied_position();
    if through <= applied && !initial {
        return Ok(());
    }
    let keys = &bridge.keys;
    let names: Vec<String> = if initial {
        // What Redis keeps (the live channels): their history is loaded here.
        redis::cmd("ZRANGE")
            .arg(&keys.live)
            .arg(0)
            .arg(-1)
            .query_async(connection)
            .await?
    } else {
        // What this hub has readers or history for: nothing else here can have missed
        // anything, so a gap costs what this process serves, not what the namespace holds.
        hub.channel_names().iter().map(|n| n.to_string()).collect()
    };
    let channels: Vec<Option<&str>> = std::iter::once(None)
        .chain(names.iter().map(|n| Some(n.as_str())))
        .collect();
    let streams: Vec<String> = channels.iter().map(|c| keys.stream(*c)).collect();
    let mut facts = redis::pipe();
    facts.cmd("HMGET").arg(&keys.floors).arg(&streams);
    facts.cmd("HMGET").arg(&keys.lasts).arg(&streams);
    facts.cmd("HGET").arg(&keys.meta).arg("expired");
    for stream in &streams {
        facts.cmd("EXISTS").arg(stream);
    }
    let facts: Vec<Value> = facts.query_async(connection).await?;
    // Replies of an unexpected shape read as "nothing recorded", never as a panic.
    let floors = numbers(facts.first());
    let lasts = numbers(facts.get(1));
    let expired = facts.get(2).map_or(0, number);

    // Every stream's first page in one round trip; a stream with more, page by page.
    let mut first_pages = redis::pipe();
    for stream in &streams {
        first_pages
            .cmd("XRANGE")
            .arg(stream)
            .arg(applied + 1)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE);
    }
    let first_pages: Vec<Value> = first_pages.query_async(connection).await?;
    let mut stored = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let mut page = first_pages.get(index).cloned().unwrap_or(Value::Nil);
        loop {
            let before = stored.len();
            read_entries(&page, index, &mut stored);
            let start = match stored[before..].last() {
                Some(last) if stored.len() - before == PAGE => last.position + 1,
                _ => break,
            };
            page = redis::cmd("XRANGE")
                .arg(stream)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(connection)
                .await?;
        }
    }
    stored.sort_unstable_by_key(|s| s.position);

    for (index, channel) in channels.iter().enumerate() {
        let exists = matches!(facts.get(3 + index), Some(Value::Int(1)));
        // An expired stream lost everything up to its last event; a held one, up to its floor.
        let recorded = if exists { &floors } else { &lasts };
        let mut floor = recorded.get(index).copied().unwrap_or(0);
        if !exists && floor == 0 && channel.is_some() && expired > applied {
            // No stream and no record: never published, or forgotten once its stream
            // expired. Redis no longer tells which, so what any forgotten stream held is
            // taken as lost here: a reset, never a silent gap.
            floor = expired;
        }
        if floor == 0 {
            continue;
        }
        if initial {
            hub.raise_floor(*channel, floor);
        } else if floor > applied {
            hub.raise_floor(*channel, floor);
            hub.reset_readers(*channel);
            bridge.counters.gap_resets.fetch_add(1, Ordering::Relaxed);
        }
    }
    let epoch = hub.epoch();
    let mut recovered = 0;
    for entry in &stored {
        if entry.position <= hub.applied_position() {
            continue;
        }
        recovered += 1;
        hub.apply_remote(RemoteEvent {
            channel: channels[entry.stream],
            position: entry.position,
            epoch,
            app_id: entry.app_id.as_deref(),
            body: &entry.body,
            age: age_of(entry.stored_ms),
            trace: entry.trace.as_deref(),
        });
    }
    bridge
        .counters
        .recovered
        .fetch_add(recovered, Ordering::Relaxed);
    hub.advance_position(through);
    Ok(())
}

/// The entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`, ids `<position>-0`.
fn read_entries(reply: &Value, stream: usize, out: &mut Vec<Stored>) {
    let Value::Array(entries) = reply else {
        return;
    };
    for entry in entries {
        let Value::Array(parts) = entry else { continue };
        let (Some(Value::BulkString(id)), Some(Value::Array(fields))) =
            (parts.first(), parts.get(1))
        else {
            continue;
        };
        let Some(position) = std::str::from_utf8(id)
            .ok()
            .and_then(|id| id.split('-').next())
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        let mut entry = Stored {
            position,
            stream,
            stored_ms: 0,
            app_id: None,
            body: Vec::new(),
            trace: None,
        };
        for pair in fields.chunks(2) {
            let [Value::BulkString(name), Value::BulkString(value)] = pair else {
                continue;
            };
            match name.as_slice() {
                b"t" => {
                    entry.stored_ms = std::str::from_utf8(value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0)
                }
                b"a" if !value.is_empty() => {
                    entry.app_id = String::from_utf8(value.clone()).ok();
                }
                b"b" => entry.body = value.clone(),
                b"c" if !value.is_empty() => {
                    entry.trace = String::from_utf8(value.clone()).ok();
                }
                _ => {}
            }
        }
        out.push(entry);
    }
}

/// An `HMGET` reply as numbers (absent or not a number: 0).
fn numbers(reply: Option<&Value>) -> Vec<u64> {
    let Some(Value::Array(values)) = reply else {
        return Vec::new();
    };
    values.iter().map(number).collect()
}

/// A number Redis answered as text or as an integer; 0 for anything else (nil included).
fn number(value: &Value) -> u64 {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// How long ago Redis stored an event, by the wall clock (0 when the clocks disagree).
fn age_of(stored_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(now.saturating_sub(stored_ms))
}
