//! native-sse-core: the Server-Sent Events engine behind the `native-sse` Node addon, with no
//! dependency on Node or napi, so all of it is tested with `cargo test` alone.
//!
//! - [`frame`]: spec-exact event encoding with validation before any byte is written.
//! - `log`: an append-only log of frames per channel, read through per-client cursors.
//! - [`queue`]: each client's bounded mailbox, with an overflow policy.
//! - `feed`: what a writer sends next, its logs and mailbox merged in call order.
//! - `writer`: one client's writer task over its transport's sink (`socket_sink`, `node_sink`).
//! - [`hub`]: the hub's calls: registering, adopting sockets, publishing, sending, closing.
//! - `registry`: clients, channels with their logs and subscribers, per-channel history.
//! - `lifecycle`: close requests, and recording a client's departure exactly once.

pub mod admission;
pub mod backend;
mod batch;
mod client;
pub mod close;
pub mod config;
pub mod error;
pub mod events;
mod feed;
pub mod frame;
pub mod hub;
mod lifecycle;
mod log;
pub mod metrics;
mod node_sink;
mod peer_progress;
pub mod queue;
mod registry;
pub mod resume;
mod sequence;
pub mod shutdown;
mod socket;
#[cfg(unix)]
mod socket_sink;
pub mod stats;
mod test_hooks;
pub mod text;
mod wakeup;
mod writer;

pub use admission::Refusal;
pub use close::CloseReason;
pub use config::{History, HubConfig, OverflowPolicy};
pub use error::SseError;
pub use events::{Delivered, Departure, HubEvents};
pub use frame::Message;
pub use hub::{Delivery, Hub, QueueLevels};
pub use metrics::{ChannelMetrics, Metrics};
pub use resume::{ResetReason, Resume};
pub use shutdown::StagedClose;
pub use socket::SocketFd;
pub use stats::StatsSnapshot;
