//! The ESP data plane (RFC 4303), independent of any I/O.
//!
//! * [`PacketBuf`]: a buffer with head- and tailroom so that encapsulation
//!   and decapsulation happen in place, without copying the payload.
//! * [`ReplayWindow`]: anti-replay with 64-bit ESN (RFC 4303 Appendix A),
//!   checked before decryption and committed after.
//! * [`sa::OutboundSa`] / [`sa::InboundSa`] and the [`sad::Sad`] keyed by SPI
//!   (inbound) and child-SA id (outbound).
//! * [`spd::Spd`]: which outbound SA protects a packet (first match wins).
//! * [`encap`]: tunnel-mode encapsulation / decapsulation.
//! * [`selector::Selector`] and [`inner`]: traffic selectors and the IP header
//!   parsing they are matched with.
//! * [`snapshot`]: copy-on-write publication of the SAD and SPD to threads.
//! * [`stats`]: per-SA and global counters, drops by [`DropReason`].
//! * [`limits`]: soft and hard byte/packet limits per SA; the packet that
//!   first crosses one says so ([`Crossed`]), exactly once per SA.
//!
//! # Intended use by a driver
//!
//! The control plane (the thread running the IKE engine) owns the truth: it
//! keeps an `Arc<Snapshot<Sad>>` and an `Arc<Snapshot<Spd>>` and changes them
//! only by publishing new values:
//!
//! ```
//! # use std::sync::Arc;
//! # use oxisec_esp::{sad::Sad, spd::Spd, snapshot::{Snapshot, SnapshotReader}};
//! let sad = Arc::new(Snapshot::new(Sad::new()));
//! let spd = Arc::new(Snapshot::new(Spd::new()));
//! // On an SaCommand "install inbound SA":
//! // sad.update(|s| { s.insert_inbound(Arc::new(inbound_sa)); });
//! // Each worker thread, once:
//! let mut sad_view = SnapshotReader::new(Arc::clone(&sad));
//! let mut spd_view = SnapshotReader::new(Arc::clone(&spd));
//! // Per packet (or per batch): one atomic load each, no lock.
//! let _sad: &Sad = sad_view.get();
//! let _spd: &Spd = spd_view.get();
//! ```
//!
//! * **Outbound** (packet read from TUN into a [`PacketBuf`] at its reserved
//!   headroom): `spd.lookup_packet(buf.as_slice())` → on
//!   `Protect(child)`, `sad.outbound(child)` → [`encap::encapsulate`] → send
//!   the buffer's window to the SA's [`UdpEncap`] remote (or as
//!   IP protocol 50). `Protect` with no SA installed: drop and send the engine
//!   an acquire. [`EncapError::SequenceExhausted`](encap::EncapError): tell the
//!   engine to rekey (and watch [`OutboundSa::seq_used`](sa::OutboundSa::seq_used)
//!   to rekey well before). Better: give the SA [`Limits`] below the sequence
//!   space and tell the engine when `encapsulate` returns a [`Crossed`].
//! * **Inbound** (ESP from UDP 4500 after the non-ESP-marker demux, or from a
//!   raw protocol-50 socket): [`encap::decapsulate`] → write the window to TUN;
//!   [`Decapsulated::crossed`](encap::Decapsulated) says when a limit was crossed.
//!   [`DropReason::is_silent`] tells which drops are not worth a log line.
//!
//! The packet path takes no write lock on anything shared. Per-packet mutable
//! state lives in the SAs: the outbound sequence counter is an atomic (so any
//! number of threads may send on one SA), the inbound replay window is behind a
//! `Mutex` taken twice per packet for a few nanoseconds and never across
//! decryption. To avoid even that contention, shard inbound work by SPI (one SA
//! per thread) and outbound work by flow.
//!
//! Rekey: install the new inbound SA first, then the new outbound SA under the
//! child id (or point the SPD at a new id), and delete the old inbound SA after
//! a grace period so in-flight packets still decrypt. Old snapshots keep their
//! SAs alive until every worker has moved on.
#![forbid(unsafe_code)]

pub mod buf;
pub mod encap;
pub mod inner;
pub mod limits;
pub mod replay;
pub mod sa;
pub mod sad;
pub mod selector;
pub mod snapshot;
pub mod spd;
pub mod stats;
pub mod transport;

pub use buf::{BufStorage, PacketBuf};
pub use encap::{
    Decapsulated, EncapError, OuterAddrs, decapsulate, decapsulate_from, encap_overhead,
    encapsulate,
};
pub use limits::{Crossed, Limits};
pub use replay::ReplayWindow;
pub use sa::{InboundSa, Mode, OutboundSa, UdpEncap};
pub use sad::Sad;
pub use selector::{IpFamily, Selector};
pub use snapshot::{Snapshot, SnapshotReader};
pub use spd::{PolicyAction, Spd, SpdEntry};
pub use stats::{DropReason, SaStats};
