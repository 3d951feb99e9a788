//! Who may attach: the hub's and each channel's cap on clients, and the refusal of every new
//! client once a close has begun. A refusal disconnects nobody: it is decided under the
//! registry's lock before anything is queued, so the count never overshoots the cap.

/// Why a client was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    /// The hub has `max_clients` clients.
    HubFull = 0,
    /// One of the channels asked for has its own `max_clients` subscribers.
    ChannelFull = 1,
    /// The hub is closing, or closed.
    Closing = 2,
    /// An authorization rule denied one of the channels asked for (the embedder's rules).
    Forbidden = 3,
    /// An authorization check failed or did not answer in time.
    AuthorizationFailed = 4,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::HubFull,
        Refusal::ChannelFull,
        Refusal::Closing,
        Refusal::Forbidden,
        Refusal::AuthorizationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::HubFull => "hub-full",
            Refusal::ChannelFull => "channel-full",
            Refusal::Closing => "closing",
            Refusal::Forbidden => "forbidden",
            Refusal::AuthorizationFailed => "authorization-failed",
        }
    }
}
