//! Secrets at rest: PSA credentials and webhook secrets are stored sealed, so a copy of the
//! database (a backup, a replica, a stolen disk image) does not hand out the credentials of
//! every tenant. The key that opens them lives outside the database, in a file.
//!
//! Envelope encryption, XChaCha20-Poly1305 throughout: each value gets a random data key that
//! encrypts it, and the master key wraps (encrypts) the data key. Rotating the master key then
//! re-wraps 48-byte data keys and never touches the values themselves. Both encryptions bind
//! the value's place (tenant, table, row, member) as associated data, so a sealed value copied
//! into another row, tenant or member does not open: the database cannot be used to move one
//! tenant's credential into another tenant's integration.
//!
//! Stored form: `nbs1.<key id>.<base64url(wrap nonce ‖ wrapped data key ‖ nonce ‖ ciphertext)>`.
//! The key id (8 hex characters of a domain-separated SHA-256 of the master key) tells which
//! key sealed a value without revealing anything about the key, so a wrong key file gets an
//! error that names both keys instead of a bare authentication failure.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The prefix (and format version) of a sealed value.
pub const SEALED_PREFIX: &str = "nbs1.";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
const KEY_ID_LEN: usize = 8;

/// The 32-byte key that wraps every data key. Its bytes are wiped when dropped and never
/// printed (`Debug` shows the key id only).
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

/// Why a key file or key text is refused. Never quotes the text: it may be a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("expected 64 hexadecimal characters (32 bytes), found {0} characters")]
    Length(usize),
    #[error(
        "expected 64 hexadecimal characters (32 bytes), found a character that is not hexadecimal"
    )]
    NotHex,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"neo-backfill master key id v1\0");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..KEY_ID_LEN / 2]);
        Self {
            bytes: Zeroizing::new(bytes),
            id,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut bytes[..]);
        Self::from_bytes(*bytes)
    }

    /// Parses 64 hex characters; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() != 64 {
            return Err(KeyError::Length(t.chars().count()));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(t, &mut bytes[..]).map_err(|_| KeyError::NotHex)?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The key as 64 lowercase hex characters (what a key file holds).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.bytes[..]))
    }

    /// 8 hex characters that name this key in errors and logs; they reveal nothing of it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads a key file (64 hex characters, whitespace ignored).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the master key file {}: {e}", path.display())
        })?);
        let key = Self::from_hex(&text).map_err(|e| {
            anyhow::anyhow!("the master key file {} is malformed: {e}", path.display())
        })?;
        warn_if_readable_by_others(path);
        Ok(key)
    }

    /// Writes the key to a new file readable by its owner only (0600). Fails if `path` exists:
    /// the file appears complete or not at all, so two processes starting together agree on
    /// one key.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("master-key"),
            uuid::Uuid::new_v4().simple()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let written = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(self.to_hex().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        written
    }

    /// The key in `path`, created (0600) if the file does not exist; `true` when created.
    pub fn load_or_create(path: &Path) -> anyhow::Result<(Self, bool)> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let key = Self::generate();
        match key.write_new(path) {
            Ok(()) => Ok((key, true)),
            // Another process created it meanwhile: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => Err(anyhow::anyhow!(
                "cannot create the master key file {}: {e}",
                path.display()
            )),
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the master key file is readable by other users: chmod 600 it");
        }
    }
}
#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// The file of a SQLite database's own key when none is configured: `<db file>.master-key`.
/// `None` for an in-memory database (and for any other URL).
pub fn sqlite_key_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") || query.contains("mode=memory") {
        return None;
    }
    let mut p = PathBuf::from(path).into_os_string();
    p.push(".master-key");
    Some(PathBuf::from(p))
}

/// The master key for the database at `url`: the file `key_file` when given; else, for SQLite,
/// the key beside the database file (generated on first use, and its path logged once), or an
/// ephemeral key for an in-memory database. PostgreSQL has no place beside it to keep one, so
/// it needs `key_file`.
pub fn master_key_for(url: &str, key_file: Option<&Path>) -> anyhow::Result<MasterKey> {
    if let Some(f) = key_file {
        return MasterKey::load(f);
    }
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "PostgreSQL needs --master-key-file (or NEO_MASTER_KEY_FILE): a file holding the \
             64-hex-character master key that seals the secrets in the database. Create one \
             with `neo-backfill secrets generate-key --out FILE` and give every replica the same file."
        );
    }
    match sqlite_key_path(url) {
        None => Ok(MasterKey::generate()),
        Some(path) => {
            let (key, created) = MasterKey::load_or_create(&path)?;
            if created {
                tracing::info!(path = %path.display(), key_id = key.id(), "generated the master key that seals this database's secrets: back it up with the database (without it the secrets cannot be read)");
            }
            Ok(key)
        }
    }
}

/// Why a stored value does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("not a sealed value ({0})")]
    Malformed(&'static str),
    #[error("the master key does not match: the value was sealed with key {sealed_with}, the configured key is {configured}")]
    OtherKey {
        sealed_with: String,
        configured: String,
    },
    #[error("the value does not open with master key {0}: the master key does not match or the value was tampered with (or copied from another row or member)")]
    Tampered(String),
}

/// Seals and opens values with one master key.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: MasterKey,
}

struct Parts {
    key_id: String,
    wrap_nonce: [u8; NONCE_LEN],
    wrapped: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

fn wrap_aad(context: &str) -> Vec<u8> {
    [b"nbs1 wrap|".as_slice(), context.as_bytes()].concat()
}
fn data_aad(context: &str) -> Vec<u8> {
    [b"nbs1 data|".as_slice(), context.as_bytes()].concat()
}

impl Sealer {
    pub fn new(key: MasterKey) -> Self {
        Self { key }
    }

    pub fn key_id(&self) -> &str {
        self.key.id()
    }

    /// Whether `s` is in sealed form (whatever key sealed it).
    pub fn is_sealed(s: &str) -> bool {
        s.starts_with(SEALED_PREFIX)
    }

    fn master(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.key.bytes).into())
    }

    /// Seals `plaintext` for the place `context` names (e.g. `integrations|<tenant>|secrets.x`).
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut data_key[..]);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = XChaCha20Poly1305::new((&*data_key).into())
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &data_aad(context),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length used here");
        self.wrap(&data_key[..], &nonce, &ciphertext, context)
    }

    fn wrap(&self, data_key: &[u8], nonce: &[u8], ciphertext: &[u8], context: &str) -> String {
        let wrap_nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let wrapped = self
            .master()
            .encrypt(
                &wrap_nonce,
                Payload {
                    msg: data_key,
                    aad: &wrap_aad(context),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts a 32-byte key");
        let blob = [&wrap_nonce[..], &wrapped, nonce, ciphertext].concat();
        format!(
            "{SEALED_PREFIX}{}.{}",
            self.key.id(),
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    fn parse(stored: &str) -> Result<Parts, OpenError> {
        let rest = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or(OpenError::Malformed("no nbs1 prefix"))?;
        let (key_id, b64) = rest
            .split_once('.')
            .ok_or(OpenError::Malformed("no key id"))?;
        if key_id.len() != KEY_ID_LEN || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OpenError::Malformed("bad key id"));
        }
        let blob = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| OpenError::Malformed("bad base64"))?;
        if blob.len() < NONCE_LEN + WRAPPED_KEY_LEN + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed("too short"));
        }
        let (wrap_nonce, rest) = blob.split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_KEY_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Parts {
            key_id: key_id.to_owned(),
            wrap_nonce: wrap_nonce.try_into().expect("split at its length"),
            wrapped: wrapped.to_vec(),
            nonce: nonce.try_into().expect("split at its length"),
            ciphertext: ciphertext.to_vec(),
        })
    }

    fn unwrap_key(&self, p: &Parts, context: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if p.key_id != self.key.id() {
            return Err(OpenError::OtherKey {
                sealed_with: p.key_id.clone(),
                configured: self.key.id().to_owned(),
            });
        }
        self.master()
            .decrypt(
                XNonce::from_slice(&p.wrap_nonce),
                Payload {
                    msg: &p.wrapped,
                    aad: &wrap_aad(context),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered(self.key.id().to_owned()))
    }

    /// The plaintext of a value [`Sealer::seal`] sealed for the same `context`.
    pub fn open(&self, stored: &str, context: &str) -> Result<Zeroizing<String>, OpenError> {
        let p = Self::parse(stored)?;
        let data_key = self.unwrap_key(&p, context)?;
        let plain = XChaCha20Poly1305::new_from_slice(&data_key)
            .map_err(|_| OpenError::Tampered(self.key.id().to_owned()))?
            .decrypt(
                XNonce::from_slice(&p.nonce),
                Payload {
                    msg: &p.ciphertext,
                    aad: &data_aad(context),
                },
            )
            .map_err(|_| OpenError::Tampered(self.key.id().to_owned()))?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Malformed("not UTF-8"))
    }

    /// The same value wrapped by `new` instead of this key: the data key is unwrapped and
    /// wrapped again; the value's own ciphertext is kept.
    pub fn rewrap(&self, stored: &str, context: &str, new: &Sealer) -> Result<String, OpenError> {
        let p = Self::parse(stored)?;
        let data_key = self.unwrap_key(&p, context)?;
        // Check the value too: a rotation must not carry a tampered value forward.
        self.open(stored, context)?;
        Ok(new.wrap(&data_key, &p.nonce, &p.ciphertext, context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(b: u8) -> Sealer {
        Sealer::new(MasterKey::from_bytes([b; 32]))
    }

    #[test]
    fn round_trip_and_fresh_randomness() {
        let s = sealer(1);
        let a = s.seal("hunter2", "integrations|t1|secrets.private_key");
        let b = s.seal("hunter2", "integrations|t1|secrets.private_key");
        assert_ne!(a, b, "random data key and nonces");
        assert!(a.starts_with(&format!("nbs1.{}.", s.key_id())));
        assert!(!a.contains("hunter2"));
        assert_eq!(
            &*s.open(&a, "integrations|t1|secrets.private_key").unwrap(),
            "hunter2"
        );
        assert_eq!(&*s.open(&s.seal("", "c"), "c").unwrap(), "");
        let long = "é".repeat(10_000);
        assert_eq!(*s.open(&s.seal(&long, "c"), "c").unwrap(), long);
    }

    #[test]
    fn another_place_does_not_open() {
        let s = sealer(1);
        let a = s.seal("x", "integrations|t1|secrets.private_key");
        for other in [
            "integrations|t2|secrets.private_key",
            "integrations|t1|secrets.client_id",
            "workflows|t1|1|executor.secret",
        ] {
            assert_eq!(
                s.open(&a, other).unwrap_err(),
                OpenError::Tampered(s.key_id().into())
            );
        }
    }

    #[test]
    fn another_key_does_not_open_and_says_which() {
        let (s1, s2) = (sealer(1), sealer(2));
        assert_ne!(s1.key_id(), s2.key_id());
        let a = s1.seal("x", "c");
        assert_eq!(
            s2.open(&a, "c").unwrap_err(),
            OpenError::OtherKey {
                sealed_with: s1.key_id().into(),
                configured: s2.key_id().into()
            }
        );
        // A forged key id does not help either.
        let forged = a.replacen(s1.key_id(), s2.key_id(), 1);
        assert_eq!(
            s2.open(&forged, "c").unwrap_err(),
            OpenError::Tampered(s2.key_id().into())
        );
    }

    #[test]
    fn tampering_is_detected() {
        let s = sealer(1);
        let a = s.seal("secret value", "c");
        let (head, b64) = a.rsplit_once('.').unwrap();
        let mut blob = URL_SAFE_NO_PAD.decode(b64).unwrap();
        for i in [0, 30, 80, blob.len() - 1] {
            blob[i] ^= 1;
            let t = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&blob));
            assert!(
                matches!(s.open(&t, "c"), Err(OpenError::Tampered(_))),
                "byte {i}"
            );
            blob[i] ^= 1;
        }
    }

    #[test]
    fn malformed_stored_forms() {
        let s = sealer(1);
        let id = s.key_id().to_owned();
        for bad in [
            "plaintext".to_owned(),
            "nbs1.".to_owned(),
            "nbs1.zz".to_owned(),
            "nbs1.xyz.AAAA".to_owned(),
            format!("nbs1.{id}.not base64!"),
            format!("nbs1.{id}.AAAA"),
        ] {
            assert!(
                matches!(s.open(&bad, "c"), Err(OpenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rewrap_keeps_the_value_for_the_new_key_only() {
        let (old, new) = (sealer(1), sealer(2));
        let a = old.seal("v", "c");
        let b = old.rewrap(&a, "c", &new).unwrap();
        assert_eq!(&*new.open(&b, "c").unwrap(), "v");
        assert!(old.open(&b, "c").is_err());
        assert!(old.rewrap(&a, "other", &new).is_err());
        // The value's own ciphertext is unchanged; only the wrapped key differs.
        let tail = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.rsplit_once('.').unwrap().1)
                .unwrap()[NONCE_LEN + WRAPPED_KEY_LEN..]
                .to_vec()
        };
        assert_eq!(tail(&a), tail(&b));
    }

    #[test]
    fn key_text_parsing() {
        let hex64 = "ab".repeat(32);
        let k = MasterKey::from_hex(&format!("  {hex64}\n")).unwrap();
        assert_eq!(&*k.to_hex(), &hex64);
        assert_eq!(k.id().len(), 8);
        assert_eq!(
            MasterKey::from_hex(&hex64.to_uppercase()).unwrap().id(),
            k.id()
        );
        assert_eq!(MasterKey::from_hex("abc").unwrap_err(), KeyError::Length(3));
        assert_eq!(MasterKey::from_hex("").unwrap_err(), KeyError::Length(0));
        assert_eq!(
            MasterKey::from_hex(&"zz".repeat(32)).unwrap_err(),
            KeyError::NotHex
        );
        assert!(
            !format!("{k:?}").contains(&hex64),
            "Debug never shows the key"
        );
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let (k, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(again.id(), k.id());
        assert!(k.write_new(&p).is_err(), "never overwrites");

        std::fs::write(&p, "not a key\n").unwrap();
        let e = MasterKey::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("malformed") && e.contains("64 hexadecimal"),
            "{e}"
        );
        assert!(!e.contains("not a key"), "never quotes the file: {e}");
        let e = MasterKey::load(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn key_paths_and_defaults() {
        assert_eq!(
            sqlite_key_path("sqlite://./neo.db"),
            Some(PathBuf::from("./neo.db.master-key"))
        );
        assert_eq!(
            sqlite_key_path("sqlite:///var/lib/neo.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/neo.db.master-key"))
        );
        assert_eq!(sqlite_key_path("sqlite::memory:"), None);
        assert_eq!(sqlite_key_path("postgres://x/y"), None);
        assert!(master_key_for("sqlite::memory:", None).is_ok());
        let e = master_key_for("postgres://h/db", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PostgreSQL needs --master-key-file"), "{e}");
    }
}
