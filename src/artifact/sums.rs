//! `SHA256SUMS`: one `<sha256>  <name>` line per output, in the order written, as
//! `sha256sum -c` reads it.

use crate::digest::FileSum;

/// The sums file's name.
pub const SUMS: &str = "SHA256SUMS";

/// The detached OpenPGP signature over SHA256SUMS (`--sign-key`). ASCII-armored and named
/// `.asc` (not `.gpg`): `gpg --verify SHA256SUMS.asc SHA256SUMS` and `sqv` read either, the
/// armored form is what Alpine and Armbian publish beside their images. SHA256SUMS cannot list it (it signs SHA256SUMS's bytes); the buildinfo
/// records which key made it, and SHA256SUMS lists the buildinfo, so the signature covers
/// that record too.
pub const SIGNATURE: &str = "SHA256SUMS.asc";

/// The file's text.
pub fn text(outputs: &[FileSum]) -> String {
    outputs
        .iter()
        .map(|o| format!("{}  {}\n", o.sha256, o.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spaces_and_a_newline_per_file() {
        let t = text(&[FileSum::of("a.img", b"abc"), FileSum::of("b", b"")]);
        assert_eq!(
            t,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a.img\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  b\n"
        );
    }
}
