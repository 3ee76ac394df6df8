//! The ESP data plane (RFC 4303), independent of any I/O.
//!
//! * [`PacketBuf`]: a buffer with head- and tailroom so that encapsulation
//!   and decapsulation happen in place, without copying the payload.
//! * [`ReplayWindow`]: anti-replay with 64-bit ESN (RFC 4303 Appendix A),
//!   checked before decryption and committed after.
//! * [`sa::OutboundSa`] / [`sa::InboundSa`] and the [`sad::Sad`] keyed by SPI.
//! * [`spd::Spd`]: which outbound SA protects a packet.
//! * [`encap`]: tunnel-mode encapsulation / decapsulation.
#![forbid(unsafe_code)]

pub mod buf;
pub mod encap;
pub mod replay;
pub mod sa;
pub mod sad;
pub mod spd;

// pub use buf::PacketBuf;
// pub use replay::ReplayWindow;
