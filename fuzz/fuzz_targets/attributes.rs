//! The overlay loader: the input's first part as an overlay's `.attributes`, its second as
//! `etc/hostname`, in an overlay folder with a few files to name.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    // The third part is a file for `.attributes` to name.
    let names = [".attributes", "etc/hostname", "etc/shadow"];
    let dir = scratch::folder_of_parts("attributes", data, names);
    scratch::write(&dir, "root/.keep", b"");
    if let Ok(o) = pimg::profile::overlay::load(dir.to_str().unwrap()) {
        let _ = o.digest();
    }
    let _ = std::fs::remove_dir_all(&dir);
});
