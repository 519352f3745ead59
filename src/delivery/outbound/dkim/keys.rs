//! DKIM private keys on disk: `KEY_DIR/DOMAIN/SELECTOR.{rsa,ed25519}.key`
//! (PKCS#8 PEM or DER; RSA also PKCS#1), loaded at start or created when
//! absent, mode 0600. Ed25519 keys come from ring; ring cannot make RSA keys,
//! so an RSA key is made by the `openssl` command when it is installed, and
//! must be provided otherwise. Also the TXT record that publishes a key.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

use crate::config::DkimAlgorithm;

/// Bits of a generated RSA key.
pub const RSA_BITS: u32 = 2048;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read DKIM key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write DKIM key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DKIM key {path} is not a usable {kind} private key: {source}")]
    Parse {
        path: PathBuf,
        kind: &'static str,
        source: mail_auth::Error,
    },
    #[error("DKIM key {path} holds no private key")]
    Empty { path: PathBuf },
    #[error(
        "cannot generate the RSA key {path} ({reason}); create it with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {path}` and chmod 0600"
    )]
    RsaGenerate { path: PathBuf, reason: String },
    #[error("cannot generate an Ed25519 key: {0}")]
    Ed25519Generate(mail_auth::Error),
}

/// A loaded key and the public half to publish.
pub struct LoadedKey {
    pub key: DkimKey,
    pub algorithm: DkimAlgorithm,
    /// DER public key as published in `p=`: SPKI for RSA, the raw 32 bytes for Ed25519.
    pub public: Vec<u8>,
    pub path: PathBuf,
    /// Created by this call (not found on disk).
    pub created: bool,
}

/// Which key and where; never the private key.
impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("algorithm", &self.algorithm)
            .field("path", &self.path)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// The TXT value: `v=DKIM1; k=rsa; p=...`.
    pub fn txt_value(&self) -> String {
        let k = match self.algorithm {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", STANDARD.encode(&self.public))
    }

    /// The zone-file line, the value split into strings of at most 255 bytes.
    pub fn zone_line(&self, selector: &str, domain: &str) -> String {
        let value = self.txt_value();
        let parts: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{selector}._domainkey.{domain}. IN TXT {}", parts.join(" "))
    }
}

/// Where the key for (`domain`, `selector`, `algorithm`) lives.
pub fn key_path(dir: &Path, domain: &str, selector: &str, algorithm: DkimAlgorithm) -> PathBuf {
    dir.join(domain)
        .join(format!("{selector}.{}.key", algorithm.file_tag()))
}

/// Loads the key at its path, creating it first when the file is absent.
pub fn load_or_create(
    dir: &Path,
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
) -> Result<LoadedKey, KeyError> {
    let path = key_path(dir, domain, selector, algorithm);
    let created = match std::fs::read(&path) {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create(&path, algorithm)?;
            true
        }
        Err(source) => return Err(KeyError::Read { path, source }),
    };
    let bytes = std::fs::read(&path).map_err(|source| KeyError::Read {
        path: path.clone(),
        source,
    })?;
    let (key, public) = parse(&path, &bytes, algorithm)?;
    Ok(LoadedKey {
        key,
        algorithm,
        public,
        path,
        created,
    })
}

/// Loads the key at its path; `None` when the file is absent (never creates one).
pub fn load_existing(
    dir: &Path,
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
) -> Result<Option<LoadedKey>, KeyError> {
    let path = key_path(dir, domain, selector, algorithm);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyError::Read { path, source }),
    };
    let (key, public) = parse(&path, &bytes, algorithm)?;
    Ok(Some(LoadedKey {
        key,
        algorithm,
        public,
        path,
        created: false,
    }))
}

fn create(path: &Path, algorithm: DkimAlgorithm) -> Result<(), KeyError> {
    let pem = match algorithm {
        DkimAlgorithm::Ed25519Sha256 => {
            pem_encode(&Ed25519Key::generate_pkcs8().map_err(KeyError::Ed25519Generate)?)
        }
        DkimAlgorithm::RsaSha256 => generate_rsa_pem(path)?,
    };
    write_private(path, &pem).map_err(|source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// RSA through `openssl genpkey`, PKCS#8 PEM on its stdout (never a file of its choosing).
fn generate_rsa_pem(path: &Path) -> Result<Vec<u8>, KeyError> {
    let fail = |reason: String| KeyError::RsaGenerate {
        path: path.to_path_buf(),
        reason,
    };
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{RSA_BITS}"),
            "-outform",
            "PEM",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| fail(format!("running openssl: {e}")))?;
    if !out.status.success() || !out.stdout.starts_with(b"-----BEGIN") {
        return Err(fail(format!(
            "openssl {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Writes `bytes` to `path` with mode 0600 (directories 0700): temp file, fsync, rename, fsync dir.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{seq}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    // A link never replaces a key another start wrote meanwhile: that one wins.
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    std::fs::File::open(dir)?.sync_all()
}

fn pem_encode(der: &[u8]) -> Vec<u8> {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out.into_bytes()
}

/// The private key DER in `bytes` (PEM or raw DER).
fn key_der(
    path: &Path,
    bytes: &[u8],
    algorithm: DkimAlgorithm,
) -> Result<PrivateKeyDer<'static>, KeyError> {
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let found =
            rustls_pemfile::private_key(&mut &bytes[..]).map_err(|source| KeyError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        return found.ok_or_else(|| KeyError::Empty {
            path: path.to_path_buf(),
        });
    }
    // Raw DER: PKCS#8 when it parses as such, else (RSA only) PKCS#1.
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.to_vec()));
    if algorithm == DkimAlgorithm::RsaSha256
        && RsaKey::<Sha256>::from_key_der(pkcs8.clone_key()).is_err()
    {
        return Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
            bytes.to_vec(),
        )));
    }
    Ok(pkcs8)
}

/// The signing key and its published public half.
fn parse(
    path: &Path,
    bytes: &[u8],
    algorithm: DkimAlgorithm,
) -> Result<(DkimKey, Vec<u8>), KeyError> {
    let der = key_der(path, bytes, algorithm)?;
    let bad = |kind, source| KeyError::Parse {
        path: path.to_path_buf(),
        kind,
        source,
    };
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad("RSA", e))?;
            let public = rsa_spki(&key.public_key());
            Ok((DkimKey::Rsa(key), public))
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let PrivateKeyDer::Pkcs8(p8) = der else {
                return Err(bad(
                    "Ed25519",
                    mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                        "not PKCS#8".into(),
                    )),
                ));
            };
            let raw = p8.secret_pkcs8_der();
            // ring writes PKCS#8 v2; OpenSSL writes v1, which only the unchecked reader takes.
            let key = Ed25519Key::from_pkcs8_der(raw)
                .or_else(|_| Ed25519Key::from_pkcs8_maybe_unchecked_der(raw))
                .map_err(|e| bad("Ed25519", e))?;
            let public = key.public_key();
            Ok((DkimKey::Ed25519(key), public))
        }
    }
}

/// DER length octets.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// SubjectPublicKeyInfo around a PKCS#1 RSAPublicKey: what `p=` usually holds.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID 1.2.840.113549.1.1.1, NULL }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = ALGORITHM.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ed25519_key_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(
            dir.path(),
            "school.example",
            "rb1",
            DkimAlgorithm::Ed25519Sha256,
        )
        .unwrap();
        assert!(first.created);
        assert_eq!(
            first.path,
            dir.path().join("school.example/rb1.ed25519.key")
        );
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("school.example"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let again = load_or_create(
            dir.path(),
            "school.example",
            "rb1",
            DkimAlgorithm::Ed25519Sha256,
        )
        .unwrap();
        assert!(!again.created);
        assert_eq!(first.public, again.public);
        assert_eq!(first.public.len(), 32);
        assert!(again.txt_value().starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn rsa_key_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = match load_or_create(
            dir.path(),
            "school.example",
            "rb1",
            DkimAlgorithm::RsaSha256,
        ) {
            Err(KeyError::RsaGenerate { reason, .. })
                if std::env::var("CI").as_deref() != Ok("true") =>
            {
                return eprintln!("no openssl here: {reason}");
            }
            r => r.unwrap(),
        };
        assert!(first.created);
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(
            dir.path(),
            "school.example",
            "rb1",
            DkimAlgorithm::RsaSha256,
        )
        .unwrap();
        assert!(!again.created);
        assert_eq!(first.public, again.public);
        // SPKI of a 2048-bit key: 294 bytes, starting with SEQUENCE, long length.
        assert_eq!(first.public.len(), 294);
        assert_eq!(&first.public[..2], &[0x30, 0x82]);
        let line = first.zone_line("rb1", "school.example");
        assert!(
            line.starts_with("rb1._domainkey.school.example. IN TXT \"v=DKIM1; k=rsa; p="),
            "{line}"
        );
        assert!(line.split('"').all(|s| s.len() <= 255));
    }

    /// `openssl ARGS` to stdout, or `None` (outside CI) when openssl is missing.
    fn openssl(args: &[&str]) -> Option<Vec<u8>> {
        match Command::new("openssl").args(args).output() {
            Ok(o) if o.status.success() => Some(o.stdout),
            r if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: openssl {args:?} failed: {r:?}");
                None
            }
            r => panic!("openssl {args:?}: {r:?}"),
        }
    }

    #[test]
    fn keys_an_operator_makes_with_openssl_load() {
        let dir = tempfile::tempdir().unwrap();
        let Some(ed) = openssl(&["genpkey", "-algorithm", "ed25519"]) else {
            return;
        };
        write_private(
            &key_path(dir.path(), "a.example", "s", DkimAlgorithm::Ed25519Sha256),
            &ed,
        )
        .unwrap();
        assert_eq!(
            load_or_create(dir.path(), "a.example", "s", DkimAlgorithm::Ed25519Sha256)
                .unwrap()
                .public
                .len(),
            32
        );
        let Some(pkcs1) = openssl(&["genrsa", "-traditional", "2048"]) else {
            return;
        };
        assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        write_private(
            &key_path(dir.path(), "a.example", "s", DkimAlgorithm::RsaSha256),
            &pkcs1,
        )
        .unwrap();
        let rsa = load_or_create(dir.path(), "a.example", "s", DkimAlgorithm::RsaSha256).unwrap();
        assert!(!rsa.created && rsa.public.len() == 294);
    }

    #[test]
    fn der_keys_load_and_junk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path(), "a.example", "s", DkimAlgorithm::Ed25519Sha256);
        write_private(&path, &Ed25519Key::generate_pkcs8().unwrap()).unwrap();
        assert!(
            !load_or_create(dir.path(), "a.example", "s", DkimAlgorithm::Ed25519Sha256)
                .unwrap()
                .created
        );
        std::fs::remove_file(&path).unwrap();
        write_private(
            &path,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(
            load_or_create(dir.path(), "a.example", "s", DkimAlgorithm::Ed25519Sha256).is_err()
        );
        // A second writer never replaces the key already there.
        write_private(&path, b"other").unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"-----BEGIN"));
    }
}
