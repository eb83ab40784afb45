//! tar reader for ustar, GNU (`././@LongLink` names, base-256 numbers) and pax (`x` and `g`
//! extended headers). Streams from any `Read`; headers are checked by checksum; long names and
//! pax records are capped at `MAX_EXTENSION` bytes; data is handed to the caller.

use crate::codec::reader::{Counted, Field, ReadError};
use std::io::Read;

/// Header and data block size.
pub const BLOCK: u64 = 512;
/// Largest GNU long name or pax header the reader accepts.
pub const MAX_EXTENSION: u64 = 1 << 20;

/// One archive member with every header field, after long names and pax records are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Byte offset of the member's own header block.
    pub header_offset: u64,
    /// Byte offsets of the extension headers (GNU L/K, pax x/g) that preceded it.
    pub extension_offsets: Vec<u64>,
    /// Byte offset of its data.
    pub data_offset: u64,
    /// Effective path (pax path, else GNU long name, else prefix/name).
    pub path: String,
    pub typeflag: u8,
    pub mode: u64,
    pub uid: u64,
    pub gid: u64,
    /// Effective size (pax size, else the header's).
    pub size: u64,
    /// Seconds (pax mtime's integer part, else the header's).
    pub mtime: i64,
    /// Effective link target.
    pub link_name: String,
    pub uname: String,
    pub gname: String,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// "ustar\0" + "00" (POSIX), "ustar " + " \0" (GNU), or what was there.
    pub magic: String,
    pub checksum: u32,
    /// pax records that applied to it (global then per-entry), in order.
    pub pax: Vec<(String, String)>,
    /// The raw header block.
    pub raw: Vec<u8>,
}

impl TarEntry {
    /// A one-word name for the type flag.
    pub fn kind(&self) -> &'static str {
        match self.typeflag {
            b'0' | 0 | b'7' => "file",
            b'1' => "hard link",
            b'2' => "symlink",
            b'3' => "char device",
            b'4' => "block device",
            b'5' => "directory",
            b'6' => "fifo",
            _ => "other",
        }
    }

    /// Where the data and its padding end.
    pub fn data_end(&self) -> (u64, u64) {
        let end = self.data_offset.saturating_add(self.size);
        (end, end.div_ceil(BLOCK).saturating_mul(BLOCK))
    }

    /// Every header field with its byte range.
    pub fn fields(&self) -> Vec<Field> {
        let o = self.header_offset;
        let r = &self.raw;
        let text = |a: usize, b: usize| {
            format!(
                "{:?}",
                crate::codec::reader::printable(trim_nul(r.get(a..b).unwrap_or(&[])))
            )
        };
        let mut f = vec![
            Field::new("name", o, 100, text(0, 100)),
            Field::new("mode", o + 100, 8, format!("0{:o}", self.mode)),
            Field::new("uid", o + 108, 8, self.uid),
            Field::new("gid", o + 116, 8, self.gid),
            Field::new("size", o + 124, 12, self.size),
            Field::new("mtime", o + 136, 12, self.mtime),
            Field::new("checksum", o + 148, 8, format!("0{:o}", self.checksum)),
            Field::new(
                "type",
                o + 156,
                1,
                format!("{:?} ({})", self.typeflag as char, self.kind()),
            ),
            Field::new("link name", o + 157, 100, text(157, 257)),
            Field::new("magic", o + 257, 8, format!("{:?}", self.magic)),
            Field::new("owner name", o + 265, 32, text(265, 297)),
            Field::new("group name", o + 297, 32, text(297, 329)),
            Field::new("device major", o + 329, 8, self.dev_major),
            Field::new("device minor", o + 337, 8, self.dev_minor),
        ];
        if self.magic.starts_with("ustar\0") {
            f.push(Field::new("prefix", o + 345, 155, text(345, 500)));
            f.push(Field::new(
                "header padding",
                o + 500,
                12,
                crate::codec::partition::mbr::digest_or_zero(r.get(500..512).unwrap_or(&[])),
            ));
        } else {
            f.push(Field::new(
                "GNU extra fields",
                o + 345,
                167,
                crate::codec::partition::mbr::digest_or_zero(r.get(345..512).unwrap_or(&[])),
            ));
        }
        f
    }
}

/// What follows the last member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEnd {
    pub entries: u64,
    /// Byte offset of the first zero block.
    pub end_offset: u64,
    /// Zero blocks found (2 in a complete archive).
    pub zero_blocks: u64,
    /// Bytes after the end marker, and whether any is nonzero.
    pub trailing: u64,
    pub trailing_nonzero: bool,
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(trim_nul(b)).into_owned()
}

/// Parses a numeric field: octal (spaces and NULs around it) or GNU base-256.
pub fn number(b: &[u8], field: &str, offset: u64) -> Result<u64, ReadError> {
    if let Some(&first) = b.first() {
        if first & 0x80 != 0 {
            if first == 0xFF {
                return Err(ReadError::invalid(
                    format!("tar header field '{field}'"),
                    offset,
                    "is a negative base-256 number",
                ));
            }
            let mut v: u64 = u64::from(first & 0x7F);
            for &c in &b[1..] {
                v = v
                    .checked_mul(256)
                    .and_then(|v| v.checked_add(u64::from(c)))
                    .ok_or_else(|| {
                        ReadError::invalid(
                            format!("tar header field '{field}'"),
                            offset,
                            "base-256 number overflows 64 bits",
                        )
                    })?;
            }
            return Ok(v);
        }
    }
    let s: Vec<u8> = b
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != 0 && c != b' ')
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let bad = || {
        ReadError::invalid(
            format!("tar header field '{field}'"),
            offset,
            format!(
                "\"{}\" is not an octal number",
                crate::codec::reader::printable(b)
            ),
        )
    };
    if !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return Err(bad());
    }
    let s = std::str::from_utf8(&s).map_err(|_| bad())?;
    u64::from_str_radix(s, 8).map_err(|_| bad())
}

/// True when a block has a valid checksum and a ustar/GNU magic (for detecting tar by content).
pub fn looks_like_header(b: &[u8]) -> bool {
    b.len() >= 512
        && b[257..262] == *b"ustar"
        && number(&b[148..156], "checksum", 148).is_ok_and(|c| checksum_matches(b, c))
}

/// The header block's sum with the checksum field counted as spaces, each byte taken as
/// unsigned (POSIX) or as signed (some old writers).
pub(crate) fn header_sums(b: &[u8]) -> (u64, i64) {
    let spaced = |i: usize, c: u8| if (148..156).contains(&i) { b' ' } else { c };
    b.iter().enumerate().fold((0, 0), |(u, s), (i, &c)| {
        let c = spaced(i, c);
        (u + u64::from(c), s + i64::from(c as i8))
    })
}

fn checksum_matches(b: &[u8], stored: u64) -> bool {
    let (unsigned, signed) = header_sums(b);
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Parses pax records (`LEN key=value\n`).
pub fn pax_records(data: &[u8], offset: u64) -> Result<Vec<(String, String)>, ReadError> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut at = offset;
    while !rest.is_empty() {
        if rest.iter().all(|&c| c == 0) {
            break;
        }
        let bad = |m: &str| ReadError::invalid("pax extended header record", at, m.to_string());
        let sp = rest
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("has no length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("length is not a decimal number"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad("length runs past the header"));
        }
        let rec = &rest[sp + 1..len];
        if rec.last() != Some(&b'\n') {
            return Err(bad("does not end with a newline"));
        }
        let rec = &rec[..rec.len() - 1];
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("has no '='"))?;
        out.push((
            String::from_utf8_lossy(&rec[..eq]).into_owned(),
            String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
        ));
        rest = &rest[len..];
        at += len as u64;
    }
    Ok(out)
}

/// Reads every member, handing each (after its extensions) and its data to `visit`, until
/// the end marker or the end of the input.
pub fn read<R: Read>(
    reader: R,
    mut visit: impl FnMut(&TarEntry, &mut dyn Read) -> Result<(), ReadError>,
) -> Result<TarEnd, ReadError> {
    let mut r = Counted::new(reader);
    let mut entries = 0u64;
    let mut global: Vec<(String, String)> = Vec::new();
    let mut local: Vec<(String, String)> = Vec::new();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut ext_offsets = Vec::new();
    loop {
        let offset = r.pos;
        let mut b = [0u8; 512];
        let got = r.fill_upto(&mut b, "tar header")?;
        if got == 0 && offset > 0 && ext_offsets.is_empty() {
            // No end marker: accepted (some writers stop here), reported as 0 zero blocks.
            return Ok(TarEnd {
                entries,
                end_offset: offset,
                zero_blocks: 0,
                trailing: 0,
                trailing_nonzero: false,
            });
        }
        if got < 512 {
            return Err(ReadError::Truncated {
                what: "tar header".into(),
                offset,
                needed: 512,
                end: offset + got as u64,
            });
        }
        if b.iter().all(|&c| c == 0) {
            if !ext_offsets.is_empty() {
                return Err(ReadError::invalid(
                    "tar archive",
                    offset,
                    "ends after an extension header with no member",
                ));
            }
            let mut b2 = [0u8; 512];
            let got2 = r.fill_upto(&mut b2, "tar end marker")?;
            let second_zero = got2 == 512 && b2.iter().all(|&c| c == 0);
            let (mut trailing, mut nonzero) = (0, false);
            if got2 > 0 && !second_zero {
                trailing = got2 as u64;
                nonzero = b2[..got2].iter().any(|&c| c != 0);
            }
            let (t, n) = r.rest("bytes after the tar end marker")?;
            return Ok(TarEnd {
                entries,
                end_offset: offset,
                zero_blocks: if second_zero { 2 } else { 1 },
                trailing: trailing + t,
                trailing_nonzero: nonzero || n,
            });
        }
        let stored = number(&b[148..156], "checksum", offset + 148)?;
        if !checksum_matches(&b, stored) {
            let (sum, _) = header_sums(&b);
            return Err(ReadError::invalid(
                "tar header checksum",
                offset + 148,
                format!("is 0{stored:o} but the header block sums to 0{sum:o}"),
            ));
        }
        let magic = String::from_utf8_lossy(&b[257..265]).into_owned();
        if !(b[257..262] == *b"ustar" || b[257..265].iter().all(|&c| c == 0)) {
            return Err(ReadError::invalid(
                "tar header magic",
                offset + 257,
                format!("is {magic:?}, not ustar"),
            ));
        }
        let typeflag = b[156];
        let size_field = number(&b[124..136], "size", offset + 124)?;
        match typeflag {
            b'L' | b'K' | b'x' | b'g' => {
                if size_field > MAX_EXTENSION {
                    return Err(ReadError::Limit {
                        what: "tar extension header size".into(),
                        offset: offset + 124,
                        value: size_field,
                        max: MAX_EXTENSION,
                    });
                }
                let data_at = r.pos;
                // Grown as bytes arrive: a header's size claim alone allocates nothing.
                let mut data = Vec::new();
                let got = r
                    .by_ref()
                    .take(size_field)
                    .read_to_end(&mut data)
                    .map_err(|source| ReadError::Io {
                        what: "tar extension header data".into(),
                        offset: data_at,
                        source,
                    })?;
                if (got as u64) < size_field {
                    return Err(ReadError::Truncated {
                        what: "tar extension header data".into(),
                        offset: data_at,
                        needed: size_field,
                        end: data_at + got as u64,
                    });
                }
                skip_padding(&mut r, size_field)?;
                match typeflag {
                    b'L' => long_name = Some(text(&data)),
                    b'K' => long_link = Some(text(&data)),
                    b'x' => local.extend(pax_records(&data, data_at)?),
                    _ => global.extend(pax_records(&data, data_at)?),
                }
                ext_offsets.push(offset);
                continue;
            }
            _ => {}
        }
        let name = text(&b[0..100]);
        let prefix = if b[257..263] == *b"ustar\0" {
            text(&b[345..500])
        } else {
            String::new()
        };
        let mut path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if let Some(l) = long_name.take() {
            path = l;
        }
        let mut link_name = text(&b[157..257]);
        if let Some(l) = long_link.take() {
            link_name = l;
        }
        let mut e = TarEntry {
            header_offset: offset,
            extension_offsets: std::mem::take(&mut ext_offsets),
            data_offset: r.pos,
            path,
            typeflag,
            mode: number(&b[100..108], "mode", offset + 100)?,
            uid: number(&b[108..116], "uid", offset + 108)?,
            gid: number(&b[116..124], "gid", offset + 116)?,
            size: size_field,
            mtime: i64::try_from(number(&b[136..148], "mtime", offset + 136)?).unwrap_or(i64::MAX),
            link_name,
            uname: text(&b[265..297]),
            gname: text(&b[297..329]),
            dev_major: number(&b[329..337], "device major", offset + 329)?,
            dev_minor: number(&b[337..345], "device minor", offset + 337)?,
            magic,
            checksum: stored as u32,
            pax: Vec::new(),
            raw: b.to_vec(),
        };
        let pax: Vec<(String, String)> = global
            .iter()
            .cloned()
            .chain(std::mem::take(&mut local))
            .collect();
        for (k, v) in &pax {
            let num = |v: &str| v.split('.').next().and_then(|s| s.parse::<i64>().ok());
            match k.as_str() {
                "path" => e.path = v.clone(),
                "linkpath" => e.link_name = v.clone(),
                "uname" => e.uname = v.clone(),
                "gname" => e.gname = v.clone(),
                "size" => {
                    e.size = num(v).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
                        ReadError::invalid("pax size", offset, format!("{v:?} is not a size"))
                    })?
                }
                "uid" => e.uid = num(v).and_then(|n| u64::try_from(n).ok()).unwrap_or(e.uid),
                "gid" => e.gid = num(v).and_then(|n| u64::try_from(n).ok()).unwrap_or(e.gid),
                "mtime" => e.mtime = num(v).unwrap_or(e.mtime),
                _ => {}
            }
        }
        e.pax = pax;
        let what = format!("tar member '{}' data", e.path);
        let size = e.size;
        r.section(size, &what, |data| visit(&e, data))?;
        skip_padding(&mut r, size)?;
        entries += 1;
    }
}

fn skip_padding<R: Read>(r: &mut Counted<R>, size: u64) -> Result<(), ReadError> {
    let pad = (BLOCK - size % BLOCK) % BLOCK;
    let mut buf = [0u8; 512];
    r.fill(&mut buf[..pad as usize], "tar data padding")
}
