//! TLS on the API's port: a custom domain's certificate (PEM files,
//! reloaded when they change without dropping connections, or obtained and
//! renewed over ACME) and the local CA's certificate for the API's own
//! host, chosen by SNI; and API Gateway's base path mapping for the domain
//! (`wss://<name>/<path>/` reaches the API's stage).

use crate::gateway::paths::{self, Target};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_acme::acme::ACME_TLS_ALPN_NAME;
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, AcmeState, ResolvesServerCertAcme};
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
    pub certificate: CertificateSource,
}

/// Where a domain's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM files (full chain, private key), reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// An ACME directory (Let's Encrypt, or any RFC 8555 server), proving
    /// the name with TLS-ALPN-01 on the API's own port; renewed before it
    /// expires.
    Acme(AcmeSettings),
}

/// `[domain] acme = { email, directory, directory_ca }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub email: String,
    /// The directory URL.
    pub directory: String,
    /// A PEM root the directory's own HTTPS certificate chains to, trusted
    /// beside the public roots (a private ACME server, e.g. Pebble).
    pub directory_ca: Option<PathBuf>,
    /// Where the account key and certificates are kept across restarts.
    pub cache: PathBuf,
}

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// A served custom domain.
pub struct Domain {
    pub settings: DomainSettings,
    certificate: DomainCertificate,
    /// ACME's order and renewal loop, driven by `watch` once serving.
    acme: std::sync::Mutex<Option<AcmeState<std::io::Error>>>,
}

/// The certificate a domain serves.
#[derive(Debug, Clone)]
enum DomainCertificate {
    Files(Arc<ReloadingCertificate>),
    /// Answers TLS-ALPN-01 challenges, and serves the certificate once
    /// issued (until then, handshakes for the name fail).
    Acme(Arc<ResolvesServerCertAcme>),
}

impl DomainCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self {
            DomainCertificate::Files(files) => Some(files.current()),
            DomainCertificate::Acme(acme) => acme.resolve(hello),
        }
    }
}

impl Domain {
    /// Loads and checks the certificate now: a missing, unreadable,
    /// mismatched or expired one is an error naming the file. With ACME,
    /// nothing is ordered until `watch` runs (serving, not validating).
    pub fn new(settings: DomainSettings) -> Result<Domain, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (certificate, acme) = match &settings.certificate {
            CertificateSource::Files { cert, key } => {
                let loaded = load(cert, key, &provider)?;
                let files = Arc::new(ReloadingCertificate {
                    current: RwLock::new(loaded),
                    provider,
                });
                (DomainCertificate::Files(files), None)
            }
            CertificateSource::Acme(acme) => {
                let state = acme_state(&settings.name, acme, provider)?;
                (DomainCertificate::Acme(state.resolver()), Some(state))
            }
        };
        Ok(Domain {
            settings,
            certificate,
            acme: std::sync::Mutex::new(acme),
        })
    }

    fn uses_acme(&self) -> bool {
        matches!(self.certificate, DomainCertificate::Acme(_))
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

    /// What `path` addresses on the domain: the mapped base path (`/<path>`,
    /// or `/` without one) is the API's endpoint, `<base>/@connections/<id>`
    /// its management API.
    pub fn classify(&self, path: &str) -> Target {
        paths::classify_on_domain(path, self.settings.path.as_deref())
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

    /// Keeps the certificate current until `stop`: reloads the files
    /// whenever they change (a bad new certificate is logged and the old
    /// one kept), or runs ACME's orders and renewals.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let acme = self.acme.lock().expect("lock poisoned").take();
        if let Some(mut acme) = acme {
            use futures_util::StreamExt;
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => return,
                    event = acme.next() => event,
                };
                match event {
                    Some(Ok(event)) => tracing::info!(domain = %self.settings.name, ?event, "ACME"),
                    Some(Err(error)) => {
                        tracing::warn!(domain = %self.settings.name, ?error, "ACME: will retry")
                    }
                    None => return,
                }
            }
        }
        let (DomainCertificate::Files(files), CertificateSource::Files { cert, key }) =
            (&self.certificate, &self.settings.certificate)
        else {
            return;
        };
        let stamp = || {
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            (modified(cert), modified(key))
        };
        let mut last = stamp();
        let mut timer = tokio::time::interval(RELOAD_CHECK_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = timer.tick() => {}
            }
            let now = stamp();
            if now == last {
                continue;
            }
            last = now;
            match load(cert, key, &files.provider) {
                Ok(loaded) => {
                    *files.current.write().expect("lock poisoned") = loaded;
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                }
                Err(error) => {
                    tracing::error!(%error, "TLS certificate not reloaded; the previous one stays")
                }
            }
        }
    }
}

/// A certificate whose files may be replaced while it is served.
#[derive(Debug)]
struct ReloadingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl ReloadingCertificate {
    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().expect("lock poisoned"))
    }
}

/// TLS on the API's port: the acceptor, and whether the API's own host
/// is served (with the local CA's certificate) besides a custom domain.
pub struct TlsServing {
    pub acceptor: TlsAcceptor,
    /// The API's own host is served over TLS (the local certificate).
    pub own_host: bool,
}

impl TlsServing {
    /// TLS for a custom domain, the local certificate (`cert`, `key`:
    /// PEM files from the local CA), or both, chosen by SNI.
    pub fn new(
        domain: Option<&Domain>,
        local: Option<(&Path, &Path)>,
    ) -> Result<TlsServing, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let local = local
            .map(|(cert, key)| load(cert, key, &provider))
            .transpose()?;
        let resolver = Arc::new(BySni {
            domain: domain.map(|d| (d.settings.name.clone(), d.certificate.clone())),
            own_host: local.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if domain.is_some_and(Domain::uses_acme) {
            // ACME's validator asks for this protocol alone (TLS-ALPN-01).
            config.alpn_protocols.push(ACME_TLS_ALPN_NAME.to_vec());
        }
        Ok(TlsServing {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            own_host: local.is_some(),
        })
    }
}

/// The domain's certificate when the client asks for the domain by name
/// (SNI), the local one otherwise (addresses carry no SNI).
#[derive(Debug)]
struct BySni {
    domain: Option<(String, DomainCertificate)>,
    own_host: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match (hello.server_name(), &self.domain, &self.own_host) {
            (Some(sni), Some((name, certificate)), _) if sni.eq_ignore_ascii_case(name) => {
                certificate.resolve(hello)
            }
            (_, _, Some(own_host)) => Some(Arc::clone(own_host)),
            (_, Some((_, certificate)), None) => certificate.resolve(hello),
            (_, None, None) => None,
        }
    }
}

/// ACME for `name`: the account and certificates cached on disk, the
/// directory reached over HTTPS with the public roots (and the
/// directory's own, when given).
fn acme_state(
    name: &str,
    settings: &AcmeSettings,
    provider: Arc<CryptoProvider>,
) -> Result<AcmeState<std::io::Error>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = &settings.directory_ca {
        for cert in CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cannot use {}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| format!("cannot use {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("cannot use {}: {e}", ca.display()))?;
        }
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ACME client TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(AcmeConfig::new_with_client_config([name], Arc::new(client))
        .contact_push(format!("mailto:{}", settings.email))
        .directory(&settings.directory)
        .cache(DirCache::new(settings.cache.clone()))
        .state())
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
