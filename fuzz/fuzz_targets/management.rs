//! Management API requests from a hostile caller (head and body, raw
//! bytes on a real socket) never panic the gateway: the listener's head
//! sniffing, hyper, SigV4's head checks, the body budget and deadline, and
//! `@connections` itself. An even first byte goes to a gateway in
//! `--insecure-dev` mode (so unsigned bodies reach PostToConnection), an
//! odd one to a strict gateway.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Gateways {
    runtime: tokio::runtime::Runtime,
    insecure: SocketAddr,
    strict: SocketAddr,
    _servers: Vec<wsgate::Server>,
}

fn gateways() -> &'static Gateways {
    static GATEWAYS: OnceLock<Gateways> = OnceLock::new();
    GATEWAYS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let servers = runtime.block_on(async {
            let mut servers = Vec::new();
            for insecure in [true, false] {
                let server = wsgate::WebSocketApi::new("Fuzz")
                    .insecure_dev(insecure)
                    .credential("AKIDEXAMPLE", "secret", "fuzz", wsgate::Policy::allow_all())
                    .bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                servers.push(server);
            }
            servers
        });
        Gateways {
            insecure: servers[0].local_addr(),
            strict: servers[1].local_addr(),
            runtime,
            _servers: servers,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, request)) = data.split_first() else {
        return;
    };
    let gateways = gateways();
    let addr = if first % 2 == 0 { gateways.insecure } else { gateways.strict };
    gateways.runtime.block_on(async {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            return;
        };
        let _ = stream.write_all(request).await;
        // End of input: whatever the gateway waits for will not come.
        let _ = stream.shutdown().await;
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await;
    });
});
