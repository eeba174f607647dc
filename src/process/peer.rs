//! Which process is at the other end of a loopback TCP connection: the
//! kernel's socket diagnostics (sock_diag, what `ss` uses) give the
//! client socket's inode, and `/proc/<pid>/fd` shows who holds it.

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};
use std::net::SocketAddr;

/// The inode of the socket that connected from `peer` to `local` (the
/// client's end of a connection this process accepted).
pub fn client_socket_inode(peer: SocketAddr, local: SocketAddr) -> std::io::Result<u64> {
    let socket_id = SocketId {
        source_port: peer.port(),
        destination_port: local.port(),
        source_address: peer.ip(),
        destination_address: local.ip(),
        interface_id: 0,
        // All ones: match on the addresses alone.
        cookie: [0xff; 8],
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: if peer.is_ipv4() { AF_INET } else { AF_INET6 },
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);

    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    socket.send(&buf, 0)?;
    let mut reply = vec![0u8; 8192];
    let size = socket.recv(&mut &mut reply[..], 0)?;
    let message = NetlinkMessage::<SockDiagMessage>::deserialize(&reply[..size])
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    match message.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
            Ok(u64::from(response.header.inode))
        }
        NetlinkPayload::Error(error) => Err(std::io::Error::other(format!(
            "socket diagnostics refused the lookup: {error:?}"
        ))),
        other => Err(std::io::Error::other(format!(
            "unexpected socket diagnostics reply: {other:?}"
        ))),
    }
}

/// The first of `pids` that holds the socket with `inode` open.
pub fn holder(inode: u64, pids: &[u32]) -> Option<u32> {
    let target = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str())
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_process_at_the_other_end() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let inode = client_socket_inode(peer, accepted.local_addr().unwrap()).unwrap();
        // The client end is ours: this process holds it.
        assert_eq!(
            holder(inode, &[std::process::id()]),
            Some(std::process::id())
        );
        // No other process does.
        assert_eq!(holder(inode, &[1]), None);
        drop(client);
    }
}
