//! native-sse-core: the Server-Sent Events engine behind the `native-sse` Node addon, with no
//! dependency on Node or napi, so all of it is tested with `cargo test` alone. Its floors,
//! from the bottom (each file uses only files below it; docs/ARCHITECTURE.md draws them):
//!
//! - values: [`frame`] (spec-exact encoding), [`config`], [`close`], [`error`], [`events`]
//!   (what the hub tells its embedder), [`resume`] ids and placement, `sequence`, [`stats`].
//! - storage: `log` (a channel's append-only log of frames and the cursors reading it),
//!   [`mailbox`] (a client's own bounded queue), `client` (what a client's producers and its
//!   writer share), `registry` (clients, channels, subscriptions), `heartbeat_queue` (when
//!   parked writers' heartbeats are due).
//! - `state`: the hub's state and what every call needs of it: append, deliver, close and
//!   record a departure once. `dispatch`: the task that wakes a log's readers. `expiry`: the
//!   task that holds age bounds without traffic and drops channels nothing keeps.
//!   `heartbeats`: the task that resumes parked (idle) writers when their heartbeat is due.
//! - the connection: `feed` (mailbox and cursors merged in call order), `batch` (coalesced
//!   `writev`), `writer` (the per-client task and its drop guard), over `socket_sink` (native)
//!   or `relay_sink` (through the embedder).
//! - the front: [`hub`] (register, transports, send, close), `publish`, `subscriptions`,
//!   [`metrics`], [`shutdown`] (the staged close), [`remote`] (the backend's feed).

pub mod admission;
mod app_ids;
pub mod backend;
mod batch;
mod channel_settings;
mod client;
pub mod close;
pub mod config;
mod delivery_watch;
mod dispatch;
pub mod error;
pub mod events;
mod expiry;
mod feed;
pub mod frame;
mod frame_arena;
pub mod gzip;
mod heartbeat_queue;
mod heartbeats;
pub mod hub;
mod log;
pub mod mailbox;
pub mod metrics;
mod peer_progress;
mod publish;
mod registry;
mod relay_sink;
pub mod remote;
pub mod request_head;
pub mod resume;
mod sequence;
pub mod shutdown;
mod socket;
#[cfg(unix)]
mod socket_sink;
mod state;
pub mod stats;
mod subscriptions;
mod test_hooks;
pub mod text;
mod wakeup;
mod writer;

pub use admission::Refusal;
pub use channel_settings::ChannelCompression;
pub use close::CloseReason;
pub use config::{History, HubConfig, OverflowPolicy};
pub use error::{ErrorClass, ErrorCode, SseError};
pub use events::{Delivered, DeliveryReport, Departure, HubEvents};
pub use frame::Message;
pub use gzip::GzipSettings;
pub use hub::Hub;
pub use metrics::{ChannelMetrics, Metrics, QueueLevels};
pub use relay_sink::RELAY_CREDIT_BYTES;
pub use remote::{HubHandle, RemoteEvent};
pub use resume::{ResetReason, Resume};
pub use shutdown::StagedClose;
pub use socket::SocketFd;
pub use state::Delivery;
pub use stats::StatsSnapshot;
