//! A stranger's published folder: SHA256SUMS, a buildinfo and one more file (the input's three
//! NUL-separated parts), read as `pimg verify DIR` reads them. Every name in them is hostile.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let names = ["SHA256SUMS", "rpi3b.buildinfo.json", "rpi3b.img"];
    let dir = scratch::folder_of_parts("published", data, names);
    let [sums, _, _] = scratch::parts(data);
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
