//! Custom domains: TLS with certificates generated here (rcgen), a rustls
//! client that verifies them against the test CA, base path mapping, Host
//! and path refusals, and certificate rotation under a live connection.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use wsgate::domain::{AcmeSettings, CertificateSource, DomainSettings};
use wsgate::{Response, WebSocketApi, handler_fn};

const NAME: &str = "ws.wsgate.test";

/// A test CA that issues leaf certificates for `NAME`.
struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wsgate test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes a leaf for `NAME` (valid until `not_after`) as cert.pem and
    /// key.pem in `dir`; returns its DER.
    fn issue(&self, dir: &Path, not_after: Option<time::OffsetDateTime>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![NAME.to_string()]).unwrap();
        if let Some(not_after) = not_after {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = not_after;
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        // Written whole, then renamed: the watcher never reads half a file.
        for (file, text) in [("cert.pem", cert.pem()), ("key.pem", key.serialize_pem())] {
            let partial = dir.join(format!("{file}.new"));
            std::fs::write(&partial, text).unwrap();
            std::fs::rename(&partial, dir.join(file)).unwrap();
        }
        cert.der().to_vec()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        connector_with(roots)
    }
}

fn connector_with(roots: RootCertStore) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

fn settings(dir: &Path, path: Option<&str>) -> DomainSettings {
    files(dir.join("cert.pem"), dir.join("key.pem"), path)
}

fn files(cert: PathBuf, key: PathBuf, path: Option<&str>) -> DomainSettings {
    DomainSettings {
        name: NAME.into(),
        path: path.map(str::to_string),
        certificate: CertificateSource::Files { cert, key },
    }
}

async fn echo_server(domain: DomainSettings) -> Result<wsgate::Server, wsgate::BuildError> {
    echo_api(domain).bind(any_port()).await
}

fn echo_api(domain: DomainSettings) -> WebSocketApi {
    WebSocketApi::new("Domained")
        .stage("prod")
        .domain(Some(domain))
        .route_with(
            "$default",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(event.body.unwrap_or_default()))
            }),
            two_way(),
        )
}

type TlsClient = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A TLS connection verified against the CA; returns the stream and the
/// certificate the server presented.
async fn tls(
    server: &wsgate::Server,
    connector: &TlsConnector,
) -> std::io::Result<(tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>)> {
    let tcp = TcpStream::connect(server.local_addr()).await?;
    let stream = connector
        .connect(ServerName::try_from(NAME).unwrap(), tcp)
        .await?;
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    Ok((stream, presented))
}

async fn wss(server: &wsgate::Server, connector: &TlsConnector, url: &str) -> TlsClient {
    let (stream, _) = tls(server, connector).await.unwrap();
    let (client, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    client
}

async fn echo(client: &mut TlsClient, text: &str) {
    client.send(Message::text(text)).await.unwrap();
    let reply = tokio::time::timeout(WAIT, client.next()).await.unwrap();
    assert_eq!(reply.unwrap().unwrap(), Message::text(text));
}

/// A raw request over TLS; returns the status line.
async fn raw_status(server: &wsgate::Server, connector: &TlsConnector, request: &str) -> String {
    let (mut stream, _) = tls(server, connector).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn upgrade_request(path: &str, host: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn wss_on_the_domain_with_its_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    ca.issue(dir.path(), None);
    let server = echo_server(settings(dir.path(), Some("v1"))).await.unwrap();
    let port = server.local_addr().port();
    assert_eq!(server.url(), format!("wss://{NAME}:{port}/v1/"));
    assert_eq!(
        server.management_endpoint(),
        format!("http://{}/prod", server.local_addr()),
        "the management endpoint stays on the API's own host"
    );
    let connector = ca.connector();
    let mut client = wss(&server, &connector, &server.url()).await;
    echo(&mut client, "over TLS").await;

    // The API's own host still serves plain WebSocket on the same port.
    let mut plain = connect(&format!("ws://{}/prod", server.local_addr())).await;
    send_text(&mut plain, "plain").await;
    assert_eq!(next_text(&mut plain).await, "plain");

    let host = format!("{NAME}:{port}");
    for (path, host, status) in [
        ("/v2/", host.as_str(), "403"),
        ("/", host.as_str(), "403"),
        ("/prod", host.as_str(), "403"),
        ("/v1", "other.wsgate.test", "403"),
        ("/v1/", host.as_str(), "101"),
    ] {
        let line = raw_status(&server, &connector, &upgrade_request(path, host)).await;
        assert!(line.contains(status), "{path} {host}: {line}");
    }

    // A client that does not trust the test CA refuses the certificate.
    let untrusting = connector_with(RootCertStore::empty());
    assert!(tls(&server, &untrusting).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_rotation_keeps_live_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.issue(dir.path(), None);
    let server = echo_server(settings(dir.path(), None)).await.unwrap();
    assert_eq!(
        server.url(),
        format!("wss://{NAME}:{}", server.local_addr().port())
    );
    let connector = ca.connector();
    let (_, presented) = tls(&server, &connector).await.unwrap();
    assert_eq!(presented, first);
    let mut live = wss(&server, &connector, &server.url()).await;
    echo(&mut live, "before").await;

    let second = ca.issue(dir.path(), None);
    assert_ne!(first, second);
    let mut rotated = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tls(&server, &connector).await.unwrap().1 == second {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "new handshakes get the new certificate");
    echo(&mut live, "after").await;

    // A broken replacement is refused; the current certificate stays.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(tls(&server, &connector).await.unwrap().1, second);
    echo(&mut live, "still").await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_certificates_fail_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let start_error = |domain: DomainSettings| async move {
        match echo_server(domain).await {
            Ok(_) => panic!("started with a bad certificate"),
            Err(e) => e.to_string(),
        }
    };
    let missing = start_error(settings(dir.path(), None)).await;
    assert!(missing.contains("cert.pem"), "{missing}");

    ca.issue(dir.path(), Some(rcgen::date_time_ymd(2021, 1, 1)));
    let expired = start_error(settings(dir.path(), None)).await;
    assert!(
        expired.contains("expired") && expired.contains("cert.pem"),
        "{expired}"
    );

    ca.issue(dir.path(), None);
    let other = tempfile::tempdir().unwrap();
    ca.issue(other.path(), None);
    let mismatched = files(
        dir.path().join("cert.pem"),
        other.path().join("key.pem"),
        None,
    );
    let mismatched = start_error(mismatched).await;
    assert!(
        mismatched.contains("does not match") && mismatched.contains("key.pem"),
        "{mismatched}"
    );
    let unreadable: PathBuf = dir.path().join("garbage.pem");
    std::fs::write(&unreadable, "-----BEGIN PRIVATE KEY-----\nnope\n").unwrap();
    let garbage = start_error(files(dir.path().join("cert.pem"), unreadable, None)).await;
    assert!(garbage.contains("garbage.pem"), "{garbage}");
}

/// Pebble (Let's Encrypt's test server, Debian's package) with
/// pebble-challtestsrv as its DNS, which answers 127.0.0.1 for every
/// name: a real ACME order, validated over TLS-ALPN-01 on the API's own
/// port.
struct Pebble {
    children: Vec<std::process::Child>,
    directory: String,
    management: String,
    /// The root Pebble's own HTTPS certificate chains to.
    https_root: PathBuf,
}

impl Pebble {
    fn start(dir: &Path, tls_alpn_port: u16) -> Pebble {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (acme, management, dns) = (free(), free(), free());
        // Pebble's own HTTPS certificate, from a CA of this test's.
        let ca = Ca::new();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();
        let https_root = dir.join("pebble-ca.pem");
        std::fs::write(&https_root, pem_of(&ca.der)).unwrap();
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("pebble.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": 5002,
            "tlsPort": tls_alpn_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let challtestsrv = std::process::Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-http01",
                "",
                "-https01",
                "",
            ])
            .args(["-tlsalpn01", "", "-defaultIPv6", ""])
            .args(["-management", &format!("127.0.0.1:{}", free())])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (Debian's pebble; scripts/setup installs it)");
        let pebble = std::process::Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // Answer at once, and never refuse a good nonce (Pebble's
            // default refuses 5% to test clients' retries).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pebble (Debian's pebble; scripts/setup installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", acme)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Pebble {
            children: vec![challtestsrv, pebble],
            directory: format!("https://127.0.0.1:{acme}/dir"),
            management: format!("https://127.0.0.1:{management}"),
            https_root,
        }
    }

    /// The root Pebble issues certificates under (new on every start).
    fn issuing_root(&self) -> CertificateDer<'static> {
        let url = format!("{}/roots/0", self.management);
        let out = std::process::Command::new("python3")
            .args(["-c", "import ssl,sys,urllib.request; c=ssl.create_default_context(cafile=sys.argv[2]); print(urllib.request.urlopen(sys.argv[1], context=c).read().decode())"])
            .arg(&url)
            .arg(&self.https_root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(&out.stdout).unwrap()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Waits until the server completes a verified handshake for `NAME`.
async fn until_served(server: &wsgate::Server, connector: &TlsConnector, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while let Err(error) = tls(server, connector).await {
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate yet: {error}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn acme_gets_a_certificate_from_pebble_over_tls_alpn() {
    let dir = tempfile::tempdir().unwrap();
    // The API's port first: Pebble's validator connects to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pebble = Pebble::start(dir.path(), port);
    let domain = DomainSettings {
        name: NAME.into(),
        path: None,
        certificate: CertificateSource::Acme(AcmeSettings {
            email: "ops@example.com".into(),
            directory: pebble.directory.clone(),
            directory_ca: Some(pebble.https_root.clone()),
            cache: dir.path().join("acme"),
        }),
    };
    let domain_again = domain.clone();
    let server = echo_api(domain).serve(listener).await.unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(pebble.issuing_root()).unwrap();
    let connector = connector_with(roots);
    // Ordered, validated and issued within seconds.
    until_served(&server, &connector, Duration::from_secs(60)).await;
    let mut client = wss(&server, &connector, &format!("wss://{NAME}/")).await;
    echo(&mut client, "issued by pebble").await;
    server.shutdown().await;

    // Kept for the next start: served at once, with Pebble gone.
    drop(pebble);
    let again = echo_api(domain_again).bind(any_port()).await.unwrap();
    until_served(&again, &connector, Duration::from_secs(10)).await;
    let mut client = wss(&again, &connector, &format!("wss://{NAME}/")).await;
    echo(&mut client, "from the cache").await;
}
