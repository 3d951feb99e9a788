//! Empties the outbound buffer into Redis, in order: batches of events pipelined as
//! `EVALSHA` calls of the publish script on one connection (Redis runs them in the order
//! sent). An event leaves the buffer once Redis answered for its batch. When a connection is
//! lost mid-batch, the batch is sent again on the next one; events Redis had already applied
//! are skipped by the script (each carries this hub's increasing number), so a resend never
//! publishes twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script, Value};

use crate::backoff::Backoff;
use crate::outbound::Numbered;
use crate::{scripts, Bridge};

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
        backoff.reset();
        bridge.set_up(&bridge.sender_up, true, "connected");
        let error = send_until_error(&bridge, &script, &mut connection, &mut batch).await;
        bridge.set_up(&bridge.sender_up, false, &error);
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// Sends batches until the connection fails; returns why.
async fn send_until_error(
    bridge: &Bridge,
    script: &Script,
    connection: &mut MultiplexedConnection,
    batch: &mut Vec<Numbered>,
) -> String {
    loop {
        batch.clear();
        bridge.outbound.front(BATCH, batch);
        if batch.is_empty() {
            bridge.outbound.ready.notified().await;
            continue;
        }
        let mut pipe = redis::pipe();
        for numbered in batch.iter() {
            add_publish(&mut pipe, bridge, script, numbered);
        }
        match pipe.query_async::<Vec<Value>>(connection).await {
            Ok(_) => {
                bridge.outbound.remove_front(batch.len());
                bridge
                    .counters
                    .sent
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(error) if error.code() == Some("NOSCRIPT") => {
                // Redis restarted and forgot the script: load it and send the batch again.
                if let Err(error) = script.load_async(connection).await {
                    return error.to_string();
                }
            }
            Err(error) if error.code() == Some("NOMETA") => {
                // A new namespace, or Redis came back empty: restore the epoch and counter
                // from what this hub applied, then send the batch again.
                if let Err(error) = ensure_namespace(bridge, connection).await {
                    return error.to_string();
                }
            }
            Err(error) => {
                if let Some(redirected) = bridge.follow_redirect(&error) {
                    return redirected;
                }
                // A pipeline's failures come as one error: ask once more with a single
                // command of the namespace, whose MOVED (if that is what failed) is its own.
                let probe = redis::cmd("EXISTS")
                    .arg(&bridge.keys.meta)
                    .query_async::<i64>(connection)
                    .await;
                if let Some(redirected) = probe.err().and_then(|e| bridge.follow_redirect(&e)) {
                    return redirected;
                }
                return error.to_string();
            }
        }
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

fn add_publish(pipe: &mut redis::Pipeline, bridge: &Bridge, script: &Script, numbered: &Numbered) {
    let keys = &bridge.keys;
    let event = &numbered.event;
    let channel = event.channel.as_deref();
    let keep = event
        .keep_events
        .unwrap_or(bridge.config.stream_events)
        .max(1);
    // A channel with history keeps its stream as long as its history keeps events; one
    // without keeps it only for the recovery window (what a hub needs to fill a gap).
    let keep_ms = match (event.keep_events, event.keep_for) {
        (_, Some(age)) => age.as_millis().max(1) as u64,
        (Some(_), None) => 0,
        (None, None) => bridge.config.recovery.as_millis().max(1) as u64,
    };
    pipe.cmd("EVALSHA")
        .arg(script.get_hash())
        .arg(6)
        .arg(&keys.meta)
        .arg(keys.stream(channel))
        .arg(&keys.live)
        .arg(&keys.floors)
        .arg(&keys.lasts)
        .arg(keys.publisher(bridge.publisher))
        .arg(&keys.events)
        .arg(format!("{:08x}", bridge.hub.epoch()))
        .arg(numbered.number)
        .arg(keep)
        .arg(keep_ms)
        .arg(channel.unwrap_or(""))
        .arg(if channel.is_some() { "c" } else { "b" })
        .arg(event.app_id.as_deref().unwrap_or(""))
        .arg(&event.body[..]);
}
