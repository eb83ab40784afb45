//! tar reader (ustar, GNU long names, pax), plain and behind gzip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pimg::codec::tar::read::pax_records(data, 0);
    let _ = pimg::codec::tar::read::read(data, |e, d| {
        let _ = e.fields();
        let _ = std::io::copy(d, &mut std::io::sink());
        Ok(())
    });
    let _ = pimg::prove::inspect::archive(data, data.len() as u64);
});
