//! Structural diff of two archives: the input is split at its first byte's proportion.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = rest.len() * usize::from(cut) / 256;
    let (a, b) = rest.split_at(at);
    let r = pimg::prove::diff::diff_buffers("a", "b", a, b);
    let _ = r.render();
});
