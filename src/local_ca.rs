//! The app's local certificate authority, as API Gateway always serves
//! TLS: created once in `.wsgate/ca/`, it issues the certificate for the
//! names the API listens on (localhost, loopback addresses, the listen
//! address, a custom domain without certificate files). Function handlers
//! trust it through the variables their runtimes read; browsers and the
//! OS can be told to (`wsgate ca`).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
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
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        // Several processes of one app (cluster nodes on one machine) may
        // open it at once: one creates it, the others wait and read it.
        let _lock = crate::state_dir::Lock::take(&dir.join(".lock"))?;
        if !cert_path.is_file() || !key_path.is_file() {
            create(dir, &cert_path, &key_path)?;
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

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), String> {
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
