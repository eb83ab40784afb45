//! `pimg boot`: start an image under QEMU's Raspberry Pi machine and watch the serial console
//! for the milestones of `qemu/README.md`; with the self-check switch, compare what the
//! booted system hashed on its boot media with what the image and the buildinfo say.
//!
//! The kernel, DTB and initramfs are taken out of the image's own FAT partition, so a passing
//! boot proves the partition holds a bootable set. The image itself is never modified.

use crate::artifact::buildinfo::Buildinfo;
use crate::codec::reader::ReadError;
use crate::digest::hex;
use crate::profile::board::{self, LoadedProfile};
use crate::prove::image::BootPartition;
use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The kernel command-line switch that makes the initramfs run its self-check and stop.
pub const SELFCHECK_SWITCH: &str = "pimg.selfcheck=1";

/// How to boot.
#[derive(Debug, Clone)]
pub struct BootRequest {
    pub image: PathBuf,
    /// Board name or profile path; else taken from `<image>.buildinfo.json` beside the image.
    pub board: Option<String>,
    /// QEMU machine; the profile's when absent.
    pub machine: Option<String>,
    pub timeout: Duration,
    /// Where to keep the full console log.
    pub log: Option<PathBuf>,
    /// Extra console milestones (regular expressions), in order; with any, the self-check is
    /// not requested (the initramfs may not be pimg's).
    pub expect: Vec<String>,
    pub files: BootFiles,
    /// Attach the console to the terminal instead of checking milestones.
    pub interactive: bool,
}

/// Paths inside the boot partition that override the profile's `[[qemu]]` entry.
#[derive(Debug, Clone, Default)]
pub struct BootFiles {
    pub kernel: Option<String>,
    pub dtb: Option<String>,
    pub initrd: Option<String>,
}

/// Why a boot could not be attempted or judged.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{image}: {source}")]
    Image { image: String, source: ReadError },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Board(#[from] board::BoardError),
    #[error(
        "{image}: no board given and no buildinfo beside the image ({buildinfo}); pass --board NAME"
    )]
    NoBoard { image: String, buildinfo: String },
    #[error("{image}: the boot partition has no {path} (the {what} that {source_of} names); the image cannot boot")]
    MissingFile {
        image: String,
        path: String,
        what: &'static str,
        source_of: String,
    },
    #[error("{image}: the boot partition holds {count} apkovl files at its top level ({names}); the initramfs refuses more than one")]
    Apkovl {
        image: String,
        count: usize,
        names: String,
    },
    #[error("{binary} not found: install QEMU with `apt-get install qemu-system-arm` (or run qemu/setup.sh)")]
    QemuMissing { binary: String },
    #[error("starting {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("--expect '{pattern}' is not a valid regular expression: {message}")]
    BadExpect { pattern: String, message: String },
    #[error("the board profile {board} names no QEMU machine: QEMU does not emulate this board, so pimg cannot boot it; `pimg check IMAGE` checks what its firmware reads from the card")]
    NoMachine { board: String },
    #[error("{image}: {dtb}: {source} (the board profile's qemu dtb_fixups do not fit this device tree)")]
    DtbFixup {
        image: String,
        dtb: String,
        source: crate::codec::fdt::FdtError,
    },
    #[error("interrupted; QEMU was stopped")]
    Interrupted,
}

impl BootError {
    /// 2 for problems found before QEMU started, 130 for Ctrl-C.
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Interrupted => 130,
            _ => 2,
        }
    }
}

/// One milestone and when it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct MilestoneResult {
    pub name: String,
    /// Milliseconds from QEMU's start; absent when never seen.
    pub at_ms: Option<u64>,
    /// The console line that matched (or what happened).
    pub line: Option<String>,
}

/// What the self-check compared.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SelfCheck {
    /// Boot-partition files the guest hashed.
    pub boot_files: usize,
    /// Overlay files the guest hashed.
    pub overlay_files: usize,
    /// Whether the buildinfo beside the image was compared too.
    pub against_buildinfo: bool,
    /// The modloop, which the guest proves by mounting it, counting its modules and loading
    /// one; its bytes are checked against the buildinfo by pimg's FAT reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modloop: Option<String>,
    /// Every disagreement, one line each.
    pub mismatches: Vec<String>,
}

/// The verdict of a boot.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    pub image: String,
    pub machine: String,
    /// Device tree fix-ups QEMU's copy of the DTB got (devices QEMU does not emulate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dtb_fixups: Vec<String>,
    pub milestones: Vec<MilestoneResult>,
    pub selfcheck: Option<SelfCheck>,
    /// The first milestone not reached, or the failure the guest reported.
    pub failure: Option<String>,
    pub wall_ms: u64,
    pub log: Option<String>,
    /// The last console lines, for a failed boot.
    pub tail: Vec<String>,
    /// Why the first boot was not the verdict: the guest stalled (no console output and
    /// QEMU idle), so it was booted once more and this report is the second boot's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried_after: Option<String>,
    /// The guest stalled in this boot (see [`STALL_AFTER`]).
    #[serde(skip)]
    pub stalled: bool,
}

impl BootReport {
    /// True when every milestone was seen and the self-check (if any) matched.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

struct Milestone {
    name: String,
    pattern: Regex,
    seen: Option<(Duration, String)>,
}

fn milestone(name: &str, pattern: &str) -> Milestone {
    Milestone {
        name: name.into(),
        pattern: Regex::new(pattern).expect("static pattern"),
        seen: None,
    }
}

/// What the image says it holds, read on the host before QEMU starts.
struct Expected {
    /// Boot-partition files as read by pimg's FAT reader: path → sha256.
    listing: BTreeMap<String, String>,
    /// From the buildinfo beside the image, when present: path → sha256.
    buildinfo: Option<BTreeMap<String, String>>,
    /// Files inside the apkovl: path → sha256.
    overlay: BTreeMap<String, String>,
    hostname: Option<String>,
    /// The modloop's path: the guest mounts it rather than hashing it.
    modloop: Option<String>,
}

/// The QEMU binary for a board architecture.
fn qemu_binary(arch: &str) -> &'static str {
    match arch {
        "aarch64" | "arm64" => "qemu-system-aarch64",
        _ => "qemu-system-arm",
    }
}

// QEMU is found on PATH as a shell would find it.
#[allow(clippy::disallowed_methods)]
fn find_in_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

fn buildinfo_path(image: &Path) -> PathBuf {
    image.with_extension("buildinfo.json")
}

/// Refuses a board QEMU does not emulate (its profile names no machine), before anything is
/// read or started.
pub fn require_machine(p: &board::BoardProfile) -> Result<(), BootError> {
    if p.qemu.is_empty() {
        return Err(BootError::NoMachine {
            board: p.board.name.clone(),
        });
    }
    Ok(())
}

/// A guest that prints nothing for this long while QEMU uses almost no CPU has stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(30);
/// QEMU's CPU time over a [`STALL_AFTER`] window below which it counts as idle.
const IDLE_CPU: Duration = Duration::from_millis(500);

/// Boots the image and returns the verdict; errors are problems found before the verdict.
/// A guest that stalls (now and then under QEMU's Raspberry Pi machines one stops early in
/// its kernel log with QEMU idle, and the same image boots the next time) is reported as
/// stalled and booted once more; the report says so.
pub fn boot(req: &BootRequest, progress: &dyn Fn(&str)) -> Result<BootReport, BootError> {
    let first = boot_once(req, progress)?;
    if !first.stalled {
        return Ok(first);
    }
    let why = first.failure.clone().unwrap_or_default();
    progress(&format!("{why}; booting once more"));
    let mut second = boot_once(req, progress)?;
    second.retried_after = Some(match &first.log {
        Some(log) => format!("{why} (log {log})"),
        None => why,
    });
    Ok(second)
}

/// Whether QEMU must run `machine` on an instruction-counted clock. The ARM1176 machines
/// (raspi0, raspi1ap) have no generic timer, so Linux schedules its timer interrupts on the
/// BCM2835 system timer: it reads the 1 MHz counter and writes counter + delta to a compare
/// register. QEMU takes that counter from its virtual clock, which follows the host's clock
/// while the guest runs; when QEMU is descheduled between the guest's read and its write, the
/// compare value is already past, QEMU's model waits for the 32-bit counter to come round
/// (71.6 minutes) and the guest sits idle, mid-boot. `-icount` derives the virtual clock from
/// the instructions executed, so the few instructions between read and write take
/// nanoseconds, far below the driver's 15 µs minimum delta. The other machines use the ARM
/// generic timer and run without it.
fn machine_counts_instructions(machine: &str) -> bool {
    matches!(machine, "raspi0" | "raspi1ap")
}

/// Whether QEMU runs `machine`'s emulated cores in one host thread, in turn. On the 64-bit
/// machines, with a thread per core (QEMU's default), each broadcast TLB invalidation of the
/// booting kernel waits for every other core's thread to stop while the secondary cores spin
/// on their release address: on the 2-core host the arm64 kernel took 9 to 63 s to reach
/// init, and 5 s with one thread. The 32-bit raspi2b is the other way round: its armmp
/// kernel reached init in 24 s with a thread per core and ran about 4 times slower in guest
/// time with one thread. (`-icount` implies one thread.)
fn machine_runs_one_thread(machine: &str) -> bool {
    matches!(machine, "raspi3ap" | "raspi3b" | "raspi4b")
}

/// QEMU's CPU time so far (user + system), from /proc; `None` where there is no /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture.
    Some(Duration::from_millis(ticks * 10))
}

// `pimg boot` hands QEMU the kernel, DTB and initramfs as files in its own temporary folder, and writes the --log file the user asked for.
#[allow(clippy::disallowed_methods)]
fn boot_once(req: &BootRequest, progress: &dyn Fn(&str)) -> Result<BootReport, BootError> {
    let image_name = req.image.display().to_string();
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| BootError::Io { path, source }
    };
    let buildinfo_file = buildinfo_path(&req.image);
    let buildinfo: Option<Buildinfo> = crate::prove::open::read_buildinfo_beside(&req.image);
    let loaded: LoadedProfile = match (&req.board, &buildinfo) {
        (Some(b), _) => board::load(b)?,
        (None, Some(info)) => board::load(&info.board.name)?,
        (None, None) => {
            return Err(BootError::NoBoard {
                image: image_name,
                buildinfo: buildinfo_file.display().to_string(),
            })
        }
    };
    let p = &loaded.profile;
    require_machine(p)?;
    // A named entry of the profile, or another machine with the first entry's boot set.
    let q = p.qemu_entry(req.machine.as_deref()).unwrap_or(&p.qemu[0]);
    let machine = match &req.machine {
        Some(m) if p.qemu_entry(Some(m)).is_none() => m.clone(),
        _ => q.machine.clone(),
    };
    let binary = qemu_binary(&loaded.profile.board.arch);
    let binary_path = find_in_path(binary).ok_or(BootError::QemuMissing {
        binary: binary.into(),
    })?;

    // Read the boot set and the listing out of the image with pimg's own readers.
    progress("reading the boot partition");
    let image_err = |source| BootError::Image {
        image: image_name.clone(),
        source,
    };
    let mut part = BootPartition::open(&req.image).map_err(image_err)?;
    let source_of = format!("board profile {}", loaded.origin);
    let mut take = |path: &str, what: &'static str| -> Result<Vec<u8>, BootError> {
        match part.read_file(path).map_err(image_err)? {
            Some(data) => Ok(data),
            None => Err(BootError::MissingFile {
                image: image_name.clone(),
                path: path.to_string(),
                what,
                source_of: source_of.clone(),
            }),
        }
    };
    let kernel = take(req.files.kernel.as_deref().unwrap_or(&q.kernel), "kernel")?;
    let dtb_name = req.files.dtb.as_deref().unwrap_or(&q.dtb);
    let mut dtb = take(dtb_name, "device tree")?;
    // The profile's fix-ups for devices QEMU lacks, on QEMU's copy only (not with --dtb).
    let dtb_fixups = if req.files.dtb.is_none() {
        q.fixups()
    } else {
        Vec::new()
    };
    crate::codec::fdt::apply(&mut dtb, &dtb_fixups).map_err(|source| BootError::DtbFixup {
        image: image_name.clone(),
        dtb: dtb_name.to_string(),
        source,
    })?;
    let initrd = take(
        req.files.initrd.as_deref().unwrap_or(&q.initrd),
        "initramfs",
    )?;
    let cmdline_txt = take("cmdline.txt", "kernel command line")?;
    let selfcheck = !req.interactive && req.expect.is_empty();
    let expected = if selfcheck {
        let modloop = p
            .modloop
            .as_ref()
            .map(|m| m.path.trim_matches('/').to_string());
        Some(expected_state(
            &mut part,
            &image_name,
            buildinfo.as_ref(),
            modloop,
        )?)
    } else {
        None
    };

    // The kernel command line: cmdline.txt, then the emulated serial console, a log level that
    // shows the kernel's banner, and the self-check switch.
    let first_line = String::from_utf8_lossy(&cmdline_txt)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut cmdline = format!("{first_line} {}", q.console);
    if !req.interactive {
        cmdline.push_str(" loglevel=6");
    }
    if selfcheck {
        cmdline.push(' ');
        cmdline.push_str(SELFCHECK_SWITCH);
    }

    let work = tempdir(&req.image).map_err(io_err(&req.image))?;
    let kernel_path = work.path.join("kernel");
    let dtb_path = work.path.join("dtb");
    let initrd_path = work.path.join("initrd");
    for (p, data) in [
        (&kernel_path, &kernel),
        (&dtb_path, &dtb),
        (&initrd_path, &initrd),
    ] {
        fs::write(p, data).map_err(io_err(p))?;
    }
    // QEMU's SD card must be a power of two: boot a padded copy, never the image itself.
    let size = fs::metadata(&req.image).map_err(io_err(&req.image))?.len();
    let drive = if size.is_power_of_two() {
        req.image.clone()
    } else {
        let copy = work.path.join("sd.img");
        fs::copy(&req.image, &copy).map_err(io_err(&copy))?;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .map_err(io_err(&copy))?;
        f.set_len(size.next_power_of_two()).map_err(io_err(&copy))?;
        copy
    };

    let mut cmd = Command::new(&binary_path);
    cmd.args(["-M", &machine, "-m", &q.memory])
        .arg("-kernel")
        .arg(&kernel_path)
        .arg("-dtb")
        .arg(&dtb_path)
        .arg("-initrd")
        .arg(&initrd_path)
        .args(["-append", &cmdline])
        .arg("-drive")
        .arg(format!("file={},if=sd,format=raw", drive.display()))
        // Guest writes go to a temporary overlay; the image file is never written.
        .args([
            "-snapshot",
            "-display",
            "none",
            "-no-reboot",
            "-nic",
            "none",
        ]);
    if machine_counts_instructions(&machine) {
        cmd.args(["-icount", "shift=auto"]);
    } else if machine_runs_one_thread(&machine) {
        cmd.args(["-accel", "tcg,thread=single"]);
    }
    if req.interactive {
        cmd.args(["-serial", "mon:stdio", "-monitor", "none"]);
        eprintln!("pimg: console attached; press Ctrl-A X to quit QEMU");
        let status = cmd.status().map_err(|source| BootError::Spawn {
            binary: binary.into(),
            source,
        })?;
        return Ok(BootReport {
            image: image_name,
            machine,
            dtb_fixups: dtb_fixups.iter().map(|f| f.to_string()).collect(),
            milestones: Vec::new(),
            selfcheck: None,
            failure: (!status.success()).then(|| format!("QEMU exited with {status}")),
            wall_ms: 0,
            log: None,
            tail: Vec::new(),
            retried_after: None,
            stalled: false,
        });
    }
    cmd.args(["-serial", "stdio", "-monitor", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let mut milestones = vec![milestone(
        "kernel started",
        r"Linux version \S+|Booting Linux on",
    )];
    if selfcheck {
        milestones.extend([
            milestone("init started", r"^pimg: init started"),
            milestone("boot media mounted", r"^pimg: boot media mounted (\S+)"),
            milestone(
                "apkovl applied",
                r"^pimg: apkovl applied (\S+) hostname=(\S*)",
            ),
        ]);
        if p.modloop.is_some() {
            milestones.push(milestone(
                "modloop mounted",
                r"^pimg: modloop mounted (\S+) modules=(\d+)",
            ));
        }
        milestones.push(milestone(
            "self-check",
            r"^pimg: selfcheck done files=(\d+)",
        ));
        // Not anchored: init starts the console's getty and these markers together, and the
        // getty's `login:` prompt (no newline) may come first on the same line.
        if p.modloop.as_ref().is_some_and(|m| m.check_module.is_some()) {
            milestones.push(milestone(
                "module loaded from the modloop",
                r"pimg: modloop module loaded (\S+) firmware=(\d+)",
            ));
        }
        milestones.push(milestone("userspace ready", r"pimg: userspace ready"));
    }
    for pattern in &req.expect {
        let re = Regex::new(pattern).map_err(|e| BootError::BadExpect {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        milestones.push(Milestone {
            name: format!("expect /{pattern}/"),
            pattern: re,
            seen: None,
        });
    }

    // One handler for the process (a second boot reuses it); a failure to install it only
    // loses Ctrl-C handling.
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
    let interrupted = &INTERRUPTED;

    progress(&format!("booting under {binary} -M {machine}"));
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| BootError::Spawn {
        binary: binary.into(),
        source,
    })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<(Duration, String)>();
    let tx_err = tx.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while let Ok(n) = r.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if tx.send((start.elapsed(), line)).is_err() {
                break;
            }
            buf.clear();
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx_err.send((start.elapsed(), format!("[qemu] {line}")));
        }
    });

    let mut log_lines: Vec<String> = Vec::new();
    let mut guest_boot: BTreeMap<String, String> = BTreeMap::new();
    let mut guest_overlay: BTreeMap<String, String> = BTreeMap::new();
    let mut failure: Option<String> = None;
    let mut guest_hostname: Option<String> = None;
    let mut stopped_by_itself = false;
    let mut stalled = false;
    let deadline = start + req.timeout;
    // The start of the current silent window and QEMU's CPU time then.
    let mut quiet_since = (Instant::now(), cpu_time(child.id()));
    loop {
        if interrupted.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BootError::Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            failure.get_or_insert_with(|| format!("timed out after {} s", req.timeout.as_secs()));
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(200))) {
            Ok((at, line)) => {
                quiet_since = (Instant::now(), None);
                for m in milestones.iter_mut().filter(|m| m.seen.is_none()) {
                    if let Some(c) = m.pattern.captures(&line) {
                        if m.name == "apkovl applied" {
                            guest_hostname = c.get(2).map(|h| h.as_str().to_string());
                        }
                        m.seen = Some((at, line.clone()));
                        progress(&format!("{} ({:.1} s)", m.name, at.as_secs_f64()));
                    }
                }
                if let Some(rest) = line.strip_prefix("pimg: sha256 ") {
                    if let Some((h, p)) = rest.split_once(' ') {
                        guest_boot.insert(p.to_string(), h.to_string());
                    }
                } else if let Some(rest) = line.strip_prefix("pimg: ovl-sha256 ") {
                    if let Some((h, p)) = rest.split_once(' ') {
                        guest_overlay.insert(p.to_string(), h.to_string());
                    }
                } else if let Some(msg) = line.strip_prefix("pimg: FAILED: ") {
                    failure.get_or_insert_with(|| format!("the guest reported: {msg}"));
                } else if line.contains("Kernel panic") {
                    failure.get_or_insert_with(|| format!("the kernel panicked: {line}"));
                }
                log_lines.push(line);
                if failure.is_some() {
                    break;
                }
                // A foreign image does not stop itself: stop once every expectation is met.
                if !selfcheck && milestones.iter().all(|m| m.seen.is_some()) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (since, cpu_then) = quiet_since;
                if since.elapsed() >= STALL_AFTER {
                    let cpu_now = cpu_time(child.id());
                    let idle = match (cpu_then, cpu_now) {
                        (Some(then), Some(now)) => now.saturating_sub(then) < IDLE_CPU,
                        _ => false,
                    };
                    if idle {
                        stalled = true;
                        failure = Some(format!(
                            "guest stalled at {:?}: no console output and QEMU idle for {} s",
                            log_lines
                                .last()
                                .map(String::as_str)
                                .unwrap_or("(no output)"),
                            STALL_AFTER.as_secs()
                        ));
                        break;
                    }
                    quiet_since = (Instant::now(), cpu_now);
                } else if cpu_then.is_none() {
                    quiet_since.1 = cpu_time(child.id());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                stopped_by_itself = true;
                break;
            }
        }
    }
    if !stopped_by_itself {
        let _ = child.kill();
    }
    let status = child.wait().ok();
    let wall = start.elapsed();

    let mut results: Vec<MilestoneResult> = milestones
        .iter()
        .map(|m| MilestoneResult {
            name: m.name.clone(),
            at_ms: m.seen.as_ref().map(|(t, _)| t.as_millis() as u64),
            line: m.seen.as_ref().map(|(_, l)| l.clone()),
        })
        .collect();
    if selfcheck {
        results.push(MilestoneResult {
            name: "machine stopped".into(),
            at_ms: stopped_by_itself.then_some(wall.as_millis() as u64),
            line: status.map(|s| format!("QEMU exited: {s}")),
        });
    }
    if failure.is_none() {
        if let Some(missing) = results.iter().find(|m| m.at_ms.is_none()) {
            failure = Some(format!("milestone not reached: {}", missing.name));
        }
    }
    if failure.is_none() {
        if let Some(info) = buildinfo.as_ref().and_then(|b| b.modloop.as_ref()) {
            failure = modloop_counts(&results, info);
        }
    }

    let check =
        expected.map(|exp| compare(&exp, &guest_boot, &guest_overlay, guest_hostname.as_deref()));
    if let Some(c) = &check {
        if failure.is_none() && !c.mismatches.is_empty() {
            failure = Some(format!("self-check: {}", c.mismatches[0]));
        }
    }

    // Keep the full log: where asked, else (on failure) in a file named in the report.
    let log_path = match (&req.log, failure.is_some()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            Some(std::env::temp_dir().join(format!("pimg-boot-{}.log", std::process::id())))
        }
        (None, false) => None,
    };
    if let Some(p) = &log_path {
        let mut f = fs::File::create(p).map_err(io_err(p))?;
        for l in &log_lines {
            writeln!(f, "{l}").map_err(io_err(p))?;
        }
    }
    let tail = if failure.is_some() {
        log_lines[log_lines.len().saturating_sub(25)..].to_vec()
    } else {
        Vec::new()
    };
    Ok(BootReport {
        image: image_name,
        machine,
        dtb_fixups: dtb_fixups.iter().map(|f| f.to_string()).collect(),
        milestones: results,
        selfcheck: check,
        failure,
        wall_ms: wall.as_millis() as u64,
        log: log_path.map(|p| p.display().to_string()),
        tail,
        retried_after: None,
        stalled,
    })
}

/// What the booted system counted in the modloop against what the buildinfo records.
fn modloop_counts(
    results: &[MilestoneResult],
    info: &crate::artifact::buildinfo::BuildinfoModloop,
) -> Option<String> {
    let count = |name: &str, key: &str| {
        let line = results.iter().find(|m| m.name == name)?.line.as_deref()?;
        let at = line.find(key)? + key.len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u64>()
            .ok()
    };
    if let Some(n) = count("modloop mounted", "modules=") {
        if n != info.modules {
            return Some(format!(
                "modloop {}: the booted system found {n} modules, the buildinfo records {}",
                info.path, info.modules
            ));
        }
    }
    if let Some(n) = count("module loaded from the modloop", "firmware=") {
        if n != info.firmware.len() as u64 {
            return Some(format!(
                "modloop {}: the booted system sees {n} firmware files, the buildinfo records {}",
                info.path,
                info.firmware.len()
            ));
        }
    }
    None
}

fn expected_state(
    part: &mut BootPartition,
    image: &str,
    buildinfo: Option<&Buildinfo>,
    modloop: Option<String>,
) -> Result<Expected, BootError> {
    let image_err = |source| BootError::Image {
        image: image.to_string(),
        source,
    };
    let mut listing = BTreeMap::new();
    for path in part.file_paths().map_err(image_err)? {
        let h = part.sha256(&path).map_err(image_err)?;
        listing.insert(path, h);
    }
    let buildinfo = buildinfo.map(|info| {
        info.boot_partition
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect::<BTreeMap<_, _>>()
    });
    let apkovls: Vec<&String> = listing
        .keys()
        .filter(|p| !p.contains('/') && p.ends_with(".apkovl.tar.gz"))
        .collect();
    if apkovls.len() > 1 {
        return Err(BootError::Apkovl {
            image: image.to_string(),
            count: apkovls.len(),
            names: apkovls
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut overlay = BTreeMap::new();
    let mut hostname = None;
    if let Some(name) = apkovls.first() {
        let data = part.read_file(name).map_err(image_err)?.unwrap_or_default();
        for (path, content) in apkovl_files(&data).map_err(image_err)? {
            if path == "etc/hostname" {
                hostname = String::from_utf8_lossy(&content)
                    .lines()
                    .next()
                    .map(|s| s.trim().to_string());
            }
            overlay.insert(path, hex(&Sha256::digest(&content)));
        }
    }
    Ok(Expected {
        listing,
        buildinfo,
        overlay,
        hostname,
        modloop,
    })
}

/// Compares the guest's view with the host's: same files, same hashes, same host name.
fn compare(
    exp: &Expected,
    guest_boot: &BTreeMap<String, String>,
    guest_overlay: &BTreeMap<String, String>,
    guest_hostname: Option<&str>,
) -> SelfCheck {
    let mut mismatches = Vec::new();
    // Reading the whole modloop through QEMU's SD card would take the guest about a minute:
    // it is left out of the guest's hashes and its bytes compared here.
    let mut listing = exp.listing.clone();
    let mut recorded = exp.buildinfo.clone();
    if let Some(path) = &exp.modloop {
        let on_card = listing.remove(path);
        let in_buildinfo = recorded.as_mut().and_then(|b| b.remove(path));
        match (on_card, in_buildinfo) {
            (None, _) => mismatches.push(format!(
                "modloop {path}: the board profile names it but the boot partition has no such file"
            )),
            (Some(h), Some(b)) if h != b => mismatches.push(format!(
                "modloop {path}: the image holds sha256 {h}, the buildinfo says {b}"
            )),
            _ => {}
        }
    }
    let (listing, recorded) = (&listing, &recorded);
    let mut diff = |what: &str,
                    host_name: &str,
                    host: &BTreeMap<String, String>,
                    guest: &BTreeMap<String, String>| {
        for (path, h) in host {
            match guest.get(path) {
                None => mismatches.push(format!(
                    "{what} {path}: in {host_name} but the booted system did not see it"
                )),
                Some(g) if g != h => mismatches.push(format!(
                    "{what} {path}: the booted system read sha256 {g}, {host_name} says {h}"
                )),
                Some(_) => {}
            }
        }
        for path in guest.keys().filter(|p| !host.contains_key(*p)) {
            mismatches.push(format!(
                "{what} {path}: seen by the booted system but not in {host_name}"
            ));
        }
    };
    diff("boot file", "the image's FAT listing", listing, guest_boot);
    if let Some(b) = recorded {
        diff("boot file", "the buildinfo", b, guest_boot);
    }
    diff("overlay file", "the apkovl", &exp.overlay, guest_overlay);
    if let (Some(want), Some(got)) = (exp.hostname.as_deref(), guest_hostname) {
        if want != got {
            mismatches.push(format!(
                "host name: the booted system set '{got}', the overlay says '{want}'"
            ));
        }
    }
    SelfCheck {
        boot_files: guest_boot.len(),
        overlay_files: guest_overlay.len(),
        against_buildinfo: exp.buildinfo.is_some(),
        modloop: exp.modloop.clone(),
        mismatches,
    }
}

/// The regular files inside an apkovl (gzip + tar), with their content.
fn apkovl_files(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
    let (_, tar_bytes, _) = crate::codec::gzip::read::decompress(data)?;
    let mut files = Vec::new();
    crate::codec::tar::read::read(std::io::Cursor::new(&tar_bytes), |entry, content| {
        if entry.kind() == "file" {
            let mut buf = Vec::new();
            content
                .read_to_end(&mut buf)
                .map_err(|source| ReadError::Io {
                    what: format!("apkovl member {}", entry.path),
                    offset: entry.data_offset,
                    source,
                })?;
            files.push((entry.path.trim_start_matches("./").to_string(), buf));
        }
        Ok(())
    })?;
    Ok(files)
}

/// A temporary folder removed on drop, created beside the system's temp dir.
struct TempDir {
    path: PathBuf,
}

fn tempdir(image: &Path) -> std::io::Result<TempDir> {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for i in 0..1000u32 {
        let path =
            std::env::temp_dir().join(format!("pimg-boot-{}-{}-{i}", std::process::id(), stem));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(TempDir { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
