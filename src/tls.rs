//! Optional HTTPS for administration over the LAN (rustls, ring provider).
//! Either the operator's PEM certificate and key, or with `--tls-self-signed`
//! a certificate for this device's hostname and addresses, generated on
//! first start, kept in the data dir and reused; its SHA-256 fingerprint is
//! logged so an operator can pin it.

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// Where the certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsSource {
    /// Plain HTTP only.
    #[default]
    None,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Generated once into the data dir; extra subject names besides the
    /// hostname, `localhost`, loopback and the listen address.
    SelfSigned {
        extra_names: Vec<String>,
    },
}

/// A ready server configuration and the certificate's fingerprint.
pub struct Tls {
    pub config: ServerConfig,
    pub fingerprint: String,
}

/// Uppercase hex SHA-256 with colons, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(der);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The kernel's hostname, read without NSS (static glibc builds cannot use it).
fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

fn subject_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(h) = hostname() {
        names.push(format!("{h}.local"));
        names.push(h);
    }
    names.extend(["localhost".to_string(), "127.0.0.1".into(), "::1".into()]);
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    names.dedup();
    names
}

fn write_private(path: &Path, data: &str, mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn ensure_self_signed(
    data_dir: &Path,
    listen: SocketAddr,
    extra: &[String],
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = data_dir.join(SELF_SIGNED_CERT);
    let key = data_dir.join(SELF_SIGNED_KEY);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let names = subject_names(listen, extra);
    let generated = rcgen::generate_simple_self_signed(names.clone())
        .context("cannot generate a certificate")?;
    // Key first: a certificate file without its key would be reused as is.
    write_private(&key, &generated.signing_key.serialize_pem(), 0o600)?;
    write_private(&cert, &generated.cert.pem(), 0o644)?;
    log::info!(
        "generated a self-signed TLS certificate for {names:?} in {}",
        cert.display()
    );
    Ok((cert, key))
}

/// Loads (or creates) the certificate and builds the rustls configuration.
pub fn load(
    source: &TlsSource,
    data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<Option<Tls>> {
    let (cert_path, key_path) = match source {
        TlsSource::None => return Ok(None),
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { extra_names } => ensure_self_signed(data_dir, listen, extra_names)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("cannot read certificate {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid certificate PEM {}", cert_path.display()))?;
    let first = certs
        .first()
        .with_context(|| format!("no certificate in {}", cert_path.display()))?;
    let fingerprint = fingerprint(first);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read private key {}", key_path.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls {
        config,
        fingerprint,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let src = TlsSource::SelfSigned {
            extra_names: vec!["gateway.example".into()],
        };
        let listen: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let a = load(&src, dir.path(), listen).unwrap().unwrap();
        let b = load(&src, dir.path(), listen).unwrap().unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn mismatched_or_missing_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let src = TlsSource::Files {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let err = load(&src, dir.path(), "127.0.0.1:1".parse().unwrap())
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("cannot read certificate"),
            "{err:#}"
        );
    }
}
