//! EAP-TLS framing (RFC 5216 §3.1), the half of EAP-TLS that is the same
//! for server and peer: the flags L, M, S, the TLS Message Length, one TLS
//! message reassembled from fragments (bounded by [`MAX_MESSAGE`]) and ours
//! cut into fragments that the peer acknowledges with empty messages.
use super::{FRAGMENT_SIZE_RANGE, MAX_MESSAGE};

/// Flags octet (RFC 5216 §3.1): the TLS Message Length field follows.
pub(crate) const FLAG_L: u8 = 0x80;
/// More fragments of this TLS message follow.
pub(crate) const FLAG_M: u8 = 0x40;
/// EAP-TLS Start (server's first request).
pub(crate) const FLAG_S: u8 = 0x20;

/// EAP header (4) + Type (1) + Flags (1).
pub(crate) const OVERHEAD: usize = 6;
/// The TLS Message Length field.
pub(crate) const LENGTH_FIELD: usize = 4;

/// One EAP-TLS packet as received, framing checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fragment<'a> {
    pub flags: u8,
    /// The TLS Message Length, if the L flag is set.
    pub total: Option<u32>,
    pub data: &'a [u8],
}

/// Why an EAP-TLS packet was refused.
pub(crate) fn parse_fragment(type_data: &[u8]) -> Result<Fragment<'_>, String> {
    let (&flags, rest) = type_data
        .split_first()
        .ok_or("EAP-TLS message without its Flags octet")?;
    if flags & FLAG_L != 0 {
        let [a, b, c, d, ..] = *rest else {
            return Err("EAP-TLS L flag without the TLS Message Length".into());
        };
        let total = u32::from_be_bytes([a, b, c, d]);
        Ok(Fragment {
            flags,
            total: Some(total),
            data: &rest[LENGTH_FIELD..],
        })
    } else {
        Ok(Fragment {
            flags,
            total: None,
            data: rest,
        })
    }
}

/// Reassembly of one TLS message from fragments, and fragmentation of
/// ours: the half of EAP-TLS that is the same for server and peer.
#[derive(Default)]
pub(crate) struct Framing {
    /// The peer's TLS message so far.
    incoming: Vec<u8>,
    /// Its announced length (L flag of the first fragment).
    announced: Option<usize>,
    /// Our TLS message, and how much of it is out.
    outgoing: Vec<u8>,
    sent: usize,
    /// Largest EAP packet we emit.
    fragment_size: usize,
}

/// What a received fragment amounts to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// More fragments follow: acknowledge with an empty message.
    NeedMore,
    /// The peer acknowledged our fragment: send the next one.
    Ack,
    /// A whole TLS message (possibly empty: an acknowledgement of our last
    /// fragment or of the end).
    Complete(Vec<u8>),
}

impl Framing {
    pub fn new(fragment_size: usize) -> Framing {
        Framing {
            fragment_size: fragment_size
                .clamp(*FRAGMENT_SIZE_RANGE.start(), *FRAGMENT_SIZE_RANGE.end()),
            ..Framing::default()
        }
    }

    /// Our message still has fragments to go out.
    pub fn sending(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Takes one received EAP-TLS packet (the type data after the Type).
    pub fn receive(&mut self, type_data: &[u8]) -> Result<Received, String> {
        let f = parse_fragment(type_data)?;
        if self.sending() {
            // Mid-way through our message the peer may only acknowledge.
            if !f.data.is_empty() || f.flags & (FLAG_M | FLAG_L) != 0 {
                return Err("EAP-TLS peer sent data instead of acknowledging our fragment".into());
            }
            return Ok(Received::Ack);
        }
        if let Some(total) = f.total {
            let total = usize::try_from(total).unwrap_or(usize::MAX);
            if total > MAX_MESSAGE {
                return Err(format!(
                    "EAP-TLS message of {total} octets announced, more than {MAX_MESSAGE}"
                ));
            }
            match self.announced {
                None if self.incoming.is_empty() => self.announced = Some(total),
                Some(a) if a == total => {}
                _ => return Err("EAP-TLS TLS Message Length changed between fragments".into()),
            }
        }
        let limit = self.announced.unwrap_or(MAX_MESSAGE);
        if self.incoming.len() + f.data.len() > limit {
            return Err(format!(
                "EAP-TLS fragments exceed the {limit}-octet TLS message"
            ));
        }
        self.incoming.extend_from_slice(f.data);
        if f.flags & FLAG_M != 0 {
            if f.data.is_empty() {
                return Err("EAP-TLS fragment with the M flag but no data".into());
            }
            return Ok(Received::NeedMore);
        }
        if let Some(a) = self.announced.take()
            && a != self.incoming.len()
        {
            return Err(format!(
                "EAP-TLS message of {} octets, {a} announced",
                self.incoming.len()
            ));
        }
        Ok(Received::Complete(std::mem::take(&mut self.incoming)))
    }

    /// Queues our next TLS message.
    pub fn queue(&mut self, message: Vec<u8>) -> Result<(), String> {
        if message.len() > MAX_MESSAGE {
            return Err(format!(
                "our TLS message of {} octets exceeds {MAX_MESSAGE}",
                message.len()
            ));
        }
        self.outgoing = message;
        self.sent = 0;
        Ok(())
    }

    /// The type data (Flags, [Length], data) of the next fragment of our
    /// message, or of an empty message (an acknowledgement) when nothing is
    /// queued. `flags` is ORed in (S for a Start).
    pub fn next_fragment(&mut self, flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let first = self.sent == 0;
        let rest = self.outgoing.len() - self.sent;
        let mut room = self.fragment_size - OVERHEAD;
        let mut f = flags;
        if first && !self.outgoing.is_empty() {
            // The length goes with the first fragment (always, as
            // strongSwan's include_length: some peers want it).
            f |= FLAG_L;
            room -= LENGTH_FIELD;
        }
        let take = rest.min(room);
        if take < rest {
            f |= FLAG_M;
        }
        out.push(f);
        if f & FLAG_L != 0 {
            // Bounded by MAX_MESSAGE in queue().
            out.extend_from_slice(&(self.outgoing.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.outgoing[self.sent..self.sent + take]);
        self.sent += take;
        if !self.sending() {
            self.outgoing.clear();
            self.sent = 0;
        }
        out
    }
}
