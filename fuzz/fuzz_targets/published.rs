//! A stranger's published folder: SHA256SUMS, a buildinfo and one more file (the input's three
//! NUL-separated parts), read as `pimg verify DIR` reads them. Every name in them is hostile.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let dir = scratch::folder("published");
    let [sums, info, image] = scratch::parts(data);
    scratch::write(&dir, "SHA256SUMS", sums);
    scratch::write(&dir, "rpi3b.buildinfo.json", info);
    scratch::write(&dir, "rpi3b.img", image);
    let _ = pimg::prove::verify::parse_sums(&dir.join("SHA256SUMS"));
    let _ = pimg::prove::verify::load_buildinfo(&dir.join("rpi3b.buildinfo.json"));
    let _ = pimg::prove::verify::check_dir(&dir);
    for line in String::from_utf8_lossy(sums).lines() {
        if let Some(name) = line.split_whitespace().last() {
            let _ = pimg::prove::open::bad_name(name);
            let _ = pimg::prove::open::inside(&dir, name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
