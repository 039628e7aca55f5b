//! Batched UDP receive: one `recvmmsg` call takes every datagram already queued on the
//! socket (up to [`BATCH`]), blocking only until the first one is there (`MSG_WAITFORONE`).
//! Under load a worker makes one system call for several datagrams instead of one each, and a
//! peer's back-to-back datagrams taken together are handled in their order.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};

/// Datagrams taken per call at most.
pub(crate) const BATCH: usize = 8;
/// Room per datagram: the largest UDP payload.
const SLOT: usize = 65_536;

/// The receive buffers of one worker and what the last call filled in.
pub(crate) struct Batch {
    bufs: Box<[u8]>,
    got: [(usize, Option<SocketAddr>, bool); BATCH],
}

impl Batch {
    pub(crate) fn new() -> Self {
        Self {
            bufs: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            got: [(0, None, false); BATCH],
        }
    }

    /// Datagram `k` of the last [`Self::recv`]: its bytes, its source, and whether it was
    /// longer than a slot (truncated, so unusable).
    pub(crate) fn get(&self, k: usize) -> Option<(&[u8], Option<SocketAddr>, bool)> {
        let (len, from, truncated) = *self.got.get(k)?;
        let start = k * SLOT;
        let data = self.bufs.get(start..start + len.min(SLOT))?;
        Some((data, from, truncated))
    }

    /// Waits for at least one datagram and takes those queued behind it; returns how many.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY (the three `zeroed`): `sockaddr_storage`, `iovec` and `mmsghdr` are plain C
        // structs for which all-zero bytes are a valid value (null pointers, zero lengths).
        #[allow(unsafe_code)]
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        #[allow(unsafe_code)]
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        #[allow(unsafe_code)]
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, chunk) in self.bufs.chunks_exact_mut(SLOT).enumerate().take(BATCH) {
            iovs[i].iov_base = chunk.as_mut_ptr().cast();
            iovs[i].iov_len = SLOT;
        }
        let name_len = libc::socklen_t::try_from(size_of::<libc::sockaddr_storage>())
            .unwrap_or(libc::socklen_t::MAX);
        for ((h, iov), name) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(names.iter_mut()) {
            h.msg_hdr.msg_name = (&raw mut *name).cast();
            h.msg_hdr.msg_namelen = name_len;
            h.msg_hdr.msg_iov = &raw mut *iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at its own `iovec` (one slot of `self.bufs`, SLOT bytes,
        // exclusively borrowed for the call) and its own `sockaddr_storage` with its true size;
        // all of them live on this frame or in `self` until the call returns, and the kernel
        // writes no more than those lengths. `BATCH` is the length of `hdrs`.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (k, h) in hdrs.iter().enumerate().take(n.min(BATCH)) {
            self.got[k] = (
                h.msg_len as usize,
                to_std(&names[k]),
                h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            );
        }
        Ok(n.min(BATCH))
    }

    /// Other systems: one datagram per call.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let (n, from) = sock.recv_from(&mut self.bufs[..SLOT])?;
        self.got[0] = (n, Some(from), false);
        Ok(1)
    }
}

/// The socket address the kernel wrote into `s` (IPv4 or IPv6; `None` for anything else).
#[cfg(target_os = "linux")]
fn to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel stored a `sockaddr_in` here; the storage is
            // larger than it and aligned for any socket address type.
            #[allow(unsafe_code)]
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            #[allow(unsafe_code)]
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_takes_every_queued_datagram_with_its_source() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"first", to).unwrap();
        b.send_to(b"second", to).unwrap();
        a.send_to(&[7u8; 9000], to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = Batch::new();
        let n = batch.recv(&rx).unwrap();
        assert_eq!(n, 3, "all three queued datagrams in one call");
        let got: Vec<_> = (0..n).map(|k| batch.get(k).unwrap()).collect();
        assert_eq!(got[0].0, b"first");
        assert_eq!(got[0].1, Some(a.local_addr().unwrap()));
        assert_eq!(got[1].0, b"second");
        assert_eq!(got[1].1, Some(b.local_addr().unwrap()));
        assert_eq!(got[2].0.len(), 9000);
        assert!(got.iter().all(|g| !g.2), "nothing truncated");
        // More than a batch waiting: the rest comes with the next call, in order.
        for i in 0..(BATCH + 2) {
            a.send_to(format!("m{i}").as_bytes(), to).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(batch.recv(&rx).unwrap(), BATCH);
        assert_eq!(batch.get(0).unwrap().0, b"m0");
        assert_eq!(batch.recv(&rx).unwrap(), 2);
        assert_eq!(
            batch.get(1).unwrap().0,
            format!("m{}", BATCH + 1).as_bytes()
        );
    }

    #[test]
    fn ipv6_sources() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        let a = UdpSocket::bind("[::1]:0").unwrap();
        a.send_to(b"v6", rx.local_addr().unwrap()).unwrap();
        let mut batch = Batch::new();
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        assert_eq!(batch.get(0).unwrap().1, Some(a.local_addr().unwrap()));
    }
}
