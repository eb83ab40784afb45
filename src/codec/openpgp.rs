//! OpenPGP detached signatures over SHA256SUMS, as Debian's `Release.gpg` and Alpine's
//! release files are checked: a v4 binary-document signature, SHA-256, created at the
//! caller's epoch (or the key's creation, if later), with the issuer fingerprint (hashed) and key ID (unhashed) subpackets,
//! ASCII-armored. Keys and signatures are parsed with rPGP from bytes the caller read with a
//! cap; a published signature is hostile, so every failure is a typed error, never a panic.

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, PublicOrSecret, SignedPublicKey,
    SignedSecretKey, SubpacketConfig,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};

/// The largest key file read (a key with many certifications is a few hundred KiB).
pub const MAX_KEY_SIZE: u64 = 4 << 20;
/// The largest `SHA256SUMS.asc` read (one signature is under 2 KiB armored, even RSA-4096).
pub const MAX_SIGNATURE_SIZE: u64 = 64 << 10;

/// What is wrong with a key or signature, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    #[error("not an OpenPGP key: {0}")]
    NotAKey(String),
    #[error("holds no OpenPGP key")]
    NoKey,
    #[error(
        "is a public key; signing needs the secret key (gpg --export-secret-keys --armor KEYID)"
    )]
    PublicKeyOnly,
    #[error("holds {0} secret keys; give a file with one")]
    SeveralKeys(usize),
    #[error("is protected by a passphrase; give it in a file (--sign-passphrase-file) or in PIMG_SIGN_PASSPHRASE")]
    PassphraseNeeded,
    #[error("the passphrase does not unlock the key ({0})")]
    WrongPassphrase(String),
    #[error("is a {0:?} key; only v4 keys sign reproducibly (a v6 signature has a random salt)")]
    NotV4(String),
    #[error("holds a secret key with no key able to sign")]
    CannotSign,
    #[error("SOURCE_DATE_EPOCH {0} cannot be an OpenPGP signature time (1970..2106)")]
    Epoch(i64),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("is larger than {cap} bytes: not one OpenPGP signature")]
    TooLarge { cap: u64 },
    #[error("not an OpenPGP signature: {0}")]
    NotASignature(String),
    #[error("is a {0:?} signature; a detached signature over a file is a binary or text one")]
    WrongType(String),
    #[error("is signed by {issuer}, a key not among the --key files")]
    UnknownKey { issuer: String },
    #[error("names no issuer (no fingerprint or key ID subpacket)")]
    NoIssuer,
    #[error(
        "BAD signature by {fingerprint}: the signed file changed, or the signature did ({reason})"
    )]
    Bad { fingerprint: String, reason: String },
}

/// A secret key unlocked enough to sign: the key that signs (the primary key or a signing
/// subkey) and the passphrase that opens it.
pub struct SecretSigner {
    key: SignedSecretKey,
    /// Which secret subkey signs; the primary key when none.
    subkey: Option<usize>,
    passphrase: Password,
}

impl std::fmt::Debug for SecretSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSigner")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Whether bytes look like ASCII armor (rPGP decides the same way for keys).
fn is_armored(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN PGP")
}

/// Every key in a key file, public or secret, armored or binary.
fn parse_keys(bytes: &[u8]) -> Result<Vec<PublicOrSecret>, OpenPgpError> {
    let bad = |e: pgp::errors::Error| OpenPgpError::NotAKey(e.to_string());
    let (iter, _) = PublicOrSecret::from_reader_many_buf(bytes).map_err(bad)?;
    let mut keys = Vec::new();
    for k in iter {
        keys.push(k.map_err(bad)?);
        // A real file holds a handful; a file of thousands is not a key file.
        if keys.len() > 1024 {
            return Err(OpenPgpError::NotAKey("more than 1024 keys".into()));
        }
    }
    if keys.is_empty() {
        return Err(OpenPgpError::NoKey);
    }
    Ok(keys)
}

impl SecretSigner {
    /// The one secret key in `bytes` (armored or binary), checked to open with `passphrase`.
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<Self, OpenPgpError> {
        let keys = parse_keys(bytes)?;
        let secrets: Vec<SignedSecretKey> = keys
            .into_iter()
            .filter_map(|k| match k {
                PublicOrSecret::Secret(s) => Some(s),
                PublicOrSecret::Public(_) => None,
            })
            .collect();
        let key = match secrets.len() {
            0 => return Err(OpenPgpError::PublicKeyOnly),
            1 => secrets.into_iter().next().ok_or(OpenPgpError::NoKey)?,
            n => return Err(OpenPgpError::SeveralKeys(n)),
        };
        // As gpg does: a subkey marked for signing signs; else the primary key.
        let subkey = key
            .secret_subkeys
            .iter()
            .position(|s| s.signatures.iter().any(|sig| sig.key_flags().sign()));
        let primary_signs = key
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .chain(&key.details.direct_signatures)
            .all(|sig| {
                sig.key_flags().sign()
                    || !sig.key_flags().certify() && !sig.key_flags().encrypt_comms()
            });
        if subkey.is_none() && !primary_signs {
            return Err(OpenPgpError::CannotSign);
        }
        // A v6 signature needs a random salt, so its bytes could not be reproduced.
        if key.primary_key.version() != pgp::types::KeyVersion::V4 {
            return Err(OpenPgpError::NotV4(format!(
                "{:?}",
                key.primary_key.version()
            )));
        }
        let encrypted = match subkey {
            Some(i) => key.secret_subkeys[i].key.secret_params().is_encrypted(),
            None => key.primary_key.secret_params().is_encrypted(),
        };
        if encrypted && passphrase.is_none() {
            return Err(OpenPgpError::PassphraseNeeded);
        }
        let passphrase = Password::from(passphrase.unwrap_or_default());
        let unlocked = match subkey {
            Some(i) => key.secret_subkeys[i].key.unlock(&passphrase, |_, _| Ok(())),
            None => key.primary_key.unlock(&passphrase, |_, _| Ok(())),
        };
        unlocked
            .and_then(|r| r)
            .map_err(|e| OpenPgpError::WrongPassphrase(e.to_string()))?;
        Ok(SecretSigner {
            key,
            subkey,
            passphrase,
        })
    }

    fn signing_key(&self) -> &dyn SigningKey {
        match self.subkey {
            Some(i) => &self.key.secret_subkeys[i].key,
            None => &self.key.primary_key,
        }
    }

    /// The signing key's fingerprint, uppercase hex as gpg prints it.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.signing_key().fingerprint())
    }

    /// The primary key's fingerprint (the certificate's name).
    pub fn primary_fingerprint(&self) -> String {
        format!("{:X}", self.key.primary_key.fingerprint())
    }

    /// The public-key algorithm, as RFC 9580 names it.
    pub fn algorithm(&self) -> String {
        format!("{:?}", self.signing_key().algorithm())
    }

    /// When a signature made at `epoch` says it was made: the epoch, or the signing key's
    /// creation time when the key is younger (gpg and sqv reject a signature older than its
    /// key, and an epoch derived from the inputs is often older than the key).
    pub fn signature_time(&self, epoch: i64) -> Result<u32, OpenPgpError> {
        let at = u32::try_from(epoch).map_err(|_| OpenPgpError::Epoch(epoch))?;
        Ok(at.max(self.signing_key().created_at().as_secs()))
    }

    /// The armored detached signature over `data`, made at [`Self::signature_time`].
    pub fn sign(&self, data: &[u8], epoch: i64) -> Result<String, OpenPgpError> {
        self.detached(data, epoch)?
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| OpenPgpError::Sign(e.to_string()))
    }

    /// The same signature as [`Self::sign`], as binary packets.
    pub fn sign_binary(&self, data: &[u8], epoch: i64) -> Result<Vec<u8>, OpenPgpError> {
        use pgp::ser::Serialize;
        self.detached(data, epoch)?
            .to_bytes()
            .map_err(|e| OpenPgpError::Sign(e.to_string()))
    }

    fn detached(&self, data: &[u8], epoch: i64) -> Result<DetachedSignature, OpenPgpError> {
        let created = self.signature_time(epoch)?;
        let key = self.signing_key();
        let sub = |d| Subpacket::regular(d).map_err(|e| OpenPgpError::Sign(e.to_string()));
        let hashed = vec![
            sub(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
            sub(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                created,
            )))?,
        ];
        let unhashed = vec![sub(SubpacketData::IssuerKeyId(key.legacy_key_id()))?];
        // The generator is never drawn from for a v4 key's signature (only v6 salts use it).
        let rng = NoRandom;
        DetachedSignature::sign_binary_data_with_subpackets(
            rng,
            &Box::new(key),
            &self.passphrase,
            HashAlgorithm::Sha256,
            data,
            SubpacketConfig::UserDefined { hashed, unhashed },
        )
        .map_err(|e| OpenPgpError::Sign(e.to_string()))
    }
}

/// A random source that refuses: signing must not depend on one.
struct NoRandom;

impl rand_core::RngCore for NoRandom {
    fn next_u32(&mut self) -> u32 {
        unreachable!("v4 signatures draw no randomness")
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("v4 signatures draw no randomness")
    }
    fn fill_bytes(&mut self, _: &mut [u8]) {
        unreachable!("v4 signatures draw no randomness")
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
        Err(rand_core::Error::new("v4 signatures draw no randomness"))
    }
}

impl rand_core::CryptoRng for NoRandom {}

/// A key ID as gpg prints it (16 uppercase hex digits).
fn key_id_hex(k: &pgp::types::KeyId) -> String {
    k.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// Public keys trusted to sign (the `--key` files).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Who made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The key that signed (primary or subkey), uppercase hex.
    pub fingerprint: String,
    /// The certificate's primary fingerprint.
    pub primary_fingerprint: String,
    /// The certificate's first user ID, as text.
    pub user_id: Option<String>,
    /// The signature's creation time (seconds since 1970).
    pub created: Option<u32>,
}

impl Keyring {
    /// Adds every key in a key file (armored or binary; secret keys count by their public
    /// half); returns how many it held.
    pub fn add(&mut self, bytes: &[u8]) -> Result<usize, OpenPgpError> {
        let keys = parse_keys(bytes)?;
        let n = keys.len();
        self.keys.extend(keys.into_iter().map(|k| match k {
            PublicOrSecret::Public(p) => p,
            PublicOrSecret::Secret(s) => s.to_public_key(),
        }));
        Ok(n)
    }

    /// Checks one detached signature (armored or binary) over `data` against the keys.
    pub fn verify(&self, signature: &[u8], data: &[u8]) -> Result<Signer, OpenPgpError> {
        let sig = parse_signature(signature)?;
        let fps: Vec<String> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| format!("{f:X}"))
            .collect();
        let ids: Vec<String> = sig.issuer_key_id().iter().map(|k| key_id_hex(k)).collect();
        let issuer = fps
            .first()
            .or(ids.first())
            .cloned()
            .ok_or(OpenPgpError::NoIssuer)?;
        let names = |fp: String, id: String| fps.contains(&fp) || ids.contains(&id);
        for cert in &self.keys {
            let primary = format!("{:X}", cert.primary_key.fingerprint());
            let p = &cert.primary_key;
            let mut candidates: Vec<(Result<(), pgp::errors::Error>, String)> = Vec::new();
            if names(primary.clone(), key_id_hex(&p.legacy_key_id())) {
                candidates.push((sig.verify(p, data), primary.clone()));
            }
            for s in &cert.public_subkeys {
                let fp = format!("{:X}", s.key.fingerprint());
                if names(fp.clone(), key_id_hex(&s.key.legacy_key_id())) {
                    candidates.push((sig.verify(&s.key, data), fp));
                }
            }
            if let Some((verdict, fingerprint)) = candidates.into_iter().next() {
                return match verdict {
                    Ok(()) => Ok(Signer {
                        fingerprint,
                        primary_fingerprint: primary,
                        user_id: cert
                            .details
                            .users
                            .first()
                            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned()),
                        created: sig.created().map(|t| t.as_secs()),
                    }),
                    Err(e) => Err(OpenPgpError::Bad {
                        fingerprint,
                        reason: e.to_string(),
                    }),
                };
            }
        }
        Err(OpenPgpError::UnknownKey { issuer })
    }
}

/// One detached signature from a published file's bytes (the caller capped the read at
/// [`MAX_SIGNATURE_SIZE`]).
pub fn parse_signature(bytes: &[u8]) -> Result<Signature, OpenPgpError> {
    if bytes.len() as u64 > MAX_SIGNATURE_SIZE {
        return Err(OpenPgpError::TooLarge {
            cap: MAX_SIGNATURE_SIZE,
        });
    }
    let bad = |e: pgp::errors::Error| OpenPgpError::NotASignature(e.to_string());
    let sig = if is_armored(bytes) {
        DetachedSignature::from_armor_single(bytes).map_err(bad)?.0
    } else {
        DetachedSignature::from_bytes(bytes).map_err(bad)?
    };
    let sig = sig.signature;
    match sig.typ() {
        Some(pgp::packet::SignatureType::Binary) | Some(pgp::packet::SignatureType::Text) => {
            Ok(sig)
        }
        other => Err(OpenPgpError::WrongType(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_huge_signatures_are_errors() {
        for bytes in [
            &b""[..],
            b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
            b"\x88\xff\xff\xff\xff",
            b"\xc2\x05\x04\x00\x16\x08\x00",
        ] {
            assert!(parse_signature(bytes).is_err(), "{bytes:?}");
        }
        let huge = vec![b'A'; MAX_SIGNATURE_SIZE as usize + 1];
        assert!(matches!(
            parse_signature(&huge),
            Err(OpenPgpError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_keys_are_errors() {
        assert!(SecretSigner::from_bytes(b"", None).is_err());
        assert!(SecretSigner::from_bytes(b"-----BEGIN RSA PRIVATE KEY-----\n", None).is_err());
        assert!(Keyring::default().add(b"\x99\x00\x01").is_err());
    }
}
