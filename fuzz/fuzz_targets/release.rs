//! The readers of release outputs: the bmap parser and range check, and the xz, zstd and gzip
//! decoders with an output cap, on the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pimg::codec::{bmap, release::Compression};

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = bmap::parse(data, "fuzz.bmap") {
        let _ = map.blocks();
        // The ranges are inside the claimed image; check them against a short one.
        let image = vec![0u8; 64 * 1024];
        let _ = bmap::mismatches(&map, &mut std::io::Cursor::new(&image));
    }
    for c in Compression::ALL {
        let _ = c.decompress_to(data, std::io::sink(), 1 << 20, "fuzz");
    }
});
