//! Listening sockets through netlink `sock_diag` (man 7 sock_diag), the interface `ss`
//! uses.
//!
//! One `SOCK_DIAG_BY_FAMILY` dump per table, asking only for the listening state
//! (`TCP_LISTEN`, or `TCP_CLOSE` for unconnected UDP). For TCP the kernel then walks only
//! the listening hash, where reading `/proc/net/tcp` walks the whole established hash
//! (sized by RAM, not by the sockets present) on every `read()`.
//!
//! Wire format (native-endian unless said): `nlmsghdr` (16 bytes: len u32, type u16,
//! flags u16, seq u32, pid u32), then the payload, each message padded to 4 bytes.
//! Request payload `inet_diag_req_v2` (56 bytes): family u8, protocol u8, ext u8, pad
//! u8, states u32, `inet_diag_sockid` (48 bytes: sport be16, dport be16, src [be32; 4],
//! dst [be32; 4], if u32, cookie [u32; 2]). Reply payload `inet_diag_msg` (72 bytes):
//! family u8, state u8, timer u8, retrans u8, `inet_diag_sockid`, expires u32, rqueue
//! u32, wqueue u32, uid u32, inode u32, possibly followed by attributes (ignored). A
//! dump ends with `NLMSG_DONE` (an i32 status, negative errno on failure); a refused
//! request gets `NLMSG_ERROR` (i32 negative errno, then the request's header).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::{Proto, Socket};

/// `nlmsghdr` length.
const HEADER_LEN: usize = 16;
/// `inet_diag_req_v2` length.
const REQUEST_LEN: usize = 56;
/// `inet_diag_msg` length.
const DIAG_MSG_LEN: usize = 72;
/// The one request and reply type of `NETLINK_SOCK_DIAG`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// The kernel sizes dump chunks to the largest read buffer it has seen, up to 32 KiB, so
/// a 32 KiB buffer never truncates one (truncation is still detected).
const RECV_BUF_LEN: usize = 32 * 1024;
/// The kernel answers at once; this only bounds a misbehaving kernel or sandbox.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

impl Proto {
    fn family(self) -> u8 {
        match self {
            Proto::Tcp | Proto::Udp => AF_INET,
            Proto::Tcp6 | Proto::Udp6 => AF_INET6,
        }
    }

    fn ip_protocol(self) -> u8 {
        match self {
            Proto::Tcp | Proto::Tcp6 => IPPROTO_TCP,
            Proto::Udp | Proto::Udp6 => IPPROTO_UDP,
        }
    }
}

/// Why a dump failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagError {
    /// A system call on the netlink socket failed.
    Sys {
        /// The call.
        call: &'static str,
        /// Its error.
        errno: Errno,
    },
    /// The kernel refused the request (`NLMSG_ERROR`) or failed the dump (`NLMSG_DONE`
    /// with a negative status): a positive errno.
    Kernel(i32),
    /// The reply does not follow the protocol.
    Malformed(String),
}

impl fmt::Display for DiagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiagError::Sys { call, errno } => write!(f, "sock_diag {call}: {errno}"),
            DiagError::Kernel(errno) => write!(
                f,
                "sock_diag request refused: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            DiagError::Malformed(what) => write!(f, "malformed sock_diag reply: {what}"),
        }
    }
}

impl std::error::Error for DiagError {}

fn malformed(what: impl Into<String>) -> DiagError {
    DiagError::Malformed(what.into())
}

/// The dump request for one table's listening sockets.
pub fn request(proto: Proto, seq: u32) -> [u8; HEADER_LEN + REQUEST_LEN] {
    let mut msg = [0u8; HEADER_LEN + REQUEST_LEN];
    let states: u32 = 1 << proto.listening_state();
    let fields: [(usize, &[u8]); 7] = [
        (0, &((HEADER_LEN + REQUEST_LEN) as u32).to_ne_bytes()),
        (4, &SOCK_DIAG_BY_FAMILY.to_ne_bytes()),
        (6, &(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes()),
        (8, &seq.to_ne_bytes()),
        // nlmsg_pid 0: the kernel assigns the port. Payload: family, protocol,
        // ext 0, pad 0, states; the socket id stays zero (no filter).
        (HEADER_LEN, &[proto.family()]),
        (HEADER_LEN + 1, &[proto.ip_protocol()]),
        (HEADER_LEN + 4, &states.to_ne_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = msg.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    msg
}

/// Whether a reply datagram ended the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` was seen.
    Done,
}

/// Parse one datagram of the reply to `request(proto, seq)`, appending the listening
/// sockets it holds (port 0 skipped, as in `/proc/net`) to `out`. Anything that does not
/// fit the protocol, including a truncated message or another request's sequence
/// number, is an error.
pub fn parse_reply(
    datagram: &[u8],
    proto: Proto,
    seq: u32,
    out: &mut Vec<Socket>,
) -> Result<Progress, DiagError> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let header = rest.get(..HEADER_LEN).ok_or_else(|| {
            malformed(format!(
                "{} bytes left, too short for a message header",
                rest.len()
            ))
        })?;
        let len = usize::try_from(u32::from_ne_bytes(bytes_at(header, 0)?))
            .map_err(|_| malformed("message length overflows"))?;
        let kind = u16::from_ne_bytes(bytes_at(header, 4)?);
        let msg_seq = u32::from_ne_bytes(bytes_at(header, 8)?);
        if len < HEADER_LEN || len > rest.len() {
            return Err(malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            )));
        }
        if msg_seq != seq {
            return Err(malformed(format!(
                "sequence number {msg_seq}, expected {seq}"
            )));
        }
        let body = rest.get(HEADER_LEN..len).unwrap_or_default();
        match kind {
            SOCK_DIAG_BY_FAMILY => {
                if let Some(socket) = parse_diag_msg(body, proto)? {
                    out.push(socket);
                }
            }
            NLMSG_DONE => {
                // Older kernels send no status; a negative one is a failed dump.
                if let Ok(status) = bytes_at(body, 0).map(i32::from_ne_bytes) {
                    if status < 0 {
                        return Err(DiagError::Kernel(status.saturating_neg()));
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR => {
                let status = i32::from_ne_bytes(bytes_at(body, 0)?);
                return Err(if status < 0 {
                    DiagError::Kernel(status.saturating_neg())
                } else {
                    malformed("an acknowledgement where a dump was expected")
                });
            }
            NLMSG_NOOP => {}
            other => return Err(malformed(format!("unexpected message type {other}"))),
        }
        // Messages start on 4-byte boundaries; the last one's padding may be absent.
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or_default();
    }
    Ok(Progress::More)
}

/// One `inet_diag_msg`: the socket, or `None` when it is not listening or has no port.
fn parse_diag_msg(body: &[u8], proto: Proto) -> Result<Option<Socket>, DiagError> {
    let msg = body.get(..DIAG_MSG_LEN).ok_or_else(|| {
        malformed(format!(
            "a {}-byte socket message, expected at least {DIAG_MSG_LEN}",
            body.len()
        ))
    })?;
    let [family, state] = bytes_at(msg, 0)?;
    if family != proto.family() {
        return Err(malformed(format!(
            "address family {family} in the reply for {}",
            proto.tag()
        )));
    }
    if u32::from(state) != proto.listening_state() {
        return Ok(None);
    }
    let port = u16::from_be_bytes(bytes_at(msg, 4)?);
    let address = if family == AF_INET {
        IpAddr::V4(Ipv4Addr::from(bytes_at::<4>(msg, 8)?))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes_at::<16>(msg, 8)?))
    };
    let inode = u32::from_ne_bytes(bytes_at(msg, 68)?);
    if port == 0 {
        return Ok(None);
    }
    Ok(Some(Socket {
        proto,
        address,
        port,
        inode: u64::from(inode),
    }))
}

/// `N` bytes at `at`, or an error naming the shortfall.
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], DiagError> {
    b.get(at..at.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| malformed(format!("{} bytes, a field at {at} needs {N}", b.len())))
}

/// A `NETLINK_SOCK_DIAG` socket kept open between cycles.
pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl fmt::Debug for SockDiag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockDiag").field("seq", &self.seq).finish()
    }
}

impl SockDiag {
    /// Open the socket. Fails where netlink or `sock_diag` is unavailable (some
    /// sandboxes, kernels without `CONFIG_INET_DIAG`).
    pub fn open() -> Result<Self, DiagError> {
        let sys = |call| move |errno| DiagError::Sys { call, errno };
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::SOCK_DIAG),
        )
        .map_err(sys("socket"))?;
        sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(RECV_TIMEOUT))
            .map_err(sys("setsockopt"))?;
        Ok(SockDiag {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF_LEN],
        })
    }

    /// Append the listening sockets of one table to `out`. On error `out` is left as it
    /// was, and the socket should be dropped: unread replies may be queued on it.
    pub fn dump(&mut self, proto: Proto, out: &mut Vec<Socket>) -> Result<(), DiagError> {
        let start = out.len();
        let result = self.dump_inner(proto, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn dump_inner(&mut self, proto: Proto, out: &mut Vec<Socket>) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(proto, self.seq);
        let kernel = SocketAddrNetlink::new(0, 0);
        let sent = retry_eintr(|| rustix::net::sendto(&self.fd, &req, SendFlags::empty(), &kernel))
            .map_err(|errno| DiagError::Sys {
                call: "sendto",
                errno,
            })?;
        if sent != req.len() {
            return Err(malformed(format!(
                "sent {sent} of {} request bytes",
                req.len()
            )));
        }
        loop {
            let (got, full) =
                retry_eintr(|| rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::TRUNC))
                    .map_err(|errno| DiagError::Sys {
                        call: "recv",
                        errno,
                    })?;
            if full > got {
                return Err(malformed(format!(
                    "a {full}-byte datagram truncated to {got} bytes"
                )));
            }
            if got == 0 {
                return Err(malformed("an empty datagram"));
            }
            let datagram = self.buf.get(..got).unwrap_or_default();
            if parse_reply(datagram, proto, self.seq, out)? == Progress::Done {
                return Ok(());
            }
        }
    }
}

fn retry_eintr<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink message: header with `kind` and `seq`, then `body`, padded to 4.
    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0x2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// An `inet_diag_msg` for a socket.
    fn diag_msg(family: u8, state: u8, addr: IpAddr, port: u16, inode: u32) -> Vec<u8> {
        let mut b = vec![family, state, 0, 0];
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        let mut src = [0u8; 16];
        match addr {
            IpAddr::V4(a) => src[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => src.copy_from_slice(&a.octets()),
        }
        b.extend_from_slice(&src);
        b.extend_from_slice(&[0u8; 16]); // dst
        b.extend_from_slice(&[0u8; 4]); // if
        b.extend_from_slice(&[0xffu8; 8]); // cookie
        for v in [0u32, 0, 0, 1000, inode] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), DIAG_MSG_LEN);
        b
    }

    fn sock(proto: Proto, addr: &str, port: u16, inode: u64) -> Socket {
        Socket {
            proto,
            address: addr.parse().unwrap(),
            port,
            inode,
        }
    }

    fn parse(
        datagram: &[u8],
        proto: Proto,
        seq: u32,
    ) -> Result<(Progress, Vec<Socket>), DiagError> {
        let mut out = Vec::new();
        parse_reply(datagram, proto, seq, &mut out).map(|p| (p, out))
    }

    #[test]
    fn builds_the_request() {
        let r = request(Proto::Tcp6, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(&r[0..4], &72u32.to_ne_bytes());
        assert_eq!(&r[4..6], &20u16.to_ne_bytes());
        assert_eq!(&r[6..8], &0x301u16.to_ne_bytes());
        assert_eq!(&r[8..12], &7u32.to_ne_bytes());
        assert_eq!(&r[12..16], &[0; 4]);
        assert_eq!(&r[16..20], &[10, 6, 0, 0]);
        assert_eq!(&r[20..24], &(1u32 << 10).to_ne_bytes());
        assert!(r[24..].iter().all(|b| *b == 0));
        let r = request(Proto::Udp, 8);
        assert_eq!(&r[16..20], &[2, 17, 0, 0]);
        assert_eq!(&r[20..24], &(1u32 << 7).to_ne_bytes());
    }

    #[test]
    fn parses_several_messages_then_done() {
        let v4 = |a: &str| a.parse::<IpAddr>().unwrap();
        let mut first = Vec::new();
        first.extend(message(20, 5, &diag_msg(2, 10, v4("0.0.0.0"), 22, 1001)));
        // Attributes after the fixed part (INET_DIAG_SHUTDOWN, 5 bytes + padding) are
        // skipped.
        let mut with_attr = diag_msg(2, 10, v4("127.0.0.1"), 631, 1002);
        with_attr.extend_from_slice(&[5, 0, 8, 0, 0]);
        first.extend(message(20, 5, &with_attr));
        first.extend(message(1, 5, &[])); // NOOP
                                          // Not listening, and port 0: skipped.
        first.extend(message(20, 5, &diag_msg(2, 1, v4("10.0.0.1"), 80, 1003)));
        first.extend(message(20, 5, &diag_msg(2, 10, v4("10.0.0.1"), 0, 1004)));
        assert_eq!(
            parse(&first, Proto::Tcp, 5).unwrap(),
            (
                Progress::More,
                vec![
                    sock(Proto::Tcp, "0.0.0.0", 22, 1001),
                    sock(Proto::Tcp, "127.0.0.1", 631, 1002)
                ]
            )
        );

        let mut last = message(20, 5, &diag_msg(2, 10, v4("127.0.0.53"), 53, 1005));
        last.extend(message(3, 5, &0i32.to_ne_bytes()));
        assert_eq!(
            parse(&last, Proto::Tcp, 5).unwrap(),
            (
                Progress::Done,
                vec![sock(Proto::Tcp, "127.0.0.53", 53, 1005)]
            )
        );
        // DONE without a status (older kernels); nothing after it is read.
        let mut done = message(3, 5, &[]);
        done.extend_from_slice(b"junk");
        assert_eq!(
            parse(&done, Proto::Tcp, 5).unwrap(),
            (Progress::Done, vec![])
        );
        assert_eq!(parse(&[], Proto::Tcp, 5).unwrap(), (Progress::More, vec![]));
    }

    #[test]
    fn parses_ipv6_and_udp() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut d = message(20, 1, &diag_msg(10, 7, a("::"), 514, 4001));
        d.extend(message(
            20,
            1,
            &diag_msg(10, 7, a("::ffff:127.0.0.1"), 5353, 4002),
        ));
        d.extend(message(
            20,
            1,
            &diag_msg(10, 1, a("2001:db8::1"), 5000, 4003),
        ));
        d.extend(message(3, 1, &0i32.to_ne_bytes()));
        assert_eq!(
            parse(&d, Proto::Udp6, 1).unwrap(),
            (
                Progress::Done,
                vec![
                    sock(Proto::Udp6, "::", 514, 4001),
                    sock(Proto::Udp6, "::ffff:127.0.0.1", 5353, 4002)
                ]
            )
        );
    }

    #[test]
    fn kernel_errors() {
        // NLMSG_ERROR: -errno, then the request's header.
        let mut body = (-2i32).to_ne_bytes().to_vec();
        body.extend_from_slice(&request(Proto::Udp, 3)[..16]);
        let err = parse(&message(2, 3, &body), Proto::Udp, 3).unwrap_err();
        assert_eq!(err, DiagError::Kernel(2));
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(
            parse(&message(2, 3, &0i32.to_ne_bytes()), Proto::Udp, 3).unwrap_err(),
            malformed("an acknowledgement where a dump was expected")
        );
        assert_eq!(
            parse(&message(3, 3, &(-4i32).to_ne_bytes()), Proto::Udp, 3).unwrap_err(),
            DiagError::Kernel(4)
        );
        assert_eq!(
            parse(&message(2, 3, &i32::MIN.to_ne_bytes()), Proto::Udp, 3).unwrap_err(),
            DiagError::Kernel(i32::MAX)
        );
        // An error message too short for its status.
        assert!(matches!(
            parse(&message(2, 3, &[0xff, 0xff]), Proto::Udp, 3),
            Err(DiagError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_replies_are_errors() {
        let a = "127.0.0.1".parse::<IpAddr>().unwrap();
        let good = message(20, 9, &diag_msg(2, 10, a, 80, 1));
        let check = |bytes: &[u8], want: &str| match parse(bytes, Proto::Tcp, 9) {
            Err(DiagError::Malformed(what)) => assert!(what.contains(want), "{what}"),
            other => panic!("{other:?} for {bytes:?}"),
        };
        // Truncated anywhere: in the header, in the body, or a length past the end.
        for cut in [1, 15, 16, 40, good.len() - 1] {
            check(&good[..cut], "");
        }
        check(&good[..10], "too short for a message header");
        check(&good[..50], "with 50 bytes left");
        // A length smaller than the header.
        let mut short = good.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        check(&short, "message length 8");
        // A body shorter than inet_diag_msg.
        check(&message(20, 9, &[2, 10, 0, 0]), "4-byte socket message");
        // Another request's reply, an unknown type, another family.
        check(
            &message(20, 8, &diag_msg(2, 10, a, 80, 1)),
            "sequence number 8",
        );
        check(&message(4, 9, &[]), "unexpected message type 4");
        check(
            &message(20, 9, &diag_msg(10, 10, "::1".parse().unwrap(), 80, 1)),
            "address family 10",
        );
        // The valid message parses; a second, truncated one fails the datagram.
        assert!(parse(&good, Proto::Tcp, 9).is_ok());
        let mut two = good.clone();
        two.extend_from_slice(&good[..20]);
        check(&two, "with 20 bytes left");
    }
}
