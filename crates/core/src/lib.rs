//! native-sse-core: the Server-Sent Events engine behind the `native-sse` Node addon, with no
//! dependency on Node or napi, so all of it is tested with `cargo test` alone.
//!
//! - [`frame`]: spec-exact event encoding with validation before any byte is written.
//! - [`queue`]: bounded per-client queues with an overflow policy.
//! - [`hub`]: registry, fan-out, socket adoption and the tokio runtime running writer tasks.

mod batch;
mod client;
pub mod close;
pub mod config;
mod connection;
pub mod error;
pub mod events;
pub mod frame;
pub mod hub;
mod node_connection;
mod peer_progress;
pub mod queue;
mod socket;
pub mod stats;
mod test_hooks;

pub use close::CloseReason;
pub use config::{HubConfig, OverflowPolicy};
pub use error::SseError;
pub use events::HubEvents;
pub use frame::Message;
pub use hub::{Hub, QueueLevels};
pub use stats::StatsSnapshot;
