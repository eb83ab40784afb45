//! The RSA signatures of Alpine's v2 formats: abuild's keys (PEM), PKCS#1 v1.5 over SHA-1
//! (`.SIGN.RSA.*`) or SHA-256 (`.SIGN.RSA256.*`), as `abuild-sign` and apk-tools make and
//! check them with OpenSSL. PKCS#1 v1.5 signing has no randomness: one key and one message
//! give one signature, so a signed index is as reproducible as its key.

use crate::codec::apkindex::{signature_segment, SignatureDigest};
use crate::codec::archive::ArchiveError;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub use rsa::RsaPrivateKey as PrivateKey;
pub use rsa::RsaPublicKey as PublicKey;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("it is not a PEM file (no '-----BEGIN ...-----' line)")]
    NotPem,
    #[error("it holds a PEM '{found}', not {want}")]
    WrongType { found: String, want: &'static str },
    #[error(
        "it is an encrypted private key; write a decrypted copy for the build \
         (openssl pkey -in KEY -out KEY.plain)"
    )]
    Encrypted,
    #[error("its '{label}' is not a valid RSA key: {reason}")]
    Invalid { label: String, reason: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// The label of the first PEM block (`RSA PRIVATE KEY`, `PUBLIC KEY`, ...).
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(&text[start..start + end])
}

/// A PEM parser's error as [`KeyError::Invalid`] of the block labelled `label`.
fn invalid<E: std::fmt::Display>(label: &str) -> impl FnOnce(E) -> KeyError + '_ {
    move |e| KeyError::Invalid {
        label: label.to_string(),
        reason: e.to_string(),
    }
}

/// An RSA private key from PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, as `abuild-keygen` and
/// `openssl genrsa` write it) or PKCS#8 (`BEGIN PRIVATE KEY`, as `openssl genpkey` does).
pub fn private_key_from_pem(text: &str) -> Result<RsaPrivateKey, KeyError> {
    let label = pem_label(text).ok_or(KeyError::NotPem)?;
    match label {
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(text).map_err(invalid(label)),
        "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_pem(text).map_err(invalid(label)),
        "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
        _ if text.contains("Proc-Type: 4,ENCRYPTED") => Err(KeyError::Encrypted),
        other => Err(KeyError::WrongType {
            found: other.to_string(),
            want: "an RSA private key ('RSA PRIVATE KEY' or 'PRIVATE KEY')",
        }),
    }
}

/// An RSA public key from PEM: `BEGIN PUBLIC KEY` (what `openssl rsa -pubout` writes and
/// `/etc/apk/keys` holds) or `BEGIN RSA PUBLIC KEY`.
pub fn public_key_from_pem(text: &str) -> Result<RsaPublicKey, KeyError> {
    let label = pem_label(text).ok_or(KeyError::NotPem)?;
    match label {
        "PUBLIC KEY" => RsaPublicKey::from_public_key_pem(text).map_err(invalid(label)),
        "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_pem(text).map_err(invalid(label)),
        other => Err(KeyError::WrongType {
            found: other.to_string(),
            want: "an RSA public key ('PUBLIC KEY')",
        }),
    }
}

/// The public half of a private key.
pub fn public_of(key: &RsaPrivateKey) -> RsaPublicKey {
    key.to_public_key()
}

/// The PKCS#1 v1.5 signature over SHA-1 of `data` (what `.SIGN.RSA.*` members hold).
pub fn sign_sha1(key: &RsaPrivateKey, data: &[u8]) -> Result<Vec<u8>, KeyError> {
    let digest = Sha1::digest(data);
    key.sign(Pkcs1v15Sign::new::<Sha1>(), &digest)
        .map_err(|e| KeyError::Sign(e.to_string()))
}

/// A signed `APKINDEX.tar.gz`: the signature segment (`key`'s SHA-1 signature of `index` in
/// member `.SIGN.RSA.<key_name>`), then `index` itself, as `abuild-sign` makes it.
pub fn signed_index(
    index: &[u8],
    key: &RsaPrivateKey,
    key_name: &str,
    mtime: u64,
    level: u32,
) -> Result<Vec<u8>, KeyError> {
    let signature = sign_sha1(key, index)?;
    let mut out = signature_segment(key_name, &signature, mtime, level)?;
    out.extend_from_slice(index);
    Ok(out)
}

/// Whether `signature` is `key`'s PKCS#1 v1.5 signature of `digest` (of the kind named).
pub fn verify_digest(
    key: &RsaPublicKey,
    kind: SignatureDigest,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    let scheme = match kind {
        SignatureDigest::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
        SignatureDigest::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
    };
    key.verify(scheme, digest, signature).is_ok()
}

/// The digest of `data` a signature of `kind` covers.
pub fn digest_of(kind: SignatureDigest, data: &[u8]) -> Vec<u8> {
    match kind {
        SignatureDigest::Sha1 => Sha1::digest(data).to_vec(),
        SignatureDigest::Sha256 => Sha256::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1024-bit key made once with `openssl genrsa 1024` for these tests only (small so the
    /// test is fast; the format is the same at 4096 bits).
    const PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXAIBAAKBgQC9QOkaL3dKCeQBF4UjPGCaYoBDSzFnozWhC2bGjTN53h2392EA
w55ashid+ZxpKi1GJfGZt6FCd7QEEzE0zOi8Zp5q8SwynOau8oVyM3TDqvK6aVnH
wj1tlSWIFGXN9xyFVj716VSowKVaYtXJ7t2EjJsy9q95tXL+77e5pQJeuwIDAQAB
AoGAcitmdFWOMSwmUEJQHyGdZYVmuzHxbAQZpj2qkr08AJjudLzX2A4qyawHDcY3
hXncNiVNyt3sepycDJlHZgL3oyVFv6WxzZtk2VaZNgDtQSZW6UPggQ1u1nBpyaN7
+jB+9GxBTSAbd75GSUMxmPVMIwdjU98qNcPUJzHRDH70HoECQQD2P8oTpf+Eqzdz
1U9+aGvDmwnySaLROn9aiTUKQrji3C6VeRt3AYajliUFCf6Bea3F13aX57z84KW6
PgCpeo11AkEAxL9cT3oOipe+zWisHwMBef2O7o5nKAZTCdAPZ8G2M+TuJW/Nl0FD
Tn1+3L3VVBQC/dbuzuPIBroPZ+BMnXTFbwJBAL02NJq2YUjamqhJjmRt7egGGDVw
eUfVcAfsB7JTpGbEkpLN1NmzdXX7J4TgsgtgqLKtJXYBXYjdQNqDS9Tt0wUCQEAw
xudPRUtGcwQFcJK1olewuF9wqotOdO0wqrYJZ27K9D/WmFcO/eyv2SIf9Wf3F3rG
EygA/RPkxH35mkWNAZUCQGO5xng5RxEDaSb9Iof+kNnlJ41unFckpEMeVoAfWkVr
hVuGlvuZK/L9l/dAUTWzSNzsf4K2UB6ejY+UvbWptg4=
-----END RSA PRIVATE KEY-----
";

    /// The same key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`).
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAL1A6Rovd0oJ5AEX
hSM8YJpigENLMWejNaELZsaNM3neHbf3YQDDnlqyGJ35nGkqLUYl8Zm3oUJ3tAQT
MTTM6LxmnmrxLDKc5q7yhXIzdMOq8rppWcfCPW2VJYgUZc33HIVWPvXpVKjApVpi
1cnu3YSMmzL2r3m1cv7vt7mlAl67AgMBAAECgYByK2Z0VY4xLCZQQlAfIZ1lhWa7
MfFsBBmmPaqSvTwAmO50vNfYDirJrAcNxjeFedw2JU3K3ex6nJwMmUdmAvejJUW/
pbHNm2TZVpk2AO1BJlbpQ+CBDW7WcGnJo3v6MH70bEFNIBt3vkZJQzGY9UwjB2NT
3yo1w9QnMdEMfvQegQJBAPY/yhOl/4SrN3PVT35oa8ObCfJJotE6f1qJNQpCuOLc
LpV5G3cBhqOWJQUJ/oF5rcXXdpfnvPzgpbo+AKl6jXUCQQDEv1xPeg6Kl77NaKwf
AwF5/Y7ujmcoBlMJ0A9nwbYz5O4lb82XQUNOfX7cvdVUFAL91u7O48gGug9n4Eyd
dMVvAkEAvTY0mrZhSNqaqEmOZG3t6AYYNXB5R9VwB+wHslOkZsSSks3U2bN1dfsn
hOCyC2Cosq0ldgFdiN1A2oNL1O3TBQJAQDDG509FS0ZzBAVwkrWiV7C4X3Cqi050
7TCqtglnbsr0P9aYVw797K/ZIh/1Z/cXesYTKAD9E+TEffmaRY0BlQJAY7nGeDlH
EQNpJv0ih/6Q2eUnjW6cVySkQx5WgB9aRWuFW4aW+5kr8v2X90BRNbNI3Ox/grZQ
Hp6Nj5S9tam2Dg==
-----END PRIVATE KEY-----
";

    #[test]
    fn pkcs1_and_pkcs8_are_one_key() {
        let a = private_key_from_pem(PKCS1).unwrap();
        let b = private_key_from_pem(PKCS8).unwrap();
        assert_eq!(a, b);
        assert_eq!(sign_sha1(&a, b"x").unwrap(), sign_sha1(&b, b"x").unwrap());
    }

    #[test]
    fn signed_index_verifies() {
        use crate::codec::apkindex::{read_index, write_index};
        let key = private_key_from_pem(PKCS1).unwrap();
        let index = write_index(&[], "d", 0, 9).unwrap();
        let signed = signed_index(&index, &key, "k.rsa.pub", 0, 9).unwrap();
        assert_eq!(
            signed,
            signed_index(&index, &key, "k.rsa.pub", 0, 9).unwrap()
        );
        let back = read_index(&signed).unwrap();
        let (kind, name, sig) = back.signature.unwrap();
        assert_eq!((kind, name.as_str()), (SignatureDigest::Sha1, "k.rsa.pub"));
        let covered = &signed[back.signed_bytes_offset..];
        assert_eq!(covered, index.as_slice());
        let digest = digest_of(kind, covered);
        assert!(verify_digest(&public_of(&key), kind, &digest, &sig));
    }

    #[test]
    fn key_types_are_told_apart() {
        assert!(matches!(
            private_key_from_pem("hello"),
            Err(KeyError::NotPem)
        ));
        let public = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = private_key_from_pem(public).unwrap_err();
        assert!(err.to_string().contains("'PUBLIC KEY'"), "{err}");
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            private_key_from_pem(enc),
            Err(KeyError::Encrypted)
        ));
        let err = public_key_from_pem(PKCS1).unwrap_err();
        assert!(err.to_string().contains("RSA PRIVATE KEY"), "{err}");
        let broken = PKCS1.replacen("MII", "MIJ", 1);
        let err = private_key_from_pem(&broken);
        assert!(err.is_err());
    }

    #[test]
    fn signing_is_deterministic_and_verifies() {
        let key = private_key_from_pem(PKCS1).unwrap();
        let a = sign_sha1(&key, b"index bytes").unwrap();
        let b = sign_sha1(&key, b"index bytes").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 128);
        // `printf 'index bytes' | openssl dgst -sha1 -sign PKCS1 | xxd -p`
        let openssl = "59fbad3bcad4a170a7d2e933b2afd7ce9a67fd168818ed6a4366e82ac09dbf8efebe5d71fca5b019a0254db9d2ca657374e3f3881cf9fb0c8700aae74eacf40cb7ebdbc28c46f0f840445e98c5bc018a1e6588c034341771c7fb50671500401825b22168c5c5f54887996b9c200e0edeb7f6436e79f16b552609575ff072f50a";
        assert_eq!(crate::digest::hex(&a), openssl);
        let public = public_of(&key);
        let digest = digest_of(SignatureDigest::Sha1, b"index bytes");
        assert!(verify_digest(&public, SignatureDigest::Sha1, &digest, &a));
        let other = digest_of(SignatureDigest::Sha1, b"index bytez");
        assert!(!verify_digest(&public, SignatureDigest::Sha1, &other, &a));
        let sha256 = digest_of(SignatureDigest::Sha256, b"index bytes");
        assert!(!verify_digest(
            &public,
            SignatureDigest::Sha256,
            &sha256,
            &a
        ));
        assert_ne!(a, sign_sha1(&key, b"index bytez").unwrap());
    }
}
