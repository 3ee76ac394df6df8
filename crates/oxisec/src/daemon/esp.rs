//! The adapter between the daemon's packet threads and the ESP crate's
//! SAD/SPD. Until `oxisec-esp` lands this keeps the installed SAs (so that
//! `status` and the command ordering work) and drops every packet.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Mutex;

use oxisec_ike::SaCommand;

use crate::status::Traffic;

pub enum Decap {
    /// The inner packet is `buf[range]`.
    Deliver(Range<usize>),
    Drop(String),
}

pub enum Encap {
    /// Send `buf[range]` as the UDP payload from `local` to `remote`.
    Send {
        range: Range<usize>,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// No policy protects this packet.
    NoPolicy,
    Drop(String),
}

#[derive(Default)]
pub struct Tables {
    sas: Mutex<HashMap<(u32, bool), ()>>,
}

impl Tables {
    /// Bytes kept free in front of a packet read from the TUN device.
    pub const HEADROOM: usize = 64;

    pub fn engine_name() -> &'static str {
        "ESP data plane not built in yet: packets are dropped"
    }

    pub fn apply(&self, cmd: &SaCommand) -> Result<(), String> {
        let mut sas = self
            .sas
            .lock()
            .map_err(|_| "SAD lock poisoned".to_string())?;
        match cmd {
            SaCommand::InstallInbound { sa, .. } => {
                sas.insert((sa.spi, true), ());
            }
            SaCommand::InstallOutbound { sa, .. } => {
                sas.insert((sa.spi, false), ());
            }
            SaCommand::Delete { spi, inbound, .. } => {
                sas.remove(&(*spi, *inbound));
            }
        }
        Ok(())
    }

    pub fn counters(&self, spi: u32, inbound: bool) -> Option<Traffic> {
        let sas = self.sas.lock().ok()?;
        sas.contains_key(&(spi, inbound)).then(Traffic::default)
    }

    pub fn clear(&self) {
        if let Ok(mut s) = self.sas.lock() {
            s.clear();
        }
    }

    pub fn decapsulate(&self, _buf: &mut [u8], _len: usize, _from: SocketAddr) -> Decap {
        Decap::Drop("no ESP data plane".into())
    }

    pub fn encapsulate(&self, _buf: &mut [u8], _head: usize, _len: usize) -> Encap {
        Encap::NoPolicy
    }
}
