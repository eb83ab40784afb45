//! The OpenPGP readers a published folder reaches: a SHA256SUMS.asc of any bytes (capped as
//! `pimg verify` caps it) and a key file, then a check of the signature against the keys.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pimg::codec::openpgp::{self, Keyring};

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(openpgp::MAX_SIGNATURE_SIZE as usize + 1)];
    let _ = openpgp::parse_signature(data);
    let mut ring = Keyring::default();
    let _ = ring.add(data);
    let _ = ring.verify(data, b"SHA256SUMS");
});
