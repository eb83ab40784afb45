//! Device tree fix-ups for QEMU: the board's own DTB, minus devices QEMU does not emulate.
//!
//! QEMU's Raspberry Pi machines leave some peripherals out (the BCM2835 AXI bridge behind
//! the power domains, the Pi 4's HDMI block, the firmware GPIO expander). A kernel that
//! probes them takes an external abort. `pimg boot` therefore hands QEMU a copy of the DTB
//! with the profile's fix-ups applied; the image keeps the unmodified DTB that real boards
//! need. Fix-ups overwrite tokens with `FDT_NOP` in place, so the blob keeps its size and
//! layout (what `fdtput -d` would do, without moving anything).
//!
//! The DTB comes out of an image from anywhere: every offset is bounds-checked, and the walk
//! is linear in the blob's size.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Deeper nesting than any real device tree; bounds the path stack.
const MAX_DEPTH: usize = 64;

/// One fix-up, parsed from the profile's text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fixup {
    /// `delete /soc/i2c@7ef04500`: the node and everything under it.
    DeleteNode(String),
    /// `delete /soc/mmc@7e300000:mmc-pwrseq`: one property.
    DeleteProp(String, String),
    /// `keep /soc/watchdog@7e100000:reg 2`: the first N 32-bit cells of a property.
    KeepCells(String, String, u32),
}

impl std::str::FromStr for Fixup {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "'{text}' is not a device tree fix-up: use \"delete /NODE\", \"delete /NODE:PROPERTY\" or \"keep /NODE:PROPERTY CELLS\""
            )
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let split = |target: &str| -> Result<(String, Option<String>), String> {
            if !target.starts_with('/') {
                return Err(usage());
            }
            Ok(match target.split_once(':') {
                Some((n, p)) if !p.is_empty() => (n.to_string(), Some(p.to_string())),
                Some(_) => return Err(usage()),
                None => (target.to_string(), None),
            })
        };
        match words.as_slice() {
            ["delete", target] => match split(target)? {
                (node, None) if node != "/" => Ok(Fixup::DeleteNode(node)),
                (node, Some(prop)) => Ok(Fixup::DeleteProp(node, prop)),
                _ => Err(usage()),
            },
            ["keep", target, cells] => match (split(target)?, cells.parse::<u32>()) {
                ((node, Some(prop)), Ok(n)) => Ok(Fixup::KeepCells(node, prop, n)),
                _ => Err(usage()),
            },
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for Fixup {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Fixup::DeleteNode(n) => write!(f, "delete {n}"),
            Fixup::DeleteProp(n, p) => write!(f, "delete {n}:{p}"),
            Fixup::KeepCells(n, p, c) => write!(f, "keep {n}:{p} {c}"),
        }
    }
}

/// Why a fix-up could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FdtError {
    #[error("not a flattened device tree: {0}")]
    Malformed(String),
    #[error("fix-up '{0}': no such node or property in the device tree")]
    NotFound(String),
    #[error("fix-up '{fixup}': the property has only {have} cells")]
    TooShort { fixup: String, have: u32 },
}

fn be32(b: &[u8], at: usize) -> Result<u32, FdtError> {
    b.get(at..at.checked_add(4).ok_or_else(|| bad("offset overflow"))?)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .ok_or_else(|| bad(&format!("offset {at} is past the end")))
}

fn bad(what: &str) -> FdtError {
    FdtError::Malformed(what.to_string())
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn nop_fill(b: &mut [u8], from: usize, to: usize) {
    let mut at = from;
    while at + 4 <= to {
        put32(b, at, NOP);
        at += 4;
    }
}

/// The NUL-terminated string at `at`, without the NUL.
fn cstr(b: &[u8], at: usize) -> Result<&[u8], FdtError> {
    let rest = b
        .get(at..)
        .ok_or_else(|| bad("string offset past the end"))?;
    let len = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad("unterminated string"))?;
    Ok(&rest[..len])
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Applies every fix-up to `dtb` in place.
pub fn apply(dtb: &mut [u8], fixups: &[Fixup]) -> Result<(), FdtError> {
    for f in fixups {
        apply_one(dtb, f)?;
    }
    Ok(())
}

fn apply_one(dtb: &mut [u8], fixup: &Fixup) -> Result<(), FdtError> {
    if be32(dtb, 0)? != MAGIC {
        return Err(bad("no d00dfeed magic"));
    }
    let total = be32(dtb, 4)? as usize;
    if total > dtb.len() {
        return Err(bad("header size is larger than the file"));
    }
    let off_struct = be32(dtb, 8)? as usize;
    let off_strings = be32(dtb, 12)? as usize;
    let size_struct = be32(dtb, 36)? as usize;
    let struct_end = off_struct
        .checked_add(size_struct)
        .filter(|&e| e <= total)
        .ok_or_else(|| bad("structure block outside the blob"))?;
    let strings = dtb
        .get(off_strings..total)
        .ok_or_else(|| bad("strings block outside the blob"))?
        .to_vec();

    let (want_node, want_prop) = match fixup {
        Fixup::DeleteNode(n) => (n.as_str(), None),
        Fixup::DeleteProp(n, p) | Fixup::KeepCells(n, p, _) => (n.as_str(), Some(p.as_str())),
    };
    let mut path: Vec<String> = Vec::new();
    let mut at = off_struct;
    // For a node deletion: where the node's BEGIN_NODE starts and its depth.
    let mut deleting: Option<(usize, usize)> = None;
    let current = |path: &[String]| -> String {
        if path.len() <= 1 {
            "/".to_string()
        } else {
            path[1..].iter().fold(String::new(), |s, p| s + "/" + p)
        }
    };
    while at < struct_end {
        let token = be32(dtb, at)?;
        let start = at;
        at += 4;
        match token {
            BEGIN_NODE => {
                let name = String::from_utf8_lossy(cstr(&dtb[..struct_end], at)?).into_owned();
                at = align4(at + name.len() + 1);
                if path.len() >= MAX_DEPTH {
                    return Err(bad("nodes nest too deep"));
                }
                path.push(name);
                if deleting.is_none() && want_prop.is_none() && current(&path) == want_node {
                    deleting = Some((start, path.len()));
                }
            }
            END_NODE => {
                if path.pop().is_none() {
                    return Err(bad("unbalanced end of node"));
                }
                if let Some((from, depth)) = deleting {
                    if path.len() + 1 == depth {
                        nop_fill(dtb, from, at);
                        return Ok(());
                    }
                }
            }
            PROP => {
                let len = be32(dtb, at)? as usize;
                let nameoff = be32(dtb, at + 4)? as usize;
                let data = at + 8;
                let end = data
                    .checked_add(len)
                    .filter(|&e| e <= struct_end)
                    .ok_or_else(|| bad("property runs past the structure block"))?;
                at = align4(end);
                if let Some(prop) = want_prop {
                    if deleting.is_none()
                        && current(&path) == want_node
                        && cstr(&strings, nameoff)? == prop.as_bytes()
                    {
                        match fixup {
                            Fixup::KeepCells(_, _, cells) => {
                                let keep = *cells as usize * 4;
                                if keep > len {
                                    return Err(FdtError::TooShort {
                                        fixup: fixup.to_string(),
                                        have: (len / 4) as u32,
                                    });
                                }
                                put32(dtb, start + 4, keep as u32);
                                nop_fill(dtb, align4(data + keep), at);
                            }
                            _ => nop_fill(dtb, start, at),
                        }
                        return Ok(());
                    }
                }
            }
            NOP => {}
            END => break,
            other => return Err(bad(&format!("unknown token {other:#x} at offset {start}"))),
        }
    }
    Err(FdtError::NotFound(fixup.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny DTB: / { soc { wd@1 { reg = <1 2 3 4>; reg-names = "pm", "asb"; }; i2c@2 { x; }; }; }
    fn blob() -> Vec<u8> {
        let strings = b"reg\0reg-names\0x\0".to_vec();
        let mut s = Vec::new();
        let w = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        let node = |s: &mut Vec<u8>, name: &str| {
            s.extend_from_slice(&BEGIN_NODE.to_be_bytes());
            s.extend_from_slice(name.as_bytes());
            s.push(0);
            while !s.len().is_multiple_of(4) {
                s.push(0);
            }
        };
        let prop = |s: &mut Vec<u8>, off: u32, data: &[u8]| {
            s.extend_from_slice(&PROP.to_be_bytes());
            s.extend_from_slice(&(data.len() as u32).to_be_bytes());
            s.extend_from_slice(&off.to_be_bytes());
            s.extend_from_slice(data);
            while !s.len().is_multiple_of(4) {
                s.push(0);
            }
        };
        node(&mut s, "");
        node(&mut s, "soc");
        node(&mut s, "wd@1");
        prop(&mut s, 0, &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        prop(&mut s, 4, b"pm\0asb\0");
        w(&mut s, END_NODE);
        node(&mut s, "i2c@2");
        prop(&mut s, 14, b"");
        w(&mut s, END_NODE);
        w(&mut s, END_NODE);
        w(&mut s, END_NODE);
        w(&mut s, END);
        let off_struct = 40 + 16;
        let off_strings = off_struct + s.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            40,
            17,
            16,
            0,
            strings.len() as u32,
            s.len() as u32,
        ] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0; 16]); // empty memory reservation map
        b.extend_from_slice(&s);
        b.extend_from_slice(&strings);
        b
    }

    fn fix(text: &str) -> Fixup {
        text.parse().unwrap()
    }

    fn has(b: &[u8], needle: &[u8]) -> bool {
        b.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn deletes_a_node_and_a_property_keeping_the_size() {
        let mut b = blob();
        let len = b.len();
        apply(
            &mut b,
            &[fix("delete /soc/i2c@2"), fix("delete /soc/wd@1:reg-names")],
        )
        .unwrap();
        assert_eq!(b.len(), len);
        assert!(!has(&b, b"i2c@2") && !has(&b, b"pm\0asb"));
        assert!(has(&b, b"wd@1"));
        // The fixed blob still walks: the same fix-ups now find nothing.
        assert_eq!(
            apply(&mut b, &[fix("delete /soc/i2c@2")]),
            Err(FdtError::NotFound("delete /soc/i2c@2".into()))
        );
        assert!(apply(&mut b, &[fix("keep /soc/wd@1:reg 2")]).is_ok());
        assert!(
            has(
                &b,
                &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4]
            ),
            "len 8, then the first two cells, then NOPs"
        );
        assert!(
            !has(&b, &[0, 0, 0, 2, 0, 0, 0, 3]),
            "the third cell is gone"
        );
    }

    #[test]
    fn errors_name_the_fixup() {
        let mut b = blob();
        let e = apply(&mut b, &[fix("keep /soc/wd@1:reg 5")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "fix-up 'keep /soc/wd@1:reg 5': the property has only 4 cells"
        );
        assert!(matches!(
            apply(&mut b, &[fix("delete /nope")]),
            Err(FdtError::NotFound(_))
        ));
        for t in [
            "remove /soc",
            "delete soc",
            "delete /",
            "keep /soc 2",
            "keep /soc:reg x",
            "delete /soc:",
        ] {
            assert!(t.parse::<Fixup>().is_err(), "{t}");
        }
    }

    #[test]
    fn hostile_blobs_are_errors_not_panics() {
        let good = blob();
        for cut in 0..good.len() {
            let mut b = good[..cut].to_vec();
            let _ = apply(&mut b, &[fix("delete /soc/i2c@2")]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x04, 0x7f] {
                let mut b = good.clone();
                b[i] = v;
                let _ = apply(
                    &mut b,
                    &[
                        fix("delete /soc/wd@1:reg-names"),
                        fix("keep /soc/wd@1:reg 1"),
                    ],
                );
            }
        }
    }
}
