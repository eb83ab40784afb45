//! What pimg reads of a boot partition before Linux: config.txt (with includes) through
//! `pimg check`, and the DTB that `pimg boot` fixes up for QEMU.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pimg::firmware::{self, MemFiles};
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    // The same bytes as config.txt, as an included file, as the kernel, the DTB and cmdline.txt.
    let mut files = BTreeMap::new();
    for name in ["config.txt", "usercfg.txt", "boot/vmlinuz-rpi", "x.dtb", "cmdline.txt"] {
        files.insert(name.to_string(), data.to_vec());
    }
    let models: Vec<&firmware::Model> = firmware::MODELS.iter().collect();
    let _ = firmware::check(&mut MemFiles(files), &models);

    let fixups: Vec<pimg::codec::fdt::Fixup> = [
        "delete /soc/clock@7ef00000",
        "delete /soc/mmc@7e300000:mmc-pwrseq",
        "keep /soc/watchdog@7e100000:reg 2",
    ]
    .iter()
    .map(|f| f.parse().unwrap())
    .collect();
    let mut dtb = data.to_vec();
    let _ = pimg::codec::fdt::apply(&mut dtb, &fixups);
    assert_eq!(dtb.len(), data.len());
});
