//! What the engine is told to do: connections, their children, identities,
//! credentials and proposals. Parsed from TOML by the `oxisec` binary; the
//! engine only sees these checked values.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use oxisec_crypto::Secret;

pub use crate::identity::Identity;
pub use crate::proposal::{EspProposal, IkeProposal};
pub use crate::ts::TsRange;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub connections: Vec<Arc<Connection>>,
    pub retransmit: RetransmitConfig,
}

/// RFC 7296 §2.1 retransmission; defaults are strongSwan's (4 s, base 1.8, 5 tries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    pub timeout: Duration,
    pub base: f64,
    /// Retransmissions after the first send; the SA is declared dead when the
    /// last one times out.
    pub tries: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
        }
    }
}

/// Authentication credential of one side.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Pre-shared key (RFC 7296 §2.15).
    Psk(Secret),
}

/// Whether a child is brought up when the daemon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAction {
    #[default]
    None,
    Start,
}

/// One CHILD_SA template.
#[derive(Debug, Clone)]
pub struct ChildConfig {
    pub name: String,
    /// Our side's selectors (TSi when we initiate, TSr when we respond).
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    pub esp_proposals: Vec<EspProposal>,
    pub start_action: StartAction,
}

/// One IKE connection: a peer, identities, credentials, proposals, children.
#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    /// Addresses we accept as our own for this connection; empty = any.
    pub local_addrs: Vec<IpAddr>,
    /// Peer addresses: the first is initiated to, all are accepted as
    /// responder; empty = any (responder only).
    pub remote_addrs: Vec<IpAddr>,
    /// The peer's IKE port when we initiate (500).
    pub remote_port: u16,
    pub local_id: Identity,
    /// `None` accepts any identity that authenticates with our credentials.
    pub remote_id: Option<Identity>,
    pub local_auth: Auth,
    /// The credential the peer must prove; for PSK the same key.
    pub remote_auth: Auth,
    pub ike_proposals: Vec<IkeProposal>,
    pub children: Vec<ChildConfig>,
    /// Always use ESP in UDP (RFC 3948), also without a NAT, by announcing a
    /// NAT_DETECTION_SOURCE_IP that cannot match (as strongSwan's `encap=yes`).
    pub force_encap: bool,
}

/// Where datagrams come from and go to.
pub type Endpoint = SocketAddr;
