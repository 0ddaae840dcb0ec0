//! Signing and verification keys: loading them from the files in-toto's
//! tools use, generating new ones, signing, and naming keys by keyid.
//!
//! Three kinds of key, signed and named exactly as in-toto 3.1.0
//! (securesystemslib 1.6's `CryptoSigner` and `SSlibKey`) does:
//! - ed25519, scheme `ed25519`: `keyval.public` is the raw key in hex;
//! - RSA, scheme `rsassa-pss-sha256`: PSS with SHA-256, MGF1-SHA256 and a
//!   32-byte salt when signing (any salt length when verifying);
//! - ECDSA P-256, scheme `ecdsa-sha2-nistp256`: SHA-256, DER signatures.
//!
//! For RSA and ECDSA `keyval.public` is the SPKI PEM. The keyid is the
//! sha256 of the canonical key dictionary, in in-toto Python's convention or
//! the legacy one with `keyid_hash_algorithms` (`KeyIdFormat`).
//!
//! Private key files: PKCS#8 PEM (v1 as `openssl genpkey` writes it, v2 with
//! the public key, and encrypted PKCS#8), the traditional OpenSSL
//! `RSA PRIVATE KEY` and `EC PRIVATE KEY` PEM that in-toto also reads (not
//! their legacy encrypted form), and the legacy securesystemslib JSON ed25519
//! key. Public key files: SPKI PEM (and PKCS#1 `RSA PUBLIC KEY`); layouts'
//! key dictionaries. GPG keys are refused with a clear error. Secrets never
//! appear in `Debug` output or errors and are zeroized when dropped.
//!
//! This module knows keys and bytes; it knows nothing of links, files on the
//! command line or terminals (prompting for a password is the caller's job).

use crate::link::canonical;
use ed25519_dalek::{SigningKey, VerifyingKey};
use pkcs8::der::Decode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

/// PKCS#8 v1 DER of an ed25519 key is this prefix followed by the 32-byte seed.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SPKI DER of an ed25519 public key is this prefix followed by the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// What went wrong with a key file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a key file tracelink understands: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "{path}: {kind} keys are not supported; tracelink takes ed25519, RSA (rsassa-pss-sha256) and ECDSA P-256 (ecdsa-sha2-nistp256) keys"
    )]
    Unsupported { path: PathBuf, kind: String },
    #[error(
        "{path}: the private key is encrypted in the traditional OpenSSL way (Proc-Type: 4,ENCRYPTED), which tracelink does not read; convert it to encrypted PKCS#8: `openssl pkcs8 -topk8 -in KEY -out NEW`"
    )]
    EncryptedTraditional { path: PathBuf },
    #[error("{path}: the private key is encrypted; give its password with -P/--password")]
    NeedsPassword { path: PathBuf },
    #[error("{path}: cannot decrypt the private key (wrong password?)")]
    Decrypt { path: PathBuf },
    #[error("{path}: this is a public key; a private key is needed to sign")]
    PublicNotPrivate { path: PathBuf },
    #[error("{path}: this is a private key; give the public key (.pub) to verify")]
    PrivateNotPublic { path: PathBuf },
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
    #[error("cannot read the password for {path} from the terminal")]
    Prompt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which keyid convention names a key (docs/recording.md#formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIdFormat {
    /// in-toto Python 3.x: sha256 of the canonical key without `keyid_hash_algorithms`.
    Python,
    /// in-toto-golang, in-toto-rs and old securesystemslib JSON keys.
    Legacy,
}

/// The kinds of public key tracelink can verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// keytype `ed25519`, scheme `ed25519`.
    Ed25519,
    /// keytype `rsa`, scheme `rsassa-pss-sha256` (PSS, MGF1-SHA256, any salt length).
    Rsa,
    /// keytype `ecdsa`, scheme `ecdsa-sha2-nistp256` (P-256, SHA-256, DER signature).
    Ecdsa,
}

impl KeyType {
    /// The securesystemslib `keytype` string.
    pub fn keytype(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
            KeyType::Ecdsa => "ecdsa",
        }
    }

    /// The securesystemslib `scheme` string (the only scheme tracelink supports for the type).
    pub fn scheme(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsassa-pss-sha256",
            KeyType::Ecdsa => "ecdsa-sha2-nistp256",
        }
    }
}

/// A public key: ed25519, RSA (RSASSA-PSS-SHA256) or ECDSA P-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: PublicKeyInner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKeyInner {
    Ed25519(VerifyingKey),
    Rsa(rsa::PublicKey),
    Ecdsa(p256::PublicKey),
}

impl PublicKey {
    pub fn key_type(&self) -> KeyType {
        match self.key {
            PublicKeyInner::Ed25519(_) => KeyType::Ed25519,
            PublicKeyInner::Rsa(_) => KeyType::Rsa,
            PublicKeyInner::Ecdsa(_) => KeyType::Ecdsa,
        }
    }

    /// For ed25519 the raw key as lowercase hex, as in-toto key dictionaries
    /// carry it; for RSA and ECDSA the hex of the SPKI DER.
    pub fn hex(&self) -> String {
        match &self.key {
            PublicKeyInner::Ed25519(key) => hex::encode(key.as_bytes()),
            _ => hex::encode(self.spki_der()),
        }
    }

    /// `keyval.public` as securesystemslib writes it: hex for ed25519, SPKI
    /// PEM (64-column lines, LF, final newline) for RSA and ECDSA.
    pub fn keyval_public(&self) -> String {
        match &self.key {
            PublicKeyInner::Ed25519(key) => hex::encode(key.as_bytes()),
            _ => self.to_spki_pem(),
        }
    }

    /// The securesystemslib key dictionary whose canonical form is hashed into the keyid.
    pub fn key_dict(&self, format: KeyIdFormat) -> Value {
        let kind = self.key_type();
        let mut dict = json!({
            "keytype": kind.keytype(),
            "scheme": kind.scheme(),
            "keyval": {"public": self.keyval_public()},
        });
        if format == KeyIdFormat::Legacy {
            dict["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
        }
        dict
    }

    /// The keyid in the given convention.
    pub fn keyid(&self, format: KeyIdFormat) -> String {
        keyid_of(&self.key_dict(format))
    }

    fn spki_der(&self) -> Vec<u8> {
        use spki::EncodePublicKey as _;
        match &self.key {
            PublicKeyInner::Ed25519(key) => {
                let mut der = SPKI_PREFIX.to_vec();
                der.extend_from_slice(key.as_bytes());
                der
            }
            PublicKeyInner::Rsa(key) => key
                .to_public_key_der()
                .expect("a parsed RSA key always encodes")
                .into_vec(),
            PublicKeyInner::Ecdsa(key) => key
                .to_public_key_der()
                .expect("a parsed P-256 key always encodes")
                .into_vec(),
        }
    }

    /// SPKI PEM, as `openssl pkey -pubout` and pyca/cryptography write it
    /// (RSA as rsaEncryption, EC points uncompressed).
    pub fn to_spki_pem(&self) -> String {
        pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &self.spki_der())
            .expect("DER of a public key always encodes")
    }

    /// Checks a signature over `message` under the key's scheme: ed25519
    /// (strict: no malleable or small-order forms); RSASSA-PSS with SHA-256,
    /// MGF1-SHA256 and any salt length (securesystemslib's `PSS.AUTO`);
    /// ECDSA P-256 with SHA-256 and a DER signature (high S accepted, as
    /// OpenSSL does).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier as _;
        match &self.key {
            PublicKeyInner::Ed25519(key) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify_strict(message, &sig).is_ok()
            }
            PublicKeyInner::Rsa(key) => {
                let Ok(sig) = rsa::pss::Signature::try_from(signature) else {
                    return false;
                };
                rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len(key.clone())
                    .verify(message, &sig)
                    .is_ok()
            }
            PublicKeyInner::Ecdsa(key) => {
                let Ok(sig) = p256::ecdsa::Signature::from_der(signature) else {
                    return false;
                };
                p256::ecdsa::VerifyingKey::from(key)
                    .verify(message, &sig)
                    .is_ok()
            }
        }
    }

    /// Loads a public key file: SPKI PEM (`PUBLIC KEY`) of an ed25519, RSA
    /// or P-256 key, or a PKCS#1 `RSA PUBLIC KEY` (pyca/cryptography's
    /// `load_pem_public_key` takes both).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read(path)?;
        Self::from_pem(path, &bytes)
    }

    /// Parses PEM text; `path` only names the source in errors.
    fn from_pem(path: &Path, bytes: &[u8]) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(path, bytes)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(path, &der),
            "RSA PUBLIC KEY" => {
                use rsa::pkcs1::DecodeRsaPublicKey as _;
                let key = rsa::PublicKey::from_pkcs1_der(&der).map_err(|e| malformed(path, e))?;
                Ok(PublicKey {
                    key: PublicKeyInner::Rsa(key),
                })
            }
            "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                Err(KeyError::PrivateNotPublic { path: path.into() })
            }
            other => Err(malformed(path, format!("unexpected PEM block {other:?}"))),
        }
    }

    fn from_spki_der(path: &Path, der: &[u8]) -> Result<Self, KeyError> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| malformed(path, e))?;
        let key = match spki.algorithm.oid.to_string().as_str() {
            OID_ED25519 => {
                let raw: [u8; 32] = spki
                    .subject_public_key
                    .as_bytes()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| malformed(path, "ed25519 public key is not 32 bytes"))?;
                PublicKeyInner::Ed25519(
                    VerifyingKey::from_bytes(&raw).map_err(|e| malformed(path, e))?,
                )
            }
            // pyca/cryptography reads an RSA-PSS (OID ...1.10, no parameters)
            // key as a plain RSA key and writes it back as rsaEncryption.
            OID_RSA | OID_RSA_PSS => {
                PublicKeyInner::Rsa(rsa::PublicKey::try_from(spki).map_err(|e| malformed(path, e))?)
            }
            OID_EC => PublicKeyInner::Ecdsa(
                p256::PublicKey::try_from(spki)
                    .map_err(|e| malformed(path, format!("not a P-256 (secp256r1) key: {e}")))?,
            ),
            other => return Err(malformed(path, format!("unknown key algorithm {other}"))),
        };
        Ok(PublicKey { key })
    }

    /// A public key from an in-toto layout's key dictionary (`keytype`,
    /// `scheme`, `keyval.public`): ed25519 keys are hex, RSA and ECDSA keys
    /// SPKI PEM. The keytype/scheme pairs accepted are those
    /// securesystemslib 1.6 verifies with for these key kinds:
    /// `ed25519`/`ed25519`, `rsa`/`rsassa-pss-sha256`,
    /// `ecdsa`/`ecdsa-sha2-nistp256` and the deprecated
    /// `ecdsa-sha2-nistp256`/`ecdsa-sha2-nistp256`. The key inside must be
    /// of the kind the dictionary names. Extra fields
    /// (`keyid_hash_algorithms`, ...) are ignored.
    pub fn from_key_dict(dict: &Value) -> Result<Self, KeyError> {
        let path = Path::new("<key dictionary>");
        let field = |name: &str| -> Result<&str, KeyError> {
            dict.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(path, format!("{name} is missing or not a string")))
        };
        let keytype = field("keytype")?;
        let scheme = field("scheme")?;
        let public = dict
            .get("keyval")
            .and_then(|keyval| keyval.get("public"))
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(path, "keyval.public is missing or not a string"))?;
        let expected = match (keytype, scheme) {
            ("ed25519", "ed25519") => KeyType::Ed25519,
            ("rsa", "rsassa-pss-sha256") => KeyType::Rsa,
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => KeyType::Ecdsa,
            _ => {
                return Err(KeyError::Unsupported {
                    path: path.into(),
                    kind: format!("keytype {keytype:?} with scheme {scheme:?}"),
                });
            }
        };
        let key = if expected == KeyType::Ed25519 {
            let raw =
                hex::decode(public).map_err(|e| malformed(path, format!("keyval.public: {e}")))?;
            let raw: [u8; 32] = raw
                .try_into()
                .map_err(|_| malformed(path, "keyval.public is not 32 bytes"))?;
            PublicKey {
                key: PublicKeyInner::Ed25519(
                    VerifyingKey::from_bytes(&raw).map_err(|e| malformed(path, e))?,
                ),
            }
        } else {
            Self::from_pem(path, public.as_bytes())?
        };
        if key.key_type() != expected {
            return Err(malformed(
                path,
                format!(
                    "keytype {keytype:?} but keyval.public holds an {} key",
                    key.key_type().keytype()
                ),
            ));
        }
        Ok(key)
    }
}

/// sha256 hex of the canonical JSON of a key dictionary.
fn keyid_of(dict: &Value) -> String {
    let bytes = canonical::encode(dict).expect("key dictionaries hold no floats");
    hex::encode(Sha256::digest(bytes))
}

/// Where a private key came from; it decides the default keyid convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file: PKCS#8 (plain or encrypted) or a traditional OpenSSL
    /// `RSA PRIVATE KEY` / `EC PRIVATE KEY`.
    Pkcs8,
    LegacyJson,
}

/// A private key that signs as in-toto 3.1.0 (securesystemslib's
/// `CryptoSigner`) does: ed25519, RSA with `rsassa-pss-sha256` or ECDSA
/// P-256 with `ecdsa-sha2-nistp256`. Its secret never appears in `Debug`
/// output or in errors, and is zeroized when the key is dropped.
pub struct PrivateKey {
    key: PrivateKeyInner,
    /// The public half, computed once (RSA and ECDSA derive it at a cost).
    public: PublicKey,
    source: KeySource,
    /// For legacy JSON keys: the key dictionary as the file gave it (its
    /// `keyid_hash_algorithms` decide the legacy keyid).
    legacy_dict: Option<Value>,
}

enum PrivateKeyInner {
    Ed25519(SigningKey),
    // Boxed: an RSA key with its precomputed CRT values is large.
    Rsa(Box<rsa::pss::SigningKey<Sha256>>),
    Ecdsa(p256::ecdsa::SigningKey),
}

/// The operating system's random number generator, for the RSA-PSS salt and
/// blinding (the `rsa` crate is built without its own `getrandom` support).
struct OsRng;

impl rsa::rand_core::TryRng for OsRng {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("type", &self.key_type())
            .field("public", &self.public().hex())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh ed25519 key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The ed25519 key with this 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::new(
            PrivateKeyInner::Ed25519(SigningKey::from_bytes(seed)),
            KeySource::Pkcs8,
        )
    }

    fn new(key: PrivateKeyInner, source: KeySource) -> Self {
        let public = PublicKey {
            key: match &key {
                PrivateKeyInner::Ed25519(key) => PublicKeyInner::Ed25519(key.verifying_key()),
                PrivateKeyInner::Rsa(key) => {
                    PublicKeyInner::Rsa(key.as_ref().as_ref().as_ref().clone())
                }
                PrivateKeyInner::Ecdsa(key) => {
                    PublicKeyInner::Ecdsa(p256::PublicKey::from(key.verifying_key()))
                }
            },
        };
        PrivateKey {
            key,
            public,
            source,
            legacy_dict: None,
        }
    }

    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    /// The keyid convention used unless the user picks one: legacy for
    /// legacy JSON keys (old layouts list them that way), Python otherwise.
    pub fn default_keyid_format(&self) -> KeyIdFormat {
        match self.source {
            KeySource::Pkcs8 => KeyIdFormat::Python,
            KeySource::LegacyJson => KeyIdFormat::Legacy,
        }
    }

    /// The keyid in the given convention.
    pub fn keyid(&self, format: KeyIdFormat) -> String {
        match (&self.legacy_dict, format) {
            (Some(dict), KeyIdFormat::Legacy) => keyid_of(dict),
            _ => self.public.keyid(format),
        }
    }

    /// The signature of `message` under the key's scheme, as securesystemslib
    /// 1.6's `CryptoSigner` makes it:
    /// - ed25519: the 64-byte signature (deterministic);
    /// - RSA `rsassa-pss-sha256`: RSASSA-PSS with SHA-256, MGF1-SHA256 and a
    ///   32-byte salt (`PSS.DIGEST_LENGTH`), as long as the modulus; random;
    /// - ECDSA `ecdsa-sha2-nistp256`: SHA-256, DER-encoded `(r, s)`; the
    ///   nonce is derived as in RFC 6979 (any valid signature verifies).
    pub fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
        Ok(match &self.key {
            PrivateKeyInner::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            PrivateKeyInner::Rsa(key) => key
                .try_sign_with_rng(&mut OsRng, message)
                .map_err(|e| KeyError::Random(format!("RSA-PSS signing failed: {e}")))?
                .to_vec(),
            PrivateKeyInner::Ecdsa(key) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        })
    }

    /// Like `try_sign`; if signing fails (only RSA can: no random numbers),
    /// the signature is empty, which never verifies: callers check every
    /// signature they make before writing it (`link::sign` does).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.try_sign(message).unwrap_or_default()
    }

    /// PKCS#8 v1 PEM (LF line ends); for ed25519 exactly as
    /// `openssl genpkey -algorithm ed25519` writes it.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        use pkcs8::EncodePrivateKey as _;
        match &self.key {
            PrivateKeyInner::Ed25519(key) => {
                let mut der = Zeroizing::new(PKCS8_V1_PREFIX.to_vec());
                der.extend_from_slice(key.as_bytes());
                Zeroizing::new(
                    pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
                        .expect("fixed-size DER always encodes"),
                )
            }
            PrivateKeyInner::Rsa(key) => {
                let key: &rsa::PrivateKey = key.as_ref().as_ref();
                key.to_pkcs8_pem(pkcs8::LineEnding::LF)
                    .expect("a parsed RSA key always encodes")
            }
            PrivateKeyInner::Ecdsa(key) => p256::SecretKey::from(key)
                .to_pkcs8_pem(pkcs8::LineEnding::LF)
                .expect("a parsed P-256 key always encodes"),
        }
    }

    /// Loads a private key file, as in-toto 3.1.0's command-line tools
    /// (pyca/cryptography's `load_pem_private_key`) and tracelink accept them:
    /// - PKCS#8 PEM (`PRIVATE KEY`, v1 or v2) of an ed25519, RSA (also with
    ///   the RSA-PSS OID) or P-256 key;
    /// - encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`), decrypted with `password`;
    /// - traditional OpenSSL PEM: PKCS#1 `RSA PRIVATE KEY` and SEC1
    ///   `EC PRIVATE KEY` (with or without a leading `EC PARAMETERS` block,
    ///   as `openssl ecparam -genkey` writes it); encrypted traditional PEM
    ///   (`Proc-Type: 4,ENCRYPTED`) is refused with a conversion hint;
    /// - a legacy securesystemslib JSON ed25519 key.
    pub fn load(path: &Path, password: Option<&str>) -> Result<Self, KeyError> {
        Self::load_file(path, password).map(|(key, _)| key)
    }

    /// `load`, also telling which file was read: its canonical path and
    /// identity, taken from the very descriptor the key was read through
    /// (a recorder keeps the recorded command away from that file).
    pub fn load_file(path: &Path, password: Option<&str>) -> Result<(Self, KeyFile), KeyError> {
        Self::load_file_with(
            path,
            |_| Ok(password.map(|p| Zeroizing::new(p.to_string()))),
        )
    }

    /// `load_file`, reading the file once and asking `password` for the
    /// password knowing whether the key is encrypted (`KeyFile.encrypted`):
    /// a prompt only for a key that needs one, also when the key comes
    /// through a pipe that cannot be read twice.
    pub fn load_file_with(
        path: &Path,
        password: impl FnOnce(&KeyFile) -> Result<Option<Zeroizing<String>>, KeyError>,
    ) -> Result<(Self, KeyFile), KeyError> {
        let (bytes, file) = read_identified(path)?;
        let bytes = Zeroizing::new(bytes);
        // The decoded DER of a plain key is secret too: zeroized on drop.
        let encrypted = decode_pem(path, &bytes)
            .map(|(label, der)| (label, Zeroizing::new(der)))
            .is_ok_and(|(label, _)| label == "ENCRYPTED PRIVATE KEY");
        let file = KeyFile { encrypted, ..file };
        let password = password(&file)?;
        let key = Self::from_file_bytes(path, &bytes, password.as_deref().map(String::as_str))?;
        Ok((key, file))
    }

    fn from_file_bytes(
        path: &Path,
        bytes: &[u8],
        password: Option<&str>,
    ) -> Result<Self, KeyError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return Self::from_legacy_json(path, bytes);
        }
        let (label, der) = decode_pem(path, bytes)?;
        let der = Zeroizing::new(der);
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(path, &der),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(KeyError::NeedsPassword { path: path.into() });
                };
                let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der)
                    .map_err(|e| malformed(path, e))?;
                let plain = info
                    .decrypt(password.as_bytes())
                    .map_err(|_| KeyError::Decrypt { path: path.into() })?;
                Self::from_pkcs8_der(path, plain.as_bytes())
            }
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey as _;
                let key = rsa::PrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| malformed(path, format!("RSA private key: {e}")))?;
                Ok(Self::rsa(key))
            }
            "EC PRIVATE KEY" => {
                let key =
                    p256::SecretKey::from_sec1_der(&der).map_err(|e| ec_error(path, &der, e))?;
                Ok(Self::ecdsa(&key))
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                Err(KeyError::PublicNotPrivate { path: path.into() })
            }
            other => Err(malformed(path, format!("unexpected PEM block {other:?}"))),
        }
    }

    fn rsa(key: rsa::PrivateKey) -> Self {
        // securesystemslib signs with a salt as long as the digest (32 bytes).
        Self::new(
            PrivateKeyInner::Rsa(Box::new(rsa::pss::SigningKey::<Sha256>::new(key))),
            KeySource::Pkcs8,
        )
    }

    fn ecdsa(key: &p256::SecretKey) -> Self {
        Self::new(
            PrivateKeyInner::Ecdsa(p256::ecdsa::SigningKey::from(key)),
            KeySource::Pkcs8,
        )
    }

    fn from_pkcs8_der(path: &Path, der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| malformed(path, e))?;
        match info.algorithm.oid.to_string().as_str() {
            OID_ED25519 => {
                let key = SigningKey::try_from(info).map_err(|e| malformed(path, e))?;
                Ok(Self::new(PrivateKeyInner::Ed25519(key), KeySource::Pkcs8))
            }
            OID_RSA | OID_RSA_PSS => {
                let key = rsa::PrivateKey::try_from(info)
                    .map_err(|e| malformed(path, format!("RSA private key: {e}")))?;
                Ok(Self::rsa(key))
            }
            OID_EC => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map(|oid| oid.to_string())
                    .unwrap_or_default();
                if curve != OID_P256 {
                    return Err(KeyError::Unsupported {
                        path: path.into(),
                        kind: format!("ECDSA {}", curve_name(&curve)),
                    });
                }
                let key = p256::SecretKey::try_from(info).map_err(|e| ec_error(path, der, e))?;
                Ok(Self::ecdsa(&key))
            }
            other => Err(malformed(path, format!("unknown key algorithm {other}"))),
        }
    }

    fn from_legacy_json(path: &Path, bytes: &[u8]) -> Result<Self, KeyError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(path, e))?;
        let keytype = value["keytype"].as_str().unwrap_or_default();
        if keytype != "ed25519" {
            return Err(KeyError::Unsupported {
                path: path.into(),
                kind: format!("legacy JSON {keytype:?}"),
            });
        }
        let field = |name: &str| -> Result<[u8; 32], KeyError> {
            let text = value["keyval"][name]
                .as_str()
                .ok_or_else(|| malformed(path, format!("keyval.{name} is missing")))?;
            let raw =
                hex::decode(text).map_err(|e| malformed(path, format!("keyval.{name}: {e}")))?;
            raw.try_into()
                .map_err(|_| malformed(path, format!("keyval.{name} is not 32 bytes")))
        };
        let seed = Zeroizing::new(field("private")?);
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().to_bytes() != field("public")? {
            return Err(malformed(
                path,
                "keyval.public does not belong to keyval.private",
            ));
        }
        let mut dict = json!({
            "keytype": "ed25519",
            "scheme": value.get("scheme").cloned().unwrap_or(json!("ed25519")),
            "keyval": {"public": hex::encode(key.verifying_key().as_bytes())},
            "keyid_hash_algorithms": ["sha256", "sha512"],
        });
        if let Some(algs) = value.get("keyid_hash_algorithms") {
            dict["keyid_hash_algorithms"] = algs.clone();
        }
        let mut key = Self::new(PrivateKeyInner::Ed25519(key), KeySource::LegacyJson);
        key.legacy_dict = Some(dict);
        Ok(key)
    }
}

/// The mode of a key file if others than its owner may read or write it.
pub fn insecure_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// The file a private key was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// Its canonical path (symlinks resolved).
    pub path: PathBuf,
    /// Its (device, inode), from the descriptor it was read through.
    pub node: (u64, u64),
    /// How many names (hard links) it has.
    pub nlink: u64,
    /// Its permission bits.
    pub mode: u32,
    /// A regular file (not a pipe or a device).
    pub regular: bool,
    /// The key in it is encrypted (PKCS#8 `ENCRYPTED PRIVATE KEY`): a
    /// password is used. Otherwise a given password is not (the caller warns).
    pub encrypted: bool,
}

/// Reads `path` and says which file that was: identity from fstat of the
/// descriptor read, so that it is the file whose bytes we hold.
fn read_identified(path: &Path) -> Result<(Vec<u8>, KeyFile), KeyError> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let fail = |source| KeyError::Read {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(fail)?;
    // A key given as a pipe (`-k <(...)`) has no path to canonicalize.
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((
        bytes,
        KeyFile {
            path: canonical,
            node: (meta.dev(), meta.ino()),
            nlink: meta.nlink(),
            mode: meta.mode() & 0o7777,
            regular: meta.is_file(),
            encrypted: false,
        },
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.into(),
        source,
    })
}

fn malformed(path: &Path, reason: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        path: path.into(),
        reason: reason.to_string(),
    }
}

/// The PEM label and DER body of the first PEM block in `bytes`.
fn decode_pem(path: &Path, bytes: &[u8]) -> Result<(String, Vec<u8>), KeyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed(path, "neither PEM nor JSON"))?;
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    let start = text
        .match_indices("-----BEGIN ")
        .map(|(i, _)| i)
        .find(|&i| !text[i..].starts_with("-----BEGIN EC PARAMETERS-----"))
        .ok_or_else(|| malformed(path, "no PEM block (-----BEGIN ...-----) found"))?;
    let block = &text[start..];
    let label_end = block[11..]
        .find("-----")
        .ok_or_else(|| malformed(path, "unterminated PEM header"))?;
    let label = &block[11..11 + label_end];
    let end_marker = format!("-----END {label}-----");
    let end = block
        .find(&end_marker)
        .ok_or_else(|| malformed(path, format!("no {end_marker} line")))?;
    let block = &block[..end + end_marker.len()];
    if block.contains("Proc-Type:") {
        return Err(KeyError::EncryptedTraditional { path: path.into() });
    }
    if label.contains("PGP") {
        return Err(KeyError::Unsupported {
            path: path.into(),
            kind: "GPG".into(),
        });
    }
    let (label, der) = pem_rfc7468::decode_vec(block.as_bytes())
        .map_err(|e| malformed(path, format!("bad PEM: {e}")))?;
    Ok((label.to_string(), der))
}

/// The name of an elliptic curve OID, for error messages.
fn curve_name(oid: &str) -> String {
    match oid {
        OID_P256 => "P-256".into(),
        "1.3.132.0.34" => "P-384 (secp384r1)".into(),
        "1.3.132.0.35" => "P-521 (secp521r1)".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        "" => "with no named curve".into(),
        other => format!("curve {other}"),
    }
}

/// A P-256 private key that did not parse: name the curve if it is another.
fn ec_error(path: &Path, der: &[u8], err: impl std::fmt::Display) -> KeyError {
    // DER of the named-curve OIDs other than P-256 securesystemslib knows.
    const OTHER_CURVES: [(&[u8], &str); 3] = [
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], "1.3.132.0.34"),
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], "1.3.132.0.35"),
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a], "1.3.132.0.10"),
    ];
    for (pattern, oid) in OTHER_CURVES {
        if der.windows(pattern.len()).any(|w| w == pattern) {
            return KeyError::Unsupported {
                path: path.into(),
                kind: format!("ECDSA {}", curve_name(oid)),
            };
        }
    }
    malformed(path, format!("not a P-256 (secp256r1) private key: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name)
    }

    #[test]
    fn load_file_names_the_file_read_by_canonical_path_and_identity() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.pem");
        std::fs::copy(vector("rfc8032.pem"), &real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let alias = dir.path().join("alias.pem");
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        let (key, file) = PrivateKey::load_file(&alias, None).unwrap();
        assert_eq!(
            key.keyid(KeyIdFormat::Python),
            PrivateKey::load(&vector("rfc8032.pem"), None)
                .unwrap()
                .keyid(KeyIdFormat::Python)
        );
        let meta = std::fs::metadata(&real).unwrap();
        assert_eq!(file.path, std::fs::canonicalize(&real).unwrap());
        assert_eq!(file.node, (meta.dev(), meta.ino()));
        assert_eq!((file.nlink, file.mode, file.regular), (1, 0o600, true));
        std::fs::hard_link(&real, dir.path().join("second.pem")).unwrap();
        assert_eq!(PrivateKey::load_file(&real, None).unwrap().1.nlink, 2);
    }

    const PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const PYTHON_KEYID: &str = "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916";
    const LEGACY_KEYID: &str = "01e8764eedab63b3593451765fc337b2cc6d2c66923845da255f448c19e2afc5";

    #[test]
    fn rfc8032_pem_gives_both_known_keyids() {
        let key = PrivateKey::load(&vector("rfc8032.pem"), None).unwrap();
        assert_eq!(key.public().hex(), PUBLIC_HEX);
        assert_eq!(key.keyid(KeyIdFormat::Python), PYTHON_KEYID);
        assert_eq!(key.keyid(KeyIdFormat::Legacy), LEGACY_KEYID);
        assert_eq!(key.default_keyid_format(), KeyIdFormat::Python);
    }

    #[test]
    fn rfc8032_empty_message_signature() {
        let key = PrivateKey::load(&vector("rfc8032.pem"), None).unwrap();
        assert_eq!(
            hex::encode(key.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn public_pem_loads_and_round_trips() {
        let public = PublicKey::load(&vector("rfc8032.pub")).unwrap();
        assert_eq!(public.hex(), PUBLIC_HEX);
        assert_eq!(public.keyid(KeyIdFormat::Python), PYTHON_KEYID);
        let file = std::fs::read_to_string(vector("rfc8032.pub")).unwrap();
        assert_eq!(public.to_spki_pem(), file);
    }

    #[test]
    fn pkcs8_v1_writer_matches_openssl_file() {
        let key = PrivateKey::load(&vector("rfc8032.pem"), None).unwrap();
        let file = std::fs::read_to_string(vector("rfc8032.pem")).unwrap();
        assert_eq!(*key.to_pkcs8_pem(), file);
    }

    #[test]
    fn legacy_json_key_defaults_to_legacy_keyid() {
        let key = PrivateKey::load(&vector("legacy-sslib-key.json"), None).unwrap();
        assert_eq!(key.public().hex(), PUBLIC_HEX);
        assert_eq!(key.default_keyid_format(), KeyIdFormat::Legacy);
        assert_eq!(key.keyid(KeyIdFormat::Legacy), LEGACY_KEYID);
        assert_eq!(key.keyid(KeyIdFormat::Python), PYTHON_KEYID);
    }

    #[test]
    fn public_key_is_refused_for_signing() {
        let err = PrivateKey::load(&vector("rfc8032.pub"), None).unwrap_err();
        assert!(matches!(err, KeyError::PublicNotPrivate { .. }), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_seed() {
        let key = PrivateKey::load(&vector("rfc8032.pem"), None).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("9d61b19d"), "{shown}");
    }

    #[test]
    fn ed25519_key_dict_round_trips() {
        let public = PublicKey::load(&vector("rfc8032.pub")).unwrap();
        for format in [KeyIdFormat::Python, KeyIdFormat::Legacy] {
            let dict = public.key_dict(format);
            let back = PublicKey::from_key_dict(&dict).unwrap();
            assert_eq!(back, public);
            assert_eq!(back.keyid(format), public.keyid(format));
        }
        assert_eq!(public.key_type(), KeyType::Ed25519);
    }

    fn dict_error(dict: Value) -> String {
        PublicKey::from_key_dict(&dict).unwrap_err().to_string()
    }

    #[test]
    fn key_dict_errors() {
        let ec_pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGr6GY2GjKGwygX2ECeuVh6aDHHlH\nlROkwbrDOq1cRZ/9fqcOnjGtsBW2AZIE01/YGNyWZfBV5aqODBltKjvvHg==\n-----END PUBLIC KEY-----\n";
        let ok = json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": ec_pem}});
        assert_eq!(
            PublicKey::from_key_dict(&ok).unwrap().key_type(),
            KeyType::Ecdsa
        );
        // The deprecated keytype securesystemslib still verifies with.
        let mut old = ok.clone();
        old["keytype"] = json!("ecdsa-sha2-nistp256");
        assert_eq!(
            PublicKey::from_key_dict(&old).unwrap().key_type(),
            KeyType::Ecdsa
        );

        let e = dict_error(json!({"scheme": "ed25519", "keyval": {"public": PUBLIC_HEX}}));
        assert!(e.contains("keytype is missing"), "{e}");
        let e = dict_error(
            json!({"keytype": "ed25519", "scheme": 7, "keyval": {"public": PUBLIC_HEX}}),
        );
        assert!(e.contains("scheme is missing or not a string"), "{e}");
        let e = dict_error(json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {}}));
        assert!(e.contains("keyval.public is missing"), "{e}");
        let e = dict_error(
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}}),
        );
        assert!(e.contains("keyval.public"), "{e}");
        let e = dict_error(
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "abcd"}}),
        );
        assert!(e.contains("not 32 bytes"), "{e}");
        // keytype/scheme pairs that do not belong together or are not supported.
        for (keytype, scheme) in [
            ("ed25519", "rsassa-pss-sha256"),
            ("rsa", "ecdsa-sha2-nistp256"),
            ("ecdsa", "ecdsa-sha2-nistp384"),
            ("rsa", "rsa-pkcs1v15-sha256"),
            ("ecdsa", "ed25519"),
        ] {
            let mut dict = ok.clone();
            dict["keytype"] = json!(keytype);
            dict["scheme"] = json!(scheme);
            let e = dict_error(dict);
            assert!(e.contains("not supported"), "{keytype}/{scheme}: {e}");
        }
        // An EC key in a dictionary that says RSA.
        let mut dict = ok.clone();
        dict["keytype"] = json!("rsa");
        dict["scheme"] = json!("rsassa-pss-sha256");
        let e = dict_error(dict);
        assert!(e.contains("holds an ecdsa key"), "{e}");
        // An ed25519 PEM where hex is expected, and hex where PEM is expected.
        let pem = std::fs::read_to_string(vector("rfc8032.pub")).unwrap();
        let e = dict_error(
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": pem}}),
        );
        assert!(e.contains("keyval.public"), "{e}");
        let mut dict = ok.clone();
        dict["keyval"]["public"] = json!(PUBLIC_HEX);
        let e = dict_error(dict);
        assert!(e.contains("no PEM block"), "{e}");
        // An ed25519 SPKI PEM in an ecdsa dictionary.
        let mut dict = ok.clone();
        dict["keyval"]["public"] = json!(pem);
        let e = dict_error(dict);
        assert!(e.contains("holds an ed25519 key"), "{e}");
        // A private key PEM.
        let private = std::fs::read_to_string(vector("rfc8032.pem")).unwrap();
        let mut dict = ok.clone();
        dict["keyval"]["public"] = json!(private);
        let e = dict_error(dict);
        assert!(e.contains("private key"), "{e}");
        // Garbage inside a PEM block.
        let mut dict = ok;
        dict["keyval"]["public"] =
            json!("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        let e = dict_error(dict);
        assert!(e.contains("not a key file"), "{e}");
    }

    #[test]
    fn verify_rejects_garbage_signatures_for_every_type() {
        let ed = PublicKey::load(&vector("rfc8032.pub")).unwrap();
        let ec_pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGr6GY2GjKGwygX2ECeuVh6aDHHlH\nlROkwbrDOq1cRZ/9fqcOnjGtsBW2AZIE01/YGNyWZfBV5aqODBltKjvvHg==\n-----END PUBLIC KEY-----\n";
        let ec = PublicKey::from_pem(Path::new("ec"), ec_pem.as_bytes()).unwrap();
        for key in [ed, ec] {
            for sig in [&[][..], &[0u8; 64][..], &[0x30, 0x06, 2, 1, 1, 2, 1, 1][..]] {
                assert!(!key.verify(b"msg", sig), "{:?}", key.key_type());
            }
        }
    }

    fn key_data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/keys")
            .join(name)
    }

    /// What in-toto 3.1.0 makes of the key files in tests/data/keys
    /// (intoto_keyids.py wrote it).
    fn intoto_view(name: &str) -> Value {
        let text = std::fs::read_to_string(key_data("intoto_keyids.json")).unwrap();
        let all: Value = serde_json::from_str(&text).unwrap();
        all[name].clone()
    }

    fn load_data(name: &str) -> PrivateKey {
        let password = name.contains("-enc").then_some("tracelink");
        PrivateKey::load(&key_data(name), password).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn rsa_and_ecdsa_private_keys_get_in_totos_key_dict_and_keyid() {
        for (name, kind) in [
            ("rsa.pem", KeyType::Rsa),
            ("rsa-trad.pem", KeyType::Rsa),
            ("rsa-enc.pem", KeyType::Rsa),
            ("rsa-pss.pem", KeyType::Rsa),
            ("ec.pem", KeyType::Ecdsa),
            ("ec-trad.pem", KeyType::Ecdsa),
            ("ecparam.pem", KeyType::Ecdsa),
        ] {
            let key = load_data(name);
            let want = intoto_view(name);
            assert_eq!(key.key_type(), kind, "{name}");
            assert_eq!(key.default_keyid_format(), KeyIdFormat::Python, "{name}");
            assert_eq!(
                key.keyid(KeyIdFormat::Python),
                want["keyid"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                key.public().key_dict(KeyIdFormat::Python),
                want["dict"],
                "{name}"
            );
            // The legacy keyid hashes the same dictionary with keyid_hash_algorithms.
            let mut legacy = want["dict"].clone();
            legacy["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
            assert_eq!(key.keyid(KeyIdFormat::Legacy), keyid_of(&legacy), "{name}");
        }
    }

    #[test]
    fn rsa_and_ecdsa_signatures_verify_and_have_securesystemslibs_form() {
        let message = b"{\"_type\":\"link\"}";
        for name in ["rsa.pem", "rsa-pss.pem", "ec.pem", "ecparam.pem"] {
            let key = load_data(name);
            let sig = key.try_sign(message).unwrap();
            assert!(key.public().verify(message, &sig), "{name}");
            assert!(!key.public().verify(b"other", &sig), "{name}");
            match key.key_type() {
                KeyType::Rsa => {
                    // As long as the modulus; randomized (fresh salt each time).
                    use rsa::traits::PublicKeyParts as _;
                    let PublicKeyInner::Rsa(public) = &key.public().key else {
                        unreachable!()
                    };
                    assert_eq!(sig.len(), public.size(), "{name}");
                    assert_ne!(key.sign(message), sig, "{name}: PSS salt is random");
                    // The salt is 32 bytes (securesystemslib's PSS.DIGEST_LENGTH):
                    // a verifier fixed to that salt length accepts it.
                    let fixed =
                        rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(public.clone(), 32);
                    let sig = rsa::pss::Signature::try_from(&sig[..]).unwrap();
                    use rsa::signature::Verifier as _;
                    assert!(fixed.verify(message, &sig).is_ok(), "{name}");
                }
                KeyType::Ecdsa => {
                    assert_eq!(sig[0], 0x30, "{name}: DER SEQUENCE");
                    assert!(p256::ecdsa::Signature::from_der(&sig).is_ok(), "{name}");
                }
                KeyType::Ed25519 => unreachable!(),
            }
        }
    }

    #[test]
    fn traditional_and_encrypted_forms_are_the_same_key() {
        let rsa = load_data("rsa.pem");
        for name in ["rsa-trad.pem", "rsa-enc.pem"] {
            assert_eq!(load_data(name).public(), rsa.public(), "{name}");
        }
        assert_eq!(
            load_data("ec-trad.pem").public(),
            load_data("ec.pem").public()
        );
        let public = PublicKey::load(&key_data("rsa.pub")).unwrap();
        assert_eq!(rsa.public(), public);
        let public = PublicKey::load(&key_data("ec.pub")).unwrap();
        assert_eq!(load_data("ec.pem").public(), public);
    }

    #[test]
    fn pkcs8_writer_round_trips_rsa_and_ecdsa() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["rsa.pem", "ec.pem"] {
            let key = load_data(name);
            let path = dir.path().join(name);
            std::fs::write(&path, key.to_pkcs8_pem().as_bytes()).unwrap();
            assert_eq!(
                PrivateKey::load(&path, None).unwrap().public(),
                key.public()
            );
        }
        // openssl writes RSA keys as PKCS#8 v1 exactly like this.
        let file = std::fs::read_to_string(key_data("rsa.pem")).unwrap();
        assert_eq!(*load_data("rsa.pem").to_pkcs8_pem(), file);
    }

    #[test]
    fn encrypted_rsa_key_needs_the_right_password() {
        let path = key_data("rsa-enc.pem");
        let err = PrivateKey::load(&path, None).unwrap_err();
        assert!(matches!(err, KeyError::NeedsPassword { .. }), "{err}");
        let err = PrivateKey::load(&path, Some("wrong")).unwrap_err();
        assert!(matches!(err, KeyError::Decrypt { .. }), "{err}");
    }

    #[test]
    fn unsupported_private_keys_are_refused_clearly() {
        for name in ["p384.pem", "p384-trad.pem"] {
            // in-toto would sign with ecdsa-sha2-nistp384; tracelink does not.
            assert_eq!(intoto_view(name)["dict"]["scheme"], "ecdsa-sha2-nistp384");
            let err = PrivateKey::load(&key_data(name), None).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, KeyError::Unsupported { .. }),
                "{name}: {text}"
            );
            assert!(
                text.contains("P-384") && text.contains(name),
                "{name}: {text}"
            );
        }
        let path = key_data("rsa-trad-enc.pem");
        let err = PrivateKey::load(&path, Some("tracelink")).unwrap_err();
        assert!(
            matches!(err, KeyError::EncryptedTraditional { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
        for name in ["rsa.pub", "ec.pub"] {
            let err = PrivateKey::load(&key_data(name), None).unwrap_err();
            assert!(
                matches!(err, KeyError::PublicNotPrivate { .. }),
                "{name}: {err}"
            );
        }
        for name in ["rsa.pem", "rsa-trad.pem", "ec-trad.pem"] {
            let err = PublicKey::load(&key_data(name)).unwrap_err();
            assert!(
                matches!(err, KeyError::PrivateNotPublic { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn debug_output_and_errors_never_show_rsa_or_ecdsa_secrets() {
        for name in ["rsa.pem", "ec.pem"] {
            let key = load_data(name);
            let shown = format!("{key:?}");
            let pem = std::fs::read_to_string(key_data(name)).unwrap();
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!shown.contains(line), "{name}: {shown}");
            }
            assert!(shown.len() < 2000, "{name}: {shown}");
        }
        // A corrupted body: the error names the file, not the bytes.
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(key_data("rsa-trad.pem")).unwrap();
        let body: Vec<&str> = text.lines().collect();
        let bad = format!("{}\n{}\n{}\n", body[0], body[1], body[body.len() - 1]);
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, bad).unwrap();
        let err = PrivateKey::load(&path, None).unwrap_err().to_string();
        assert!(err.contains("bad.pem") && !err.contains(body[1]), "{err}");
    }
}
