//! cpio newc reader, plain and behind gzip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pimg::codec::cpio::read::read(data, |h, d| {
        let _ = h.fields();
        let _ = std::io::copy(d, &mut std::io::sink());
        Ok(())
    });
    let _ = pimg::prove::inspect::archive(data, data.len() as u64);
});
