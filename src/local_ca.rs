//! The app's local certificate authority, as API Gateway always serves
//! TLS: created once in `.wsgate/ca/`, it issues the certificate for the
//! names the API listens on (localhost, loopback addresses, the listen
//! address, a custom domain without certificate files). Function handlers
//! trust it through the variables their runtimes read; browsers and the
//! OS can be told to (`wsgate ca`).

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The system's CA bundles, the first that exists is joined with the local
/// CA for runtimes whose variable replaces (not adds to) their trust store.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

pub struct LocalCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the local CA issued, on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl LocalCa {
    /// The CA in `dir`, created (key readable by the owner only) if there
    /// is none yet.
    pub fn open(dir: &Path) -> Result<LocalCa, String> {
        LocalCa::open_covering(dir, &[])
    }

    /// The CA in `dir`, able to issue for `names` too: it may sign only
    /// for the names it permits (X.509 name constraints: this machine's
    /// names, loopback addresses, and the names asked for), so its key,
    /// if it leaks, cannot sign for the internet. A CA that does not
    /// permit a name asked for (or predates constraints) is made anew,
    /// permitting what the old one did and the new names.
    pub fn open_covering(dir: &Path, names: &[String]) -> Result<LocalCa, String> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        // Several processes of one app (cluster nodes on one machine) may
        // open it at once: one creates it, the others wait and read it.
        let _lock = crate::state_dir::Lock::take(&dir.join(".lock"))?;
        let permitted = Permitted::read(dir);
        let exists = cert_path.is_file() && key_path.is_file();
        match &permitted {
            Some(permitted) if exists && names.iter().all(|n| permitted.covers(n)) => {}
            _ => {
                let mut wanted = permitted.unwrap_or_else(Permitted::base);
                wanted.add(names);
                if exists {
                    tracing::warn!(
                        "the local CA in {} is made anew to cover {names:?}; clients that trusted the old one must trust the new one (`wsgate ca`)",
                        dir.display()
                    );
                }
                create(dir, &cert_path, &key_path, &wanted)?;
                wanted.write(dir)?;
            }
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let key = KeyPair::from_pem(&read(&key_path)?)
            .map_err(|e| format!("{} is not a key: {e}", key_path.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&read(&cert_path)?, key)
            .map_err(|e| format!("{} is not a CA certificate: {e}", cert_path.display()))?;
        let ca = LocalCa {
            dir: dir.to_path_buf(),
            issuer,
        };
        ca.write_bundle()?;
        Ok(ca)
    }

    /// The CA certificate (PEM): what clients trust.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The system's CAs and this one, in one file.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join("bundle.pem")
    }

    /// The variables that make function runtimes trust this CA: Node.js
    /// adds `NODE_EXTRA_CA_CERTS` to its own; botocore, OpenSSL and
    /// requests replace theirs with the bundle, which keeps the system's.
    pub fn trust_env(&self) -> Vec<(String, String)> {
        let ca = self.cert_path().display().to_string();
        let bundle = self.bundle_path().display().to_string();
        vec![
            ("NODE_EXTRA_CA_CERTS".into(), ca),
            ("AWS_CA_BUNDLE".into(), bundle.clone()),
            ("SSL_CERT_FILE".into(), bundle.clone()),
            ("REQUESTS_CA_BUNDLE".into(), bundle),
        ]
    }

    /// Issues a server certificate for `names` (host names or addresses),
    /// written with its key as one file, `<label>.pem`, replaced in one
    /// step: a process reading it never sees one's key with another's
    /// certificate.
    pub fn issue(&self, label: &str, names: &[String]) -> Result<Issued, String> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        for name in names {
            params.subject_alt_names.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.clone()
                        .try_into()
                        .map_err(|e| format!("\"{name}\" cannot be in a certificate: {e}"))?,
                ),
            });
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        // Browsers refuse server certificates valid for more than 398 days.
        params.not_after = now + Duration::days(397);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("cannot issue a certificate for {names:?}: {e}"))?;
        let path = self.dir.join(format!("{label}.pem"));
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        crate::state_dir::replace(&path, pem.as_bytes(), 0o600)?;
        Ok(Issued {
            cert: path.clone(),
            key: path,
        })
    }

    fn write_bundle(&self) -> Result<(), String> {
        let mut bundle = SYSTEM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(
            &std::fs::read_to_string(self.cert_path())
                .map_err(|e| format!("cannot read {}: {e}", self.cert_path().display()))?,
        );
        crate::state_dir::replace(&self.bundle_path(), bundle.as_bytes(), 0o644)
    }
}

/// The names a CA may sign for: DNS names (each with its subdomains) and
/// IP ranges, kept beside it (`permitted.txt`, one a line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Permitted {
    names: Vec<String>,
}

impl Permitted {
    /// This machine's names and loopback addresses.
    fn base() -> Permitted {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.0/8".into(),
            "::1/128".into(),
        ];
        names.extend(machine_host_name());
        Permitted { names }
    }

    fn read(dir: &Path) -> Option<Permitted> {
        let text = std::fs::read_to_string(dir.join("permitted.txt")).ok()?;
        Some(Permitted {
            names: text
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect(),
        })
    }

    fn write(&self, dir: &Path) -> Result<(), String> {
        crate::state_dir::replace(
            &dir.join("permitted.txt"),
            (self.names.join("\n") + "\n").as_bytes(),
            0o644,
        )
    }

    fn add(&mut self, names: &[String]) {
        for name in names {
            let entry = match name.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => format!("{ip}/32"),
                Ok(IpAddr::V6(ip)) => format!("{ip}/128"),
                // Every API of the region (`<id>.execute-api.<region>
                // .amazonaws.com`), so another API does not remake the CA.
                Err(_) => match name.to_ascii_lowercase().split_once(".execute-api.") {
                    Some((_, rest)) if rest.ends_with(".amazonaws.com") => {
                        format!("execute-api.{rest}")
                    }
                    _ => name.to_ascii_lowercase(),
                },
            };
            if !self.covers(name) {
                self.names.push(entry);
            }
        }
    }

    /// Whether a certificate for `name` would be within these.
    fn covers(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(ip) => self
                .names
                .iter()
                .filter_map(|entry| parse_cidr(entry))
                .any(|(net, prefix)| in_subnet(ip, net, prefix)),
            Err(_) => {
                let name = name.to_ascii_lowercase();
                self.names
                    .iter()
                    .filter(|e| parse_cidr(e).is_none())
                    .any(|entry| name == *entry || name.ends_with(&format!(".{entry}")))
            }
        }
    }

    fn constraints(&self) -> NameConstraints {
        NameConstraints {
            permitted_subtrees: self
                .names
                .iter()
                .map(|entry| match parse_cidr(entry) {
                    Some((ip, prefix)) => {
                        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, prefix))
                    }
                    None => GeneralSubtree::DnsName(entry.clone()),
                })
                .collect(),
            excluded_subtrees: Vec::new(),
        }
    }
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = entry.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok()?))
}

fn in_subnet(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn create(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    permitted: &Permitted,
) -> Result<(), String> {
    // The key must never be committed: `.wsgate/` ignores itself.
    if let Some(app_dir) = dir
        .parent()
        .filter(|state| {
            state
                .file_name()
                .is_some_and(|n| n == crate::state_dir::NAME)
        })
        .and_then(Path::parent)
    {
        crate::state_dir::create(app_dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    name.push(DnType::OrganizationName, "wsgate local development");
    name.push(
        DnType::CommonName,
        format!("wsgate local CA {host} {}", crate::ids::new_id()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.name_constraints = Some(permitted.constraints());
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(10 * 365);
    let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot make the local CA: {e}"))?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    tracing::info!(
        "created a local certificate authority in {}; `wsgate ca` tells how to trust it",
        dir.display()
    );
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The names the API's own certificate is issued for: this machine's
/// (localhost, loopback addresses, its host name), the listen address when
/// it is another, and the name API Gateway gives the API (which handlers
/// reach wsgate by).
pub fn served_names(
    listen: Option<std::net::SocketAddr>,
    api_id: &str,
    region: &str,
) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(addr) = listen.filter(|a| !a.ip().is_unspecified() && !a.ip().is_loopback()) {
        names.push(addr.ip().to_string());
    }
    names.push(crate::ids::execute_api_host(api_id, region));
    names.extend(machine_host_name());
    // The local services' regional names, which handlers reach too
    // (`services::regional`): covered from the start, so the CA is not
    // made anew once a service starts.
    names.extend(crate::services::regional::service_hosts(region));
    names
}

/// `/etc/hostname`, when it is a plain host name.
fn machine_host_name() -> Option<String> {
    let host = std::fs::read_to_string("/etc/hostname").ok()?;
    let host = host.trim();
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    .then(|| host.to_ascii_lowercase())
}

/// Where an app keeps its CA.
pub fn dir(app_dir: &Path) -> PathBuf {
    app_dir.join(".wsgate").join("ca")
}

/// How to trust the CA, for `wsgate ca`.
pub fn trust_instructions(ca: &Path) -> String {
    let ca = ca.display();
    format!(
        "The local CA that signs the certificates wsgate serves:\n  {ca}\n\n\
         Function handlers trust it already (NODE_EXTRA_CA_CERTS, AWS_CA_BUNDLE,\n\
         SSL_CERT_FILE, REQUESTS_CA_BUNDLE). For anything else:\n\n\
         Node.js:   NODE_EXTRA_CA_CERTS={ca} node client.mjs\n\
         Python:    SSL_CERT_FILE={ca} python client.py   (or ssl.create_default_context(cafile=...))\n\
         curl:      curl --cacert {ca} https://127.0.0.1:8080/...\n\
         Chrome/Chromium (Linux): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wsgate -i {ca}\n\
         Firefox:   Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import\n\
         Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/wsgate.crt && sudo update-ca-certificates\n\
         macOS:     sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n\n\
         Without trusting it, ws:// and http:// keep working on the same port."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies `cert` (PEM) for `name` as a TLS client trusting the CA
    /// in `dir` does (rustls, webpki: name constraints enforced).
    fn verify(dir: &Path, cert: &str, name: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let cert = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        verifier
            .verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    /// What the CA issues verifies; a certificate its key signs for a name
    /// it does not permit (as a thief of the key would) does not.
    #[test]
    fn a_leaked_key_cannot_sign_for_the_internet() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_covering(dir.path(), &["ws.example.test".into()]).unwrap();
        let issued = ca
            .issue("server", &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let pem = std::fs::read_to_string(&issued.cert).unwrap();
        verify(dir.path(), &pem, "localhost").unwrap();
        verify(dir.path(), &pem, "127.0.0.1").unwrap();
        let domain = ca.issue("domain", &["ws.example.test".into()]).unwrap();
        verify(
            dir.path(),
            &std::fs::read_to_string(&domain.cert).unwrap(),
            "ws.example.test",
        )
        .unwrap();
        // The key in a thief's hands: a certificate for a bank.
        let stolen = ca.issue("stolen", &["bank.example.com".into()]).unwrap();
        let refused = verify(
            dir.path(),
            &std::fs::read_to_string(&stolen.cert).unwrap(),
            "bank.example.com",
        );
        assert!(refused.is_err(), "{refused:?}");
        // A CA that must cover a new name is made anew, and covers both.
        let again = LocalCa::open_covering(dir.path(), &["other.example.test".into()]).unwrap();
        let other = again
            .issue(
                "other",
                &["other.example.test".into(), "ws.example.test".into()],
            )
            .unwrap();
        verify(
            dir.path(),
            &std::fs::read_to_string(&other.cert).unwrap(),
            "other.example.test",
        )
        .unwrap();
        verify(
            dir.path(),
            &std::fs::read_to_string(&other.cert).unwrap(),
            "ws.example.test",
        )
        .unwrap();
    }

    #[test]
    fn issues_certificates_that_chain_to_it_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open(dir.path()).unwrap();
        let first = std::fs::read_to_string(ca.cert_path()).unwrap();
        let issued = ca
            .issue(
                "server",
                &["localhost".into(), "127.0.0.1".into(), "::1".into()],
            )
            .unwrap();
        assert!(
            std::fs::read_to_string(&issued.cert)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&issued.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Reopened, it is the same CA.
        let again = LocalCa::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(again.cert_path()).unwrap(), first);
        assert!(
            std::fs::read_to_string(again.bundle_path())
                .unwrap()
                .ends_with(&first)
        );
    }
}
