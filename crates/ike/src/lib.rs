//! A sans-IO IKEv2 engine (RFC 7296).
//!
//! The [`Engine`] owns every IKE SA and routes datagrams by SPI. It never reads
//! a clock, opens a socket or spawns a thread: time and randomness come in,
//! and after every input the driver drains datagrams ([`Engine::poll_transmit`]),
//! data-plane commands ([`Engine::poll_sa_command`]), operator events
//! ([`Engine::poll_event`]) and the next deadline ([`Engine::poll_timeout`]).
#![forbid(unsafe_code)]

pub mod api;
mod auth;
mod child;
pub mod config;
mod cookie;
mod cp;
pub mod eap;
mod engine;
mod exchange;
mod fragment;
mod groups;
pub mod identity;
mod keys;
mod nat;
mod pool;
pub mod proposal;
mod ratelimit;
mod sa;
mod timers;
pub mod ts;
mod window;

pub use api::*;
pub use config::{
    Access, Auth, ChildConfig, ChildLifetime, ChildMode, Config, Connection, DosConfig, DpdAction,
    EapRelay, EapServer, EapTlsClient, EapTlsServer, FragmentationConfig, GroupAccess, IkeLifetime,
    LocalCert, NatKeepalive, PoolConfig, RemoteAccess, RetransmitConfig, SendCert, StartAction,
};
pub use eap::tls::TlsVersions;
pub use eap::{EapUsers, NtHash};
pub use engine::{Engine, Stats};
pub use groups::certificate_groups;
pub use identity::Identity;
pub use pool::Lease;
pub use proposal::{EspProposal, IkeProposal};
pub use ts::TsRange;
