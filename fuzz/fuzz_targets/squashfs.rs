//! squashfs reader: open, list, look up and read every file (with a limit).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pimg::codec::squashfs::read::Squashfs;

fuzz_target!(|data: &[u8]| {
    let Ok(mut fs) = Squashfs::open(std::io::Cursor::new(data), data.len() as u64) else {
        return;
    };
    let _ = fs.superblock().fields();
    let _ = fs.root();
    let Ok(list) = fs.entries() else {
        return;
    };
    for l in list.iter().take(256) {
        let _ = fs.lookup(&l.path);
        let _ = fs.read_file(l, 1 << 20);
    }
});
