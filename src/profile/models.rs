//! The Raspberry Pi models pimg knows, with what each one's boot ROM and firmware look for.
//!
//! Not here yet: the Pi 500 (board type 0x19) and the CM5 (0x18). Debian 13's arm64 kernel
//! ships no device tree for either (its only BCM2712 tree is `bcm2712-rpi-5-b.dtb`), so no
//! profile could serve them.

/// What must be on the card before the firmware reads `config.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// The boot ROM loads `bootcode.bin`, which loads `start*.elf`/`fixup*.dat` (BCM2835..2837).
    Bootcode,
    /// The EEPROM's bootloader loads `start4*.elf`/`fixup4*.dat` (BCM2711).
    Start4,
    /// The EEPROM holds the bootloader and the firmware itself (BCM2712): nothing before
    /// `config.txt` comes from the card.
    Eeprom,
}

impl Firmware {
    /// The boot ROM reads `bootcode.bin` from the card.
    pub fn bootcode(self) -> bool {
        self == Firmware::Bootcode
    }

    /// The boot loader reads GPT disks (only the EEPROM bootloaders do).
    pub fn reads_gpt(self) -> bool {
        self != Firmware::Bootcode
    }
}

/// Which kernels the firmware starts and what it loads without `kernel=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// A 32-bit CPU: always 32-bit mode, this kernel by default.
    Only32(&'static str),
    /// 32-bit mode with this kernel by default; 64-bit mode (`kernel8.img`) with `arm_64bit=1`.
    Either(&'static str),
    /// Only 64-bit mode, whatever `arm_64bit` says: the first of these that exists by default.
    Only64(&'static [&'static str]),
}

impl Kernel {
    /// The CPU runs a 64-bit kernel.
    pub fn arm64(self) -> bool {
        !matches!(self, Kernel::Only32(_))
    }
}

/// A board model, with what its boot ROM and firmware look for by default.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The name profiles use (`[board] models`).
    pub id: &'static str,
    pub name: &'static str,
    /// The firmware's board type (revision code bits 4..11), for `[board-type=0x..]`.
    pub board_type: u32,
    /// The `[piN]` conditional filters that match it.
    pub filters: &'static [&'static str],
    pub firmware: Firmware,
    pub kernel: Kernel,
    /// The firmware's own device tree name (Raspberry Pi's kernel names, not mainline's).
    pub default_dtb: &'static str,
}

/// Every model pimg knows.
pub const MODELS: &[Model] = &[
    model(
        "pi0",
        "Zero",
        0x9,
        &["pi0"],
        Firmware::Bootcode,
        Kernel::Only32("kernel.img"),
        "bcm2708-rpi-zero.dtb",
    ),
    model(
        "pi0w",
        "Zero W",
        0xc,
        &["pi0", "pi0w"],
        Firmware::Bootcode,
        Kernel::Only32("kernel.img"),
        "bcm2708-rpi-zero-w.dtb",
    ),
    model(
        "pi1a+",
        "1 A+",
        0x2,
        &["pi1"],
        Firmware::Bootcode,
        Kernel::Only32("kernel.img"),
        "bcm2708-rpi-b-plus.dtb",
    ),
    model(
        "pi1b+",
        "1 B+",
        0x3,
        &["pi1"],
        Firmware::Bootcode,
        Kernel::Only32("kernel.img"),
        "bcm2708-rpi-b-plus.dtb",
    ),
    model(
        "pi2b",
        "2 B",
        0x4,
        &["pi2"],
        Firmware::Bootcode,
        Kernel::Only32("kernel7.img"),
        "bcm2709-rpi-2-b.dtb",
    ),
    model(
        "pi3b",
        "3 B",
        0x8,
        &["pi3"],
        Firmware::Bootcode,
        Kernel::Either("kernel7.img"),
        "bcm2710-rpi-3-b.dtb",
    ),
    model(
        "pi3b+",
        "3 B+",
        0xd,
        &["pi3", "pi3+"],
        Firmware::Bootcode,
        Kernel::Either("kernel7.img"),
        "bcm2710-rpi-3-b-plus.dtb",
    ),
    model(
        "pi3a+",
        "3 A+",
        0xe,
        &["pi3", "pi3+"],
        Firmware::Bootcode,
        Kernel::Either("kernel7.img"),
        "bcm2710-rpi-3-b-plus.dtb",
    ),
    model(
        "pi02w",
        "Zero 2 W",
        0x12,
        &["pi0", "pi02"],
        Firmware::Bootcode,
        Kernel::Either("kernel7.img"),
        "bcm2710-rpi-zero-2-w.dtb",
    ),
    model(
        "pi4b",
        "4 B",
        0x11,
        &["pi4"],
        Firmware::Start4,
        Kernel::Either("kernel7l.img"),
        "bcm2711-rpi-4-b.dtb",
    ),
    model(
        "pi400",
        "400",
        0x13,
        &["pi4", "pi400"],
        Firmware::Start4,
        Kernel::Either("kernel7l.img"),
        "bcm2711-rpi-400.dtb",
    ),
    model(
        "cm4",
        "Compute Module 4",
        0x14,
        &["pi4", "cm4"],
        Firmware::Start4,
        Kernel::Either("kernel7l.img"),
        "bcm2711-rpi-cm4.dtb",
    ),
    // kernel_2712.img is Raspberry Pi's own build for the BCM2712 (16K pages); without it the
    // firmware takes the common kernel8.img. Its device tree has the same name in mainline.
    model(
        "pi5",
        "5",
        0x17,
        &["pi5"],
        Firmware::Eeprom,
        Kernel::Only64(&["kernel_2712.img", "kernel8.img"]),
        "bcm2712-rpi-5-b.dtb",
    ),
];

const fn model(
    id: &'static str,
    name: &'static str,
    board_type: u32,
    filters: &'static [&'static str],
    firmware: Firmware,
    kernel: Kernel,
    default_dtb: &'static str,
) -> Model {
    Model {
        id,
        name,
        board_type,
        filters,
        firmware,
        kernel,
        default_dtb,
    }
}

/// The model with this id.
pub fn model_by_id(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// The ids of every known model, for error messages.
pub fn model_ids() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}
