//! UDP sockets for IKE (500) and IKE/ESP-in-UDP (4500) that know their
//! local address per datagram.
//!
//! The sockets are bound to the wildcard address so that addresses may come
//! and go, and IP_PKTINFO / IPV6_RECVPKTINFO tell which of our addresses a
//! datagram was sent to. The engine needs that address (it is part of the
//! NAT detection hash and the SA's endpoint) and replies must leave from the
//! same address, which `send` asks for with the same control message.
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};

/// A received datagram's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub remote: SocketAddr,
    /// Our address and port the datagram was sent to.
    pub local: SocketAddr,
}

/// Control-message buffer with the alignment `cmsghdr` needs.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// One wildcard UDP socket of one family and port.
#[derive(Debug)]
pub struct UdpSock {
    sock: std::net::UdpSocket,
    port: u16,
    v6: bool,
}

impl UdpSock {
    /// Binds `[::]:port` (IPv6 only) or `0.0.0.0:port` and turns on packet
    /// info. `nonblocking` for sockets driven by tokio; blocking sockets get
    /// a read timeout so that their thread can notice shutdown.
    ///
    /// Blocking sockets are the data plane's (UDP 4500): they are bound with
    /// `SO_REUSEPORT` so that each data-plane lane can bind its own socket
    /// to the same port ([`UdpSock::bind_lane`]); the kernel keeps every
    /// peer's address pair on one of them, so a peer's packets stay in
    /// order. Only sockets of the same user can join, and the daemon binds
    /// the exclusive UDP 500 socket first, so a second daemon still fails to
    /// start instead of sharing the port.
    pub fn bind(v6: bool, port: u16, nonblocking: bool) -> io::Result<UdpSock> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if v6 {
            s.set_only_v6(true)?;
            setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        } else {
            setsockopt(&s, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        }
        s.set_reuse_address(true)?;
        if !nonblocking {
            s.set_reuse_port(true)?;
        }
        let addr: SocketAddr = if v6 {
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
        } else {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        };
        s.bind(&addr.into())?;
        // ESP packets come in bursts; a larger buffer avoids drops while a
        // thread is busy decrypting. Failure only costs performance.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        if nonblocking {
            s.set_nonblocking(true)?;
        } else {
            s.set_read_timeout(Some(Duration::from_millis(250)))?;
        }
        let sock: std::net::UdpSocket = s.into();
        let port = sock.local_addr()?.port();
        Ok(UdpSock { sock, port, v6 })
    }

    /// Another socket on `port` for a data-plane lane (see [`bind`](Self::bind)).
    pub fn bind_lane(v6: bool, port: u16) -> io::Result<UdpSock> {
        UdpSock::bind(v6, port, false)
    }

    /// Turns on UDP GRO: the kernel may deliver a run of same-size
    /// datagrams from one sender as one, with the segment size in a
    /// control message. Only for readers that understand that (the data
    /// plane's batched receive). Whether the kernel accepted it.
    pub fn enable_gro(&self) -> bool {
        setsockopt(&self.sock, sockopt::UdpGroSegment, &true).is_ok()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn std(&self) -> &std::net::UdpSocket {
        &self.sock
    }

    /// Receives one datagram with its local address. `WouldBlock` /
    /// `TimedOut` when nothing is there.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        recv_pktinfo(self.sock.as_fd(), self.port, self.v6, buf)
    }

    /// Sends `data` to `remote` from our address `local` (unspecified: let
    /// routing choose).
    pub fn send(&self, data: &[u8], local: IpAddr, remote: SocketAddr) -> io::Result<usize> {
        send_pktinfo(self.sock.as_fd(), self.v6, data, local, remote)
    }

    /// Hands a nonblocking socket to tokio.
    pub fn into_tokio(self) -> io::Result<AsyncUdp> {
        Ok(AsyncUdp {
            sock: tokio::net::UdpSocket::from_std(self.sock)?,
            port: self.port,
            v6: self.v6,
        })
    }
}

/// A [`UdpSock`] driven by tokio (for the IKE port 500).
#[derive(Debug)]
pub struct AsyncUdp {
    sock: tokio::net::UdpSocket,
    port: u16,
    v6: bool,
}

impl AsyncUdp {
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.sock
            .async_io(tokio::io::Interest::READABLE, || {
                recv_pktinfo(self.sock.as_fd(), self.port, self.v6, buf)
            })
            .await
    }

    /// Nonblocking: `WouldBlock` when the send buffer is full (IKE
    /// retransmits; dropping is fine).
    pub fn send(&self, data: &[u8], local: IpAddr, remote: SocketAddr) -> io::Result<usize> {
        send_pktinfo(self.sock.as_fd(), self.v6, data, local, remote)
    }
}

/// Receives one datagram with its local address. `WouldBlock` /
/// `TimedOut` when nothing is there.
pub fn recv_pktinfo(
    fd: BorrowedFd<'_>,
    port: u16,
    v6: bool,
    buf: &mut [u8],
) -> io::Result<Received> {
    let mut cmsg = CmsgBuf([0; 128]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg.0),
        // The socket's own mode decides whether this blocks.
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let remote = msg
        .address
        .as_ref()
        .and_then(storage_to_std)
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut local_ip: Option<IpAddr> = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4PacketInfo(pi) => {
                    local_ip = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))));
                }
                ControlMessageOwned::Ipv6PacketInfo(pi) => {
                    local_ip = Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
        }
    }
    let local_ip = local_ip.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    Ok(Received {
        len: msg.bytes,
        remote,
        local: SocketAddr::new(local_ip, port),
    })
}

/// Sends `data` to `remote` from our address `local` (unspecified: let
/// routing choose).
pub fn send_pktinfo(
    fd: BorrowedFd<'_>,
    v6: bool,
    data: &[u8],
    local: IpAddr,
    remote: SocketAddr,
) -> io::Result<usize> {
    let iov = [io::IoSlice::new(data)];
    let fd = fd.as_raw_fd();
    match (remote, local) {
        (SocketAddr::V4(r), IpAddr::V4(l)) if !v6 => {
            let dst = SockaddrIn::from(r);
            if l.is_unspecified() {
                return sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&dst))
                    .map_err(io::Error::from);
            }
            let pi = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(l).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&pi)],
                MsgFlags::empty(),
                Some(&dst),
            )
            .map_err(io::Error::from)
        }
        (SocketAddr::V6(r), IpAddr::V6(l)) if v6 => {
            let dst = SockaddrIn6::from(r);
            if l.is_unspecified() {
                return sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&dst))
                    .map_err(io::Error::from);
            }
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: l.octets(),
                },
                ipi6_ifindex: 0,
            };
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv6PacketInfo(&pi)],
                MsgFlags::empty(),
                Some(&dst),
            )
            .map_err(io::Error::from)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "address family mismatch: from {local} to {remote} on an IPv{} socket",
                if v6 { 6 } else { 4 }
            ),
        )),
    }
}

impl AsRawFd for UdpSock {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

fn storage_to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// The sockets of one port, IPv4 and (when the host has IPv6) IPv6.
#[derive(Debug)]
pub struct PortSockets {
    pub v4: UdpSock,
    pub v6: Option<UdpSock>,
}

impl PortSockets {
    /// Binds both families; IPv6 is optional (hosts and namespaces without
    /// it exist), IPv4 is not.
    pub fn bind(port: u16, nonblocking: bool) -> io::Result<PortSockets> {
        let v4 = UdpSock::bind(false, port, nonblocking)
            .map_err(|e| io::Error::new(e.kind(), format!("UDP 0.0.0.0:{port}: {e}")))?;
        let v6 = match UdpSock::bind(true, port, nonblocking) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("IPv6 disabled on UDP port {port}: cannot bind [::]:{port}: {e}");
                None
            }
        };
        Ok(PortSockets { v4, v6 })
    }

    /// The socket for datagrams to `remote`.
    pub fn for_remote(&self, remote: &SocketAddr) -> Option<&UdpSock> {
        if remote.is_ipv4() {
            Some(&self.v4)
        } else {
            self.v6.as_ref()
        }
    }

    pub fn send(&self, data: &[u8], local: IpAddr, remote: SocketAddr) -> io::Result<usize> {
        match self.for_remote(&remote) {
            Some(s) => s.send(data, local, remote),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("no IPv6 socket to send to {remote}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_round_trip_reports_local_address() {
        let a = UdpSock::bind(false, 0, false).unwrap();
        let b = UdpSock::bind(false, 0, false).unwrap();
        let to_b: SocketAddr = format!("127.0.0.1:{}", b.port()).parse().unwrap();
        a.send(b"hello", "127.0.0.1".parse().unwrap(), to_b)
            .unwrap();
        let mut buf = [0u8; 64];
        let r = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..r.len], b"hello");
        assert_eq!(r.local, to_b);
        assert_eq!(r.remote.port(), a.port());
        assert_eq!(r.remote.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        // Other loopback addresses are ours too: pktinfo says which one.
        let to_b2: SocketAddr = format!("127.0.0.2:{}", b.port()).parse().unwrap();
        a.send(b"x", IpAddr::V4(Ipv4Addr::UNSPECIFIED), to_b2)
            .unwrap();
        let r = b.recv(&mut buf).unwrap();
        assert_eq!(r.local, to_b2);
        // Family mismatch is an error, not a panic.
        assert!(a.send(b"x", "::1".parse().unwrap(), to_b).is_err());
    }

    #[test]
    fn ipv6_loopback_when_available() {
        let Ok(a) = UdpSock::bind(true, 0, false) else {
            return;
        };
        let b = UdpSock::bind(true, 0, false).unwrap();
        let to_b: SocketAddr = format!("[::1]:{}", b.port()).parse().unwrap();
        if a.send(b"six", "::1".parse().unwrap(), to_b).is_err() {
            return; // no ::1 in this namespace
        }
        let mut buf = [0u8; 16];
        let r = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..r.len], b"six");
        assert_eq!(r.local, to_b);
    }

    #[test]
    fn blocking_recv_times_out() {
        let a = UdpSock::bind(false, 0, false).unwrap();
        let mut buf = [0u8; 16];
        let e = a.recv(&mut buf).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}
