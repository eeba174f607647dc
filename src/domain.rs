//! Custom domains: TLS (rustls) from PEM files, reloaded when the files
//! change without dropping connections, and API Gateway's base path
//! mapping (`wss://<name>/<path>/` reaches the API's stage).

use percent_encoding::percent_decode_str;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are checked for changes.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A custom domain as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSettings {
    pub name: String,
    /// The base path (API mapping key), without slashes; `None`: the root.
    pub path: Option<String>,
    /// Full chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// A served custom domain.
pub struct Domain {
    pub settings: DomainSettings,
    pub acceptor: TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
}

impl Domain {
    /// Loads and checks the certificate now: a missing, unreadable,
    /// mismatched or expired one is an error naming the file.
    pub fn new(settings: DomainSettings) -> Result<Domain, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = load(&settings.cert, &settings.key, &provider)?;
        let certificate = Arc::new(ReloadingCertificate {
            current: RwLock::new(loaded),
            provider: Arc::clone(&provider),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Domain {
            settings,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    /// Whether a request's Host names this domain (any port).
    pub fn is_host(&self, host: &str) -> bool {
        let host = host.trim();
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        name.eq_ignore_ascii_case(&self.settings.name)
    }

    /// Whether `path` is the mapped base path (`/<path>` or `/` without
    /// one), which reaches the API's WebSocket endpoint.
    pub fn maps(&self, path: &str) -> bool {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().to_string())
            .collect();
        match &self.settings.path {
            None => segments.is_empty(),
            Some(base) => segments.len() == 1 && segments[0] == *base,
        }
    }

    /// The `url` output, as SST gives it: `wss://<name>/` or
    /// `wss://<name>/<path>/` (with the port when it is not 443).
    pub fn url(&self, port: u16) -> String {
        let authority = if port == 443 {
            self.settings.name.clone()
        } else {
            format!("{}:{port}", self.settings.name)
        };
        match &self.settings.path {
            None => format!("wss://{authority}"),
            Some(path) => format!("wss://{authority}/{path}/"),
        }
    }

    /// Reloads the certificate whenever its files change, until `stop`.
    /// A bad new certificate is logged and the old one kept.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let stamp = |settings: &DomainSettings| {
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            (modified(&settings.cert), modified(&settings.key))
        };
        let mut last = stamp(&self.settings);
        let mut timer = tokio::time::interval(RELOAD_CHECK_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = timer.tick() => {}
            }
            let now = stamp(&self.settings);
            if now == last {
                continue;
            }
            last = now;
            match load(
                &self.settings.cert,
                &self.settings.key,
                &self.certificate.provider,
            ) {
                Ok(loaded) => {
                    *self.certificate.current.write().expect("lock poisoned") = loaded;
                    tracing::info!(cert = %self.settings.cert.display(), "TLS certificate reloaded");
                }
                Err(error) => {
                    tracing::error!(%error, "TLS certificate not reloaded; the previous one stays")
                }
            }
        }
    }
}

/// Answers every handshake with the current certificate.
#[derive(Debug)]
struct ReloadingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().expect("lock poisoned")))
    }
}

/// Reads and checks a certificate chain and its key.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let read_error =
        |path: &Path, e: &dyn std::fmt::Display| format!("cannot use {}: {e}", path.display());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read_error(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(cert, &e))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    };
    check_validity(leaf, cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_error(key, &e))?;
    let signing_key = provider
        .key_provider
        .load_private_key(private_key)
        .map_err(|e| read_error(key, &e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| {
        format!(
            "the key in {} does not match the certificate in {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

fn check_validity(leaf: &CertificateDer<'_>, path: &Path) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("{} is not a valid certificate: {e}", path.display()))?;
    let validity = parsed.validity();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if validity.not_after.timestamp() < now {
        return Err(format!(
            "the certificate in {} expired on {}",
            path.display(),
            validity.not_after
        ));
    }
    if validity.not_before.timestamp() > now {
        return Err(format!(
            "the certificate in {} is not valid before {}",
            path.display(),
            validity.not_before
        ));
    }
    Ok(())
}
