//! The Raspberry Pi models pimg knows, with what each one's boot ROM and firmware look for.

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
    /// The boot ROM loads `bootcode.bin` from the card (everything before the Pi 4).
    pub bootcode: bool,
    /// BCM2711: `start4*.elf`/`fixup4*.dat`.
    pub pi4: bool,
    /// The CPU runs a 64-bit kernel (`arm_64bit=1`).
    pub arm64: bool,
    /// The kernel file the firmware loads without `kernel=` in 32-bit mode.
    pub kernel32: &'static str,
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
        false,
        false,
        "kernel.img",
        "bcm2708-rpi-zero.dtb",
    ),
    model(
        "pi0w",
        "Zero W",
        0xc,
        &["pi0", "pi0w"],
        false,
        false,
        "kernel.img",
        "bcm2708-rpi-zero-w.dtb",
    ),
    model(
        "pi1a+",
        "1 A+",
        0x2,
        &["pi1"],
        false,
        false,
        "kernel.img",
        "bcm2708-rpi-b-plus.dtb",
    ),
    model(
        "pi1b+",
        "1 B+",
        0x3,
        &["pi1"],
        false,
        false,
        "kernel.img",
        "bcm2708-rpi-b-plus.dtb",
    ),
    model(
        "pi2b",
        "2 B",
        0x4,
        &["pi2"],
        false,
        false,
        "kernel7.img",
        "bcm2709-rpi-2-b.dtb",
    ),
    model(
        "pi3b",
        "3 B",
        0x8,
        &["pi3"],
        false,
        true,
        "kernel7.img",
        "bcm2710-rpi-3-b.dtb",
    ),
    model(
        "pi3b+",
        "3 B+",
        0xd,
        &["pi3", "pi3+"],
        false,
        true,
        "kernel7.img",
        "bcm2710-rpi-3-b-plus.dtb",
    ),
    model(
        "pi3a+",
        "3 A+",
        0xe,
        &["pi3", "pi3+"],
        false,
        true,
        "kernel7.img",
        "bcm2710-rpi-3-b-plus.dtb",
    ),
    model(
        "pi02w",
        "Zero 2 W",
        0x12,
        &["pi0", "pi02"],
        false,
        true,
        "kernel7.img",
        "bcm2710-rpi-zero-2-w.dtb",
    ),
    model(
        "pi4b",
        "4 B",
        0x11,
        &["pi4"],
        true,
        true,
        "kernel7l.img",
        "bcm2711-rpi-4-b.dtb",
    ),
    model(
        "pi400",
        "400",
        0x13,
        &["pi4", "pi400"],
        true,
        true,
        "kernel7l.img",
        "bcm2711-rpi-400.dtb",
    ),
    model(
        "cm4",
        "Compute Module 4",
        0x14,
        &["pi4", "cm4"],
        true,
        true,
        "kernel7l.img",
        "bcm2711-rpi-cm4.dtb",
    ),
];

#[allow(clippy::too_many_arguments)]
const fn model(
    id: &'static str,
    name: &'static str,
    board_type: u32,
    filters: &'static [&'static str],
    pi4: bool,
    arm64: bool,
    kernel32: &'static str,
    default_dtb: &'static str,
) -> Model {
    Model {
        id,
        name,
        board_type,
        filters,
        bootcode: !pi4,
        pi4,
        arm64,
        kernel32,
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
