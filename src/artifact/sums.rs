//! `SHA256SUMS`: one `<sha256>  <name>` line per output, in the order written, as
//! `sha256sum -c` reads it.

use crate::digest::FileSum;

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
