//! FAT reader on arbitrary volumes: boot sector, FATs, directory walk, every file's chain.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(mut v) = pimg::codec::fat::read::FatVolume::open(Cursor::new(data), 0, data.len() as u64)
    else {
        return;
    };
    let _ = v.boot.fields();
    for copy in 0..v.geometry.fat_count.min(4) {
        let _ = v.read_fat(copy);
    }
    let _ = v.label_entry();
    if let Ok(walk) = v.walk() {
        for (listing, entries) in walk.iter().take(64) {
            let _ = v.entries_in(listing);
            for e in entries.iter().take(64) {
                let _ = e.fields();
                if !e.is_dir {
                    let _ = v.sha256_file(e);
                }
            }
        }
    }
    let _ = v.read_file("boot/vmlinuz-rpi");
});
