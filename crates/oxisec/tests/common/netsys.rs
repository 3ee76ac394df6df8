//! Sockets opened inside a test namespace from the test process itself:
//! ctnetlink (to flush a NAT box's connection tracking table, as the
//! `conntrack` tool would, which this machine does not have) and raw IPv4
//! sockets (to send datagrams with spoofed source addresses).
//!
//! A socket belongs to the network namespace of the thread that created
//! it, for its whole life. [`in_netns`] therefore runs a closure on a fresh
//! thread that first joins the namespace (`setns(2)` changes the network
//! namespace of the calling thread only); sockets the closure returns keep
//! working from any thread afterwards, and the test's own threads never
//! leave their namespace.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::{Netns, Result};

/// Runs `f` on a new thread that has joined `ns`'s network namespace.
pub fn in_netns<R: Send>(ns: &Netns, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<R> {
                let file = File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
                // SAFETY: setns(2) only reads the descriptor, which `file`
                // keeps open for the duration of the call; CLONE_NEWNET
                // affects this (scoped, short-lived) thread only.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(
                        format!("setns({path}): {}", std::io::Error::last_os_error()).into(),
                    );
                }
                f()
            })
            .join()
            .map_err(|_| -> super::Error { "namespace thread panicked".into() })?
    })
}

/// nfnetlink subsystem of connection tracking (`NFNL_SUBSYS_CTNETLINK`).
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `IPCTNL_MSG_CT_DELETE`; without a tuple attribute it flushes the table.
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;

/// The netlink request that flushes every IPv4 connection tracking entry:
/// `nlmsghdr` (length, type, flags, sequence, port id; host byte order)
/// followed by `nfgenmsg` (family AF_INET, version 0, resource id 0).
pub fn conntrack_flush_request(seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(20);
    m.extend_from_slice(&20u32.to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE).to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc::AF_INET as u8);
    m.push(0); // NFNETLINK_V0
    m.extend_from_slice(&0u16.to_be_bytes());
    m
}

/// Reads the kernel's acknowledgement: an `NLMSG_ERROR` message whose
/// error code is 0 on success or a negative errno.
pub fn parse_netlink_ack(buf: &[u8]) -> Result<()> {
    let field = |r: std::ops::Range<usize>| buf.get(r).ok_or("short netlink answer");
    let ty = u16::from_ne_bytes(field(4..6)?.try_into()?);
    if ty != NLMSG_ERROR {
        return Err(format!("netlink answer of type {ty}, expected an acknowledgement").into());
    }
    let code = i32::from_ne_bytes(field(16..20)?.try_into()?);
    if code != 0 {
        return Err(format!(
            "ctnetlink flush: {}",
            std::io::Error::from_raw_os_error(-code)
        )
        .into());
    }
    Ok(())
}

/// Empties `ns`'s IPv4 connection tracking table (`conntrack -F`): every NAT
/// mapping is forgotten, and the next packet of a flow gets a new one.
pub fn flush_conntrack(ns: &Netns) -> Result<()> {
    in_netns(ns, || {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        // Bounded: the kernel answers at once, but never hang a test.
        nix::sys::socket::setsockopt(
            &fd,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(5, 0),
        )?;
        let req = conntrack_flush_request(1);
        sendto(
            fd.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut buf = [0u8; 256];
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        parse_netlink_ack(&buf[..n])
    })
}

/// A raw IPv4 socket in `ns` that sends whole IP packets (IP_HDRINCL): the
/// caller writes the IP header, spoofed source address included.
pub fn raw_ipv4_socket(ns: &Netns) -> Result<socket2::Socket> {
    in_netns(ns, || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
        s.set_header_included_v4(true)?;
        Ok(s)
    })
}

/// An IPv4 + UDP packet around `payload`. The IP checksum and identification
/// are left zero: with IP_HDRINCL the kernel fills them in. The UDP checksum
/// is computed (zero would be allowed over IPv4, but a real initiator sends one).
pub fn udp_packet(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]); // version 4, IHL 5; DSCP 0
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0]); // id 0 (kernel fills), DF
    p.extend_from_slice(&[64, libc::IPPROTO_UDP as u8, 0, 0]); // TTL, proto, checksum 0
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let sum = udp_checksum(src, dst, &p[20..]);
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    p
}

/// RFC 768 checksum over the IPv4 pseudo header and the UDP datagram (with
/// its checksum field zero); 0 is sent as 0xffff.
fn udp_checksum(src: std::net::SocketAddrV4, dst: std::net::SocketAddrV4, udp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.ip().octets());
    add(&dst.ip().octets());
    add(&[0, libc::IPPROTO_UDP as u8]);
    add(&(udp.len() as u16).to_be_bytes());
    add(udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}
