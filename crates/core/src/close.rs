//! Why a client left. Each client reports exactly one reason, once.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CloseReason {
    /// The peer left: it closed its side (FIN) or reset the connection (RST, which our next
    /// write may see as a broken pipe).
    Client = 1,
    /// A failure on our side: a socket error other than the peer leaving, a handoff that
    /// failed, a writer that panicked.
    Error = 2,
    /// The socket accepted no bytes for `write_timeout` while data was pending.
    Timeout = 3,
    /// The client's queue overflowed under the `Disconnect` policy.
    Slow = 4,
    /// The server closed it: `client.close()`, `hub.close()`.
    Server = 5,
}

impl CloseReason {
    pub const ALL: [CloseReason; 5] = [
        CloseReason::Client,
        CloseReason::Error,
        CloseReason::Timeout,
        CloseReason::Slow,
        CloseReason::Server,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Error => "error",
            CloseReason::Timeout => "timeout",
            CloseReason::Slow => "slow",
            CloseReason::Server => "server",
        }
    }

    pub fn from_u8(value: u8) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|r| *r as u8 == value)
    }
}
