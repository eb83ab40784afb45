//! The overlay a published apkovl holds, as `verify --rebuild` takes it: gzip, tar, the tree
//! and its host name, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = pimg::profile::overlay::from_apkovl(data, "fuzz.apkovl.tar.gz", "fuzz") {
        let _ = o.digest();
    }
});
