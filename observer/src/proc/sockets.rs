//! Unix-socket peers, from the kernel's sock_diag netlink interface (the only place it exposes
//! which socket the other end of a socketpair or a connection is): inode -> peer inode and path.
use std::collections::HashMap;

/// What the kernel says about one unix socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnixSocket {
    pub peer: Option<u64>,
    /// Bound path (`@name` for the abstract namespace), if any.
    pub path: Option<String>,
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Every unix socket of the host with its peer and name; empty when sock_diag is unavailable.
pub fn unix_sockets() -> HashMap<u64, UnixSocket> {
    dump().unwrap_or_default()
}

fn dump() -> std::io::Result<HashMap<u64, UnixSocket>> {
    // SAFETY: plain socket syscall; the fd is closed by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned from here on.
    let _owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // struct nlmsghdr (16) + struct unix_diag_req (24).
    let mut req = [0u8; 40];
    req[0..4].copy_from_slice(&40u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[16] = libc::AF_UNIX as u8; // sdiag_family
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    req[28..32].copy_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER).to_ne_bytes()); // udiag_show
                                                                                     // SAFETY: sending our own buffer.
    if unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into our own buffer.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return if n == 0 { Ok(out) } else { Err(std::io::Error::last_os_error()) };
        }
        let data = &buf[..n as usize];
        let mut at = 0;
        while at + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4")) as usize;
            let kind = u16::from_ne_bytes(data[at + 4..at + 6].try_into().expect("2"));
            if len < 16 || at + len > data.len() {
                return Ok(out);
            }
            if kind == NLMSG_DONE || kind == NLMSG_ERROR {
                return Ok(out);
            }
            parse_message(&data[at + 16..at + len], &mut out);
            at += align4(len);
        }
    }
}

/// One `unix_diag_msg` (16 bytes: family, type, state, pad, ino, cookie[2]) and its attributes.
fn parse_message(msg: &[u8], out: &mut HashMap<u64, UnixSocket>) {
    if msg.len() < 16 {
        return;
    }
    let ino = u64::from(u32::from_ne_bytes(msg[4..8].try_into().expect("4")));
    let mut socket = UnixSocket::default();
    let mut at = 16;
    while at + 4 <= msg.len() {
        let len = u16::from_ne_bytes(msg[at..at + 2].try_into().expect("2")) as usize;
        let kind = u16::from_ne_bytes(msg[at + 2..at + 4].try_into().expect("2"));
        if len < 4 || at + len > msg.len() {
            break;
        }
        let payload = &msg[at + 4..at + len];
        match kind {
            UNIX_DIAG_PEER if payload.len() >= 4 => {
                let peer = u32::from_ne_bytes(payload[..4].try_into().expect("4"));
                socket.peer = (peer != 0).then_some(u64::from(peer));
            }
            UNIX_DIAG_NAME if !payload.is_empty() => {
                socket.path = Some(if payload[0] == 0 {
                    format!("@{}", String::from_utf8_lossy(&payload[1..]))
                } else {
                    String::from_utf8_lossy(payload.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
                });
            }
            _ => {}
        }
        at += align4(len);
    }
    out.insert(ino, socket);
}

/// The inode of `socket:[123]`.
pub fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::os::{fd::AsRawFd, unix::net::UnixStream};

    use super::*;

    fn inode(fd: i32) -> u64 {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        socket_inode(&target.to_string_lossy()).unwrap()
    }

    #[test]
    fn a_socketpair_names_each_end_as_the_others_peer() {
        let (a, b) = UnixStream::pair().unwrap();
        let sockets = unix_sockets();
        let (ia, ib) = (inode(a.as_raw_fd()), inode(b.as_raw_fd()));
        assert_eq!(sockets.get(&ia).and_then(|s| s.peer), Some(ib), "{:?}", sockets.get(&ia));
        assert_eq!(sockets.get(&ib).and_then(|s| s.peer), Some(ia));
        assert_eq!(sockets[&ia].path, None, "a socketpair is unnamed");
    }
}
