//! MBR and GPT readers on arbitrary disk images (the input is the whole disk).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = pimg::codec::partition::partitions(Cursor::new(data)) {
        for p in &t.partitions {
            let _ = pimg::codec::fat::read::FatVolume::open(Cursor::new(data), p.start, p.size);
        }
    }
    if let Ok(mut dev) = pimg::codec::reader::Device::new(Cursor::new(data), 0, data.len() as u64, "disk") {
        if let Ok(m) = pimg::codec::partition::mbr::read(&mut dev) {
            let _ = m.fields();
        }
        if let Ok(g) = pimg::codec::partition::gpt::read(&mut dev) {
            for h in [&g.primary, &g.backup].into_iter().flatten() {
                let _ = h.fields();
                let _ = h.problems();
            }
            for e in &g.entries {
                let _ = e.fields();
            }
        }
    }
});
