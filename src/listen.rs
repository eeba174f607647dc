//! The listeners a front door binds while it loads an app (SST's config
//! and a template's outputs name the port), and the address clients
//! reach them at.

use std::net::{SocketAddr, TcpListener};

/// The address a front door listens on for its `index`th API: `listen`,
/// and the ports after it for the next APIs (port 0 stays 0: any port).
pub fn nth(listen: SocketAddr, index: usize) -> SocketAddr {
    let mut addr = listen;
    if addr.port() != 0 {
        addr.set_port(addr.port().saturating_add(index as u16));
    }
    addr
}

/// Binds `addr` for tokio (non-blocking); returns the bound address (the
/// port chosen for port 0) with the listener.
pub fn bind(addr: SocketAddr) -> Result<(SocketAddr, TcpListener), String> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("cannot listen on {addr}: the address is in use; choose another with --listen")
        } else {
            format!("cannot listen on {addr}: {e}")
        }
    })?;
    let bound = listener
        .set_nonblocking(true)
        .and_then(|()| listener.local_addr())
        .map_err(|e| format!("cannot use {addr}: {e}"))?;
    Ok((bound, listener))
}

/// An address clients can reach: an unspecified one is loopback.
pub fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}
