//! gzip reader: header, inflate with an output cap, trailer check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let _ = pimg::codec::gzip::read::decompress(data);
    if let Ok(mut r) = pimg::codec::gzip::read::GzipReader::new(data, 1 << 20) {
        let _ = r.header().fields();
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        let _ = r.trailer().map(|t| t.fields());
        let mut small = [0u8; 7];
        let _ = r.read(&mut small);
    }
    let _ = pimg::codec::detect::detect(&mut std::io::Cursor::new(data));
});
