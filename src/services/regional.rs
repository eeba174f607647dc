//! The regional host names of the services wsgate runs locally
//! (`dynamodb.<region>.amazonaws.com`, `lambda.<region>.amazonaws.com`),
//! reachable from inside handlers: SDKs that ignore `AWS_ENDPOINT_URL_*`
//! (aws-sdk v2 before 2023, older boto3) call these names. The bootstraps
//! send a handler's connections to them to this listener (as they send the
//! API's own names to the API), which ends TLS with a certificate from the
//! local CA and passes the bytes to the local service by the name asked
//! for (SNI). What reaches the service is what the SDK sent: signed, and
//! checked by the service's guard.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The services wsgate can run locally, by their endpoint prefix.
const SERVICES: &[&str] = &["dynamodb", "lambda"];

/// A service's regional host name.
pub fn host(service: &str, region: &str) -> String {
    format!("{service}.{region}.amazonaws.com")
}

/// Whether a request to a local service is addressed to it as a machine
/// client addresses it: by a loopback name, or by the service's own AWS
/// name (which reaches it only through this front, from a handler). A
/// browser led there by DNS rebinding names the attacker's host instead.
pub fn addressed_to_service(headers: &http::HeaderMap, service: &str) -> bool {
    if crate::auth::loopback_host(headers) {
        return true;
    }
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let name = host
        .rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase();
    name.strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".amazonaws.com"))
        .is_some_and(|region| !region.is_empty() && !region.contains('.'))
}

/// The host names of the services wsgate can run, in `region`.
pub fn service_hosts(region: &str) -> Vec<String> {
    SERVICES
        .iter()
        .map(|service| host(service, region))
        .collect()
}

/// The TLS front of the local services' regional names.
pub struct RegionalEndpoints {
    port: u16,
    names: Vec<String>,
    stop: CancellationToken,
}

impl RegionalEndpoints {
    /// Serves `backends` (a regional host name, and the plain-HTTP address
    /// of the local service behind it) with a certificate the local CA in
    /// `ca_dir` issues for their names.
    pub async fn start(
        ca_dir: &std::path::Path,
        backends: Vec<(String, SocketAddr)>,
    ) -> Result<RegionalEndpoints, String> {
        let names: Vec<String> = backends.iter().map(|(name, _)| name.clone()).collect();
        let ca = crate::local_ca::LocalCa::open_covering(ca_dir, &names)?;
        let issued = ca.issue("regional", &names)?;
        let tls = crate::domain::TlsServing::new(None, Some((&issued.cert, &issued.key)))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the services' regional names: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = CancellationToken::new();
        let backends = Arc::new(backends);
        let acceptor = tls.acceptor;
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let acceptor = acceptor.clone();
                let backends = Arc::clone(&backends);
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = pass(stream, acceptor, &backends) => {}
                        _ = stopped.cancelled() => {}
                    }
                });
            }
        });
        Ok(RegionalEndpoints { port, names, stop })
    }

    /// Each name, with the local port that serves it (for `WSGATE_HOSTS`).
    pub fn hosts(&self) -> Vec<(String, u16)> {
        self.names
            .iter()
            .map(|name| (name.clone(), self.port))
            .collect()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// One connection: TLS ended here, then bytes both ways to the service
/// the client named.
async fn pass(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    backends: &[(String, SocketAddr)],
) {
    let handshake =
        tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
    let Ok(Ok(mut tls)) = handshake.await else {
        return;
    };
    let named = tls.get_ref().1.server_name().map(str::to_ascii_lowercase);
    let Some((_, backend)) = backends
        .iter()
        .find(|(name, _)| Some(name.as_str()) == named.as_deref())
    else {
        return;
    };
    let Ok(mut service) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut service).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn services_answer_their_own_names_and_loopback_only() {
        for ok in [
            "127.0.0.1:8000",
            "localhost",
            "dynamodb.us-east-1.amazonaws.com",
            "dynamodb.eu-west-2.amazonaws.com:443",
        ] {
            assert!(addressed_to_service(&host(ok), "dynamodb"), "{ok}");
        }
        for refused in [
            "evil.example",
            "dynamodb.us-east-1.amazonaws.com.evil.example",
            "lambda.us-east-1.amazonaws.com",
            "dynamodb.amazonaws.com",
            "xdynamodb.us-east-1.amazonaws.com",
        ] {
            assert!(
                !addressed_to_service(&host(refused), "dynamodb"),
                "{refused}"
            );
        }
    }
}
