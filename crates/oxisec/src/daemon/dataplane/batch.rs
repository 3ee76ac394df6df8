//! Batched UDP I/O for the data plane: many datagrams per system call.
//!
//! * [`RecvBatch`]: `recvmmsg` into fixed slots, each large enough for a
//!   UDP GRO datagram (the kernel's coalesced run of same-size datagrams
//!   from one sender, up to 64 KiB, with its segment size in a `UDP_GRO`
//!   control message), with each datagram's local address (`IP_PKTINFO`).
//! * [`SendBatch`]: `sendmmsg` of messages each of which may carry a run
//!   of equal-size ESP packets to one peer as one UDP GSO send
//!   (`UDP_SEGMENT`): the kernel cuts it into datagrams as late as
//!   possible, in the best case on the receiving socket.
//!
//! All memory is allocated once per thread; the per-call work is filling
//! in the kernel's header arrays. The `unsafe` here is confined to those
//! arrays and the two system calls: every pointer handed to the kernel
//! points into a boxed slice owned by the batch and borrowed for the call.
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Room for the control messages of one datagram: IPv6 packet info (20 + 16
/// header) and a UDP segment size (4 + 16), aligned, with margin.
const CMSG_SPACE: usize = 128;

/// Most segments in one UDP GSO send (the kernel's `UDP_MAX_SEGMENTS` was 64
/// before Linux 5.? and 128 since; the smaller works everywhere).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most bytes in one UDP GSO send: an IPv4 or IPv6 packet's 64 KiB less the
/// headers, with margin.
pub const MAX_GSO_BYTES: usize = 65_000;

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Cmsg([u8; CMSG_SPACE]);

/// What one received datagram was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes received (for a GRO datagram: all its segments).
    pub len: usize,
    /// Segment size: each `seg` bytes (the last may be shorter) are one
    /// datagram as the peer sent it. `len` when the kernel did not coalesce.
    pub seg: usize,
    pub remote: SocketAddr,
    /// Our address and port the datagram was sent to.
    pub local: SocketAddr,
}

/// Free bytes in front of every receive slot: transport-mode
/// decapsulation writes the rebuilt IP header (20 or 40 bytes) over the
/// ESP header and IV, which are shorter with AEAD suites (16 bytes), and
/// needs up to 24 bytes more in front (see `daemon::transport`).
pub const RX_HEADROOM: usize = 64;

/// `recvmmsg` state of one socket reader.
pub struct RecvBatch {
    area: Box<[u8]>,
    slot: usize,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[Cmsg]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    meta: Box<[RecvMeta]>,
}

impl RecvBatch {
    /// `slots` datagrams of up to `slot` bytes each per call.
    pub fn new(slots: usize, slot: usize) -> RecvBatch {
        let slots = slots.max(1);
        let unspec = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        // SAFETY: all-zero is a valid value of these plain C structs (null
        // pointers and zero lengths; they are filled before every call).
        let zeroed_hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        RecvBatch {
            area: vec![0u8; slots * (RX_HEADROOM + slot)].into_boxed_slice(),
            slot,
            // SAFETY: as above.
            names: (0..slots).map(|_| unsafe { zeroed() }).collect(),
            cmsgs: vec![Cmsg([0; CMSG_SPACE]); slots].into_boxed_slice(),
            iovs: (0..slots)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            hdrs: (0..slots).map(|_| zeroed_hdr()).collect(),
            meta: vec![
                RecvMeta {
                    len: 0,
                    seg: 0,
                    remote: unspec,
                    local: unspec,
                };
                slots
            ]
            .into_boxed_slice(),
        }
    }

    /// Receives what is waiting on `fd` (bound to `port`) without blocking:
    /// the number of datagrams, `WouldBlock` when there are none.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, port: u16, v6: bool) -> io::Result<usize> {
        let n = self.hdrs.len();
        let base = self.area.as_mut_ptr();
        for i in 0..n {
            self.iovs[i] = libc::iovec {
                // SAFETY: i * (headroom + slot) + headroom + slot <=
                // area.len(): the slot lies in the area.
                iov_base: unsafe { base.add(i * (RX_HEADROOM + self.slot) + RX_HEADROOM) }.cast(),
                iov_len: self.slot,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = (&raw mut self.cmsgs[i]).cast();
            h.msg_controllen = CMSG_SPACE as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self` and sized
        // as declared; `n` headers exist; no other reference to them lives
        // during the call.
        let got = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = got as usize;
        for i in 0..got {
            let h = &self.hdrs[i];
            let len = h.msg_len as usize;
            // Truncated (larger than a slot): unusable, report it empty.
            let len = if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                len.min(self.slot)
            };
            let (local_ip, seg) = parse_cmsgs(&h.msg_hdr);
            let local_ip = local_ip.unwrap_or(if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            });
            self.meta[i] = RecvMeta {
                len,
                seg: seg.filter(|s| *s > 0).unwrap_or(len),
                remote: sockaddr_to_std(&self.names[i]).unwrap_or(self.meta[i].remote),
                local: SocketAddr::new(local_ip, port),
            };
        }
        Ok(got)
    }

    pub fn meta(&self, i: usize) -> &RecvMeta {
        &self.meta[i]
    }

    /// Where datagram `i`'s bytes are in [`area_mut`](Self::area_mut);
    /// [`RX_HEADROOM`] free bytes precede them.
    pub fn range(&self, i: usize) -> Range<usize> {
        let start = i * (RX_HEADROOM + self.slot) + RX_HEADROOM;
        start..start + self.meta[i].len
    }

    /// All slots, for decapsulation in place.
    pub fn area_mut(&mut self) -> &mut [u8] {
        &mut self.area
    }
}

/// The local address (packet info) and the GRO segment size of a received
/// datagram.
fn parse_cmsgs(h: &libc::msghdr) -> (Option<IpAddr>, Option<usize>) {
    let (mut local, mut seg) = (None, None);
    // SAFETY: `h` was filled by the kernel: msg_control/msg_controllen
    // describe valid control messages inside our buffer; the CMSG macros
    // only walk within it, and the payloads are read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let pi: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    local = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let pi: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    local = Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)));
                }
                (libc::SOL_UDP, libc::UDP_GRO) => {
                    let s: libc::c_int = std::ptr::read_unaligned(data.cast());
                    seg = usize::try_from(s).ok();
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (local, seg)
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into `out`; returns the length to declare.
fn std_to_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// One message of a [`SendBatch`]: `count` ESP packets of `seg` bytes (the
/// last may be shorter) back to back in the arena at `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMsg {
    pub range: Range<usize>,
    pub seg: usize,
    pub count: usize,
    pub local: IpAddr,
    pub remote: SocketAddr,
}

/// Why some of a batch was not sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// ESP packets handed to the kernel.
    pub sent: usize,
    /// ESP packets the kernel refused (counted, logged by the caller).
    pub failed: usize,
    /// The last error, if any.
    pub error: Option<i32>,
    /// UDP GSO failed and was turned off for this batch.
    pub gso_disabled: bool,
}

/// `sendmmsg` state of one socket writer.
pub struct SendBatch {
    msgs: Vec<SendMsg>,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[Cmsg]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    gso: bool,
}

impl SendBatch {
    /// Up to `max_msgs` messages per call; `gso`: use UDP GSO for runs.
    pub fn new(max_msgs: usize, gso: bool) -> SendBatch {
        let n = max_msgs.max(1);
        SendBatch {
            msgs: Vec::with_capacity(n),
            // SAFETY: all-zero is valid for these C structs (see RecvBatch).
            names: (0..n).map(|_| unsafe { zeroed() }).collect(),
            cmsgs: vec![Cmsg([0; CMSG_SPACE]); n].into_boxed_slice(),
            iovs: (0..n)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            hdrs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            gso,
        }
    }

    /// Whether runs of packets go out as one GSO send.
    pub fn gso(&self) -> bool {
        self.gso
    }

    pub fn is_full(&self) -> bool {
        self.msgs.len() == self.hdrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The queued messages.
    pub fn messages(&self) -> &[SendMsg] {
        &self.msgs
    }

    /// Forgets the queued messages (after handing them elsewhere).
    pub fn clear(&mut self) {
        self.msgs.clear();
    }

    /// The last message, to extend a run.
    pub fn last_mut(&mut self) -> Option<&mut SendMsg> {
        self.msgs.last_mut()
    }

    /// Queues a message; `false` (and nothing queued) when full.
    pub fn push(&mut self, m: SendMsg) -> bool {
        if self.is_full() {
            return false;
        }
        self.msgs.push(m);
        true
    }

    /// Sends every queued message from `arena` on `fd` and empties the
    /// batch. Blocks while the socket buffer is full (backpressure).
    pub fn flush(&mut self, fd: BorrowedFd<'_>, arena: &[u8]) -> SendOutcome {
        let mut out = SendOutcome::default();
        let mut first = 0;
        while first < self.msgs.len() {
            let n = (self.msgs.len() - first).min(self.hdrs.len());
            for j in 0..n {
                self.fill(j, first + j, arena);
            }
            // SAFETY: headers 0..n point at our own name, iovec and control
            // buffers and into `arena`, all alive and unaliased for the call.
            let r = unsafe {
                libc::sendmmsg(fd.as_raw_fd(), self.hdrs.as_mut_ptr(), n as libc::c_uint, 0)
            };
            if r > 0 {
                for m in &self.msgs[first..first + r as usize] {
                    out.sent += m.count;
                }
                first += r as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                // The kernel or the way out cannot segment at all (no
                // checksum offload on the route, an old kernel): from now
                // on one datagram per packet.
                Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    if self.gso && self.msgs[first].count > 1 =>
                {
                    self.gso = false;
                    out.gso_disabled = true;
                    self.split(first, self.msgs.len());
                }
                // This run does not fit (a segment larger than the path
                // MTU, say): send it one datagram at a time, keep GSO.
                Some(libc::EINVAL | libc::EMSGSIZE) if self.msgs[first].count > 1 => {
                    self.split(first, first + 1);
                }
                e => {
                    // This message is lost; go on with the rest.
                    out.failed += self.msgs[first].count;
                    out.error = e;
                    first += 1;
                }
            }
        }
        self.msgs.clear();
        out
    }

    /// Empties the batch without sending (no socket for the family): the
    /// number of ESP packets given up.
    pub fn flush_none(&mut self) -> usize {
        let n = self.msgs.iter().map(|m| m.count).sum();
        self.msgs.clear();
        n
    }

    /// Replaces messages `from..to` by one message per packet (after GSO
    /// failed for them). The batch may then hold more messages than
    /// headers; `flush` sends in rounds. Allocates: error path only.
    fn split(&mut self, from: usize, to: usize) {
        let tail: Vec<SendMsg> = self.msgs.drain(to..).collect();
        let runs: Vec<SendMsg> = self.msgs.drain(from..).collect();
        for m in runs {
            let mut at = m.range.start;
            while at < m.range.end {
                let end = (at + m.seg).min(m.range.end);
                self.msgs.push(SendMsg {
                    range: at..end,
                    seg: end - at,
                    count: 1,
                    local: m.local,
                    remote: m.remote,
                });
                at = end;
            }
        }
        self.msgs.extend(tail);
    }

    /// Fills kernel header `j` for message `i`.
    fn fill(&mut self, j: usize, i: usize, arena: &[u8]) {
        if j >= self.hdrs.len() {
            return;
        }
        let m = &self.msgs[i];
        let data = &arena[m.range.clone()];
        self.iovs[j] = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        let namelen = std_to_sockaddr(&m.remote, &mut self.names[j]);
        let cbuf = &mut self.cmsgs[j];
        let h = &mut self.hdrs[j].msg_hdr;
        h.msg_name = (&raw mut self.names[j]).cast();
        h.msg_namelen = namelen;
        h.msg_iov = &raw mut self.iovs[j];
        h.msg_iovlen = 1;
        h.msg_control = (&raw mut *cbuf).cast();
        h.msg_controllen = CMSG_SPACE as _;
        h.msg_flags = 0;
        let mut used = 0usize;
        // SAFETY: the control buffer is CMSG_SPACE bytes, 8-aligned, and
        // holds at most a packet info (≤ 20 bytes of data) and a u16, far
        // below its size; CMSG_NXTHDR stays within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            let mut put = |c: &mut *mut libc::cmsghdr, level, ty, bytes: &[u8]| {
                if c.is_null() {
                    return;
                }
                (**c).cmsg_level = level;
                (**c).cmsg_type = ty;
                (**c).cmsg_len = libc::CMSG_LEN(bytes.len() as u32) as _;
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), libc::CMSG_DATA(*c), bytes.len());
                used += libc::CMSG_SPACE(bytes.len() as u32) as usize;
                *c = libc::CMSG_NXTHDR(h, *c);
            };
            match (m.local, m.remote) {
                (IpAddr::V4(l), SocketAddr::V4(_)) if !l.is_unspecified() => {
                    let pi = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from(l).to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    put(&mut c, libc::IPPROTO_IP, libc::IP_PKTINFO, as_bytes(&pi));
                }
                (IpAddr::V6(l), SocketAddr::V6(_)) if !l.is_unspecified() => {
                    let pi = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: l.octets(),
                        },
                        ipi6_ifindex: 0,
                    };
                    put(
                        &mut c,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_PKTINFO,
                        as_bytes(&pi),
                    );
                }
                _ => {}
            }
            if m.count > 1 && self.gso {
                let seg = m.seg as u16;
                put(&mut c, libc::SOL_UDP, libc::UDP_SEGMENT, &seg.to_ne_bytes());
            }
        }
        h.msg_controllen = used as _;
        if used == 0 {
            h.msg_control = std::ptr::null_mut();
        }
    }
}

/// Most descriptors in an [`Epoll`] set: a lane's TUN queue, its UDP 4500
/// sockets and its raw ESP sockets (IPv4 and IPv6 each).
pub const EPOLL_FDS: usize = 5;

/// An epoll set of up to [`EPOLL_FDS`] descriptors, level-triggered: cheaper per
/// wait than `poll`, which registers and unregisters every descriptor on
/// every call (measured: a lane spent a quarter of its time in `poll`).
pub struct Epoll {
    fd: std::os::fd::OwnedFd,
}

impl Epoll {
    /// Watches `fds` for input; the index in `fds` is what
    /// [`wait`](Self::wait) reports.
    pub fn new(fds: &[BorrowedFd<'_>]) -> io::Result<Epoll> {
        // SAFETY: plain system call; the result is checked.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        for (i, f) in fds.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both descriptors are open; `ev` lives for the call.
            let r = unsafe {
                libc::epoll_ctl(fd.as_raw_fd(), libc::EPOLL_CTL_ADD, f.as_raw_fd(), &mut ev)
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Epoll { fd })
    }

    /// Waits up to `timeout_ms` (0: do not wait); sets `ready[i]` for each
    /// readable descriptor. `false` on timeout or interruption.
    pub fn wait(&self, ready: &mut [bool; EPOLL_FDS], timeout_ms: i32) -> io::Result<bool> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; EPOLL_FDS];
        // SAFETY: `evs` has room for the EPOLL_FDS events we ask for at most.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                evs.as_mut_ptr(),
                EPOLL_FDS as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        ready.fill(false);
        for ev in &evs[..n as usize] {
            if let Some(r) = ready.get_mut(ev.u64 as usize) {
                *r = true;
            }
        }
        Ok(n > 0)
    }
}

/// The bytes of a plain C struct.
fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a padding-free C struct (in_pktinfo, in6_pktinfo);
    // reading its bytes is reading initialised memory.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::udp::UdpSock;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    fn recv_all(r: &mut RecvBatch, s: &UdpSock, want: usize) -> Vec<(RecvMeta, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got
            .iter()
            .map(|(m, _): &(RecvMeta, Vec<u8>)| m.len.div_ceil(m.seg.max(1)))
            .sum::<usize>()
            < want
        {
            assert!(Instant::now() < deadline, "timed out");
            match r.recv(s.std().as_fd(), s.port(), false) {
                Ok(n) => {
                    for i in 0..n {
                        let range = r.range(i);
                        got.push((*r.meta(i), r.area_mut()[range].to_vec()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn gso_sends_arrive_as_datagrams_with_addresses() {
        let a = UdpSock::bind(false, 0, false).unwrap();
        let b = UdpSock::bind(false, 0, false).unwrap();
        let to_b: SocketAddr = format!("127.0.0.1:{}", b.port()).parse().unwrap();
        // Three 100-byte packets and a 40-byte one as one GSO run, then a
        // single 7-byte datagram from another local address.
        let mut arena = vec![0u8; 1000];
        for (i, x) in arena.iter_mut().enumerate() {
            *x = (i / 100) as u8;
        }
        let mut s = SendBatch::new(4, true);
        assert!(s.push(SendMsg {
            range: 0..340,
            seg: 100,
            count: 4,
            local: "127.0.0.1".parse().unwrap(),
            remote: to_b,
        }));
        assert!(s.push(SendMsg {
            range: 500..507,
            seg: 7,
            count: 1,
            local: "127.0.0.2".parse().unwrap(),
            remote: to_b,
        }));
        let out = s.flush(a.std().as_fd(), &arena);
        assert_eq!((out.sent, out.failed), (5, 0), "{out:?}");
        assert!(s.is_empty());

        let mut r = RecvBatch::new(8, 65536);
        let got = recv_all(&mut r, &b, 5);
        check_run(&got, &a, to_b);

        // Once more to a socket with UDP GRO on: the run may come as one
        // datagram of segments, which `seg` describes.
        let c = UdpSock::bind(false, 0, false).unwrap();
        assert!(c.enable_gro());
        let to_c: SocketAddr = format!("127.0.0.1:{}", c.port()).parse().unwrap();
        for m in [(0..340, 100, 4, "127.0.0.1"), (500..507, 7, 1, "127.0.0.2")] {
            s.push(SendMsg {
                range: m.0,
                seg: m.1,
                count: m.2,
                local: m.3.parse().unwrap(),
                remote: to_c,
            });
        }
        assert_eq!(s.flush(a.std().as_fd(), &arena).sent, 5);
        let got = recv_all(&mut r, &c, 5);
        check_run(&got, &a, to_c);
    }

    fn check_run(got: &[(RecvMeta, Vec<u8>)], a: &UdpSock, to_b: SocketAddr) {
        let mut datagrams = Vec::new();
        for (m, bytes) in got {
            assert_eq!(m.remote.port(), a.port());
            assert_eq!(m.local, to_b);
            for chunk in bytes.chunks(m.seg) {
                datagrams.push((m.remote.ip(), chunk.to_vec()));
            }
        }
        let lens: Vec<usize> = datagrams.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(lens, [100, 100, 100, 40, 7]);
        assert_eq!(datagrams[1].1, vec![1u8; 100]);
        assert_eq!(datagrams[3].1, vec![3u8; 40]);
        // The packet info chose the source address.
        assert_eq!(datagrams[0].0, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(datagrams[4].0, "127.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_run_the_kernel_refuses_goes_out_one_by_one() {
        let a = UdpSock::bind(false, 0, false).unwrap();
        let b = UdpSock::bind(false, 0, false).unwrap();
        let to_b: SocketAddr = format!("127.0.0.1:{}", b.port()).parse().unwrap();
        // More segments than any kernel's UDP_MAX_SEGMENTS: EINVAL.
        let arena = vec![5u8; 1300];
        let mut s = SendBatch::new(4, true);
        s.push(SendMsg {
            range: 0..1300,
            seg: 10,
            count: 130,
            local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote: to_b,
        });
        let out = s.flush(a.std().as_fd(), &arena);
        assert_eq!((out.sent, out.failed, out.gso_disabled), (130, 0, false));
        assert!(s.gso(), "GSO stays on for the runs that fit");
        let mut r = RecvBatch::new(16, 2048);
        let got = recv_all(&mut r, &b, 130);
        assert!(got.iter().all(|(m, d)| m.len == 10 && d == &[5u8; 10]));
    }

    #[test]
    fn without_gso_every_packet_is_its_own_datagram() {
        let a = UdpSock::bind(false, 0, false).unwrap();
        let b = UdpSock::bind(false, 0, false).unwrap();
        let to_b: SocketAddr = format!("127.0.0.1:{}", b.port()).parse().unwrap();
        let arena = vec![9u8; 300];
        let mut s = SendBatch::new(2, true);
        s.push(SendMsg {
            range: 0..300,
            seg: 100,
            count: 3,
            local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote: to_b,
        });
        s.split(0, 1);
        assert_eq!(s.messages().len(), 3);
        let out = s.flush(a.std().as_fd(), &arena);
        assert_eq!(out.sent, 3);
        let mut r = RecvBatch::new(8, 2048);
        let got = recv_all(&mut r, &b, 3);
        assert!(got.iter().all(|(m, _)| m.len == 100 && m.seg == 100));
    }
}
