//! The package readers: the bytes as a `.deb` (ar, control, data.tar in any compression) and
//! as an `.apk` (signature, control and data segments, datahash, the signature checked as
//! an untrusted build checks it), every member read through, and as a (signed) APKINDEX.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;

#[path = "../src/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let dir = scratch::folder("packages");
    let deb = scratch::write(&dir, "p_1_all.deb", data);
    let _ = pimg::inputs::deb::read_control(&deb);
    let _ = pimg::inputs::deb::scan_data(&deb, &mut |m, r| {
        let _ = m.kind.to_string();
        let _ = std::io::copy(&mut r.take(1 << 24), &mut std::io::sink());
        Ok(())
    });
    let apk = scratch::write(&dir, "p-1-r0.apk", data);
    let _ = pimg::inputs::apk::read_info(&apk);
    if let Ok(info) = pimg::inputs::apk::verify_bytes(&apk, data) {
        let trust = pimg::inputs::apk_keys::ApkTrust {
            allow_untrusted: true,
            ..Default::default()
        };
        let _ = trust.check(&apk, &info);
    }
    let _ = pimg::codec::apkindex::read_index(data);
    let _ = pimg::inputs::apk::scan_data::<pimg::inputs::apk::ApkError>(&apk, &mut |_, r| {
        let _ = std::io::copy(&mut r.take(1 << 24), &mut std::io::sink());
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
});
