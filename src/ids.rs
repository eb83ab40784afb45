//! Identifiers (FAT volume ID, MBR disk signature, GPT GUIDs) derived per object from a
//! content seed and a label, never drawn in call order: adding a partition cannot change
//! another object's identifier.

use sha2::{Digest, Sha256};

/// The seed every identifier of one build is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentitySeed(pub [u8; 32]);

impl IdentitySeed {
    /// Domain-separated hash of the seed and an object label such as `gpt/part/boot`.
    fn derive(&self, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"pimg identifier v1\0");
        h.update(self.0);
        h.update(label.as_bytes());
        h.finalize().into()
    }

    /// A 32-bit identifier (volume ID, disk signature); never zero.
    pub fn u32(&self, label: &str) -> u32 {
        let d = self.derive(label);
        let v = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        if v == 0 {
            1
        } else {
            v
        }
    }

    /// An RFC 9562 version-8 (custom) UUID, bytes in canonical text order.
    pub fn guid(&self, label: &str) -> [u8; 16] {
        let d = self.derive(label);
        let mut g = [0u8; 16];
        g.copy_from_slice(&d[..16]);
        g[6] = (g[6] & 0x0f) | 0x80;
        g[8] = (g[8] & 0x3f) | 0x80;
        g
    }
}

/// Formats GUID bytes (canonical order) as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn guid_to_string(g: &[u8; 16]) -> String {
    let h: String = g.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses the canonical text form; `None` when malformed.
pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
    let parts: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = parts.concat();
    let mut g = [0u8; 16];
    for (i, b) in g.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_independent_and_stable() {
        let s = IdentitySeed([7; 32]);
        assert_ne!(s.u32("fat/volume-id"), s.u32("mbr/disk-signature"));
        assert_eq!(s.guid("gpt/disk"), s.guid("gpt/disk"));
        let g = s.guid("gpt/part/boot");
        assert_eq!(g[6] >> 4, 8);
        assert_eq!(g[8] >> 6, 2);
        assert_eq!(parse_guid(&guid_to_string(&g)), Some(g));
        assert_eq!(parse_guid("not-a-guid"), None);
        assert_eq!(parse_guid("zzzzzzzz-0000-0000-0000-000000000000"), None);
    }
}
