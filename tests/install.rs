//! `pimg manpages` and `pimg completions`: a page per subcommand that `man -l` renders with
//! the subcommand's own flags, the same bytes in any time zone, and completion scripts that
//! bash, zsh and fish accept.
// Tests make their fixtures and read their results with the file system and environment directly.
#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::fs;

/// The subcommands `pimg --help` lists.
fn subcommands() -> Vec<String> {
    let o = run(std::path::Path::new("."), &["--help"], &[]);
    assert!(o.success(), "{}", o.text());
    o.stdout
        .split("Commands:")
        .nth(1)
        .expect("pimg --help lists its commands")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's name starts its line; a wrapped about goes on further in.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn a_man_page_per_subcommand_renders_with_its_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let o = run(tmp.path(), &["manpages", dir.to_str().unwrap()], &[]);
    assert!(o.success(), "{}", o.text());
    let subs = subcommands();
    assert!(subs.contains(&"build".to_string()), "{subs:?}");
    let mut want: Vec<String> = subs.iter().map(|s| format!("pimg-{s}.1")).collect();
    want.push("pimg.1".into());
    want.sort();
    assert_eq!(list_files(&dir), want);
    for (page, words) in [
        ("pimg.1", &["pimg-build", "reproducible"][..]),
        (
            "pimg-build.1",
            &["--sign-key", "--compress", "SOURCE_DATE_EPOCH"][..],
        ),
        ("pimg-verify.1", &["--rebuild", "--key"][..]),
        ("pimg-boot.1", &["--machine", "--timeout"][..]),
    ] {
        let o = referee("man", "man-db")
            .env("MANWIDTH", "100")
            .args(["-l", "-P", "cat"])
            .arg(dir.join(page))
            .run();
        assert!(o.stdout.contains("NAME"), "{page}: {}", o.stdout);
        for w in words {
            // man renders hyphens as they are with -P cat and a C locale.
            assert!(o.stdout.contains(w), "{page} lacks {w}:\n{}", o.stdout);
        }
    }
    // No date or host in the pages: the same bytes in another time zone.
    let again = tmp.path().join("again");
    let o = run(
        tmp.path(),
        &["manpages", again.to_str().unwrap()],
        &[("TZ", "Pacific/Chatham")],
    );
    assert!(o.success(), "{}", o.text());
    for page in &want {
        assert_eq!(
            fs::read(dir.join(page)).unwrap(),
            fs::read(again.join(page)).unwrap(),
            "{page}"
        );
    }
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (shell, file, check) in [
        ("bash", "pimg.bash", &["bash", "-n"][..]),
        ("zsh", "_pimg", &["zsh", "-n"][..]),
        ("fish", "pimg.fish", &["fish", "--no-execute"][..]),
    ] {
        let o = run(t, &["completions", shell], &[]);
        assert!(o.success(), "{shell}: {}", o.text());
        assert!(o.stdout.contains("pimg"), "{shell}: {}", o.stdout);
        assert!(o.stdout.contains("--sign-key"), "{shell}: no build flags");
        let path = t.join(file);
        fs::write(&path, &o.stdout).unwrap();
        referee(check[0], check[0])
            .args(&check[1..])
            .arg(&path)
            .run();
    }
    // bash: sourcing it registers the completion for pimg.
    let o = referee("bash", "bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p pimg",
            t.join("pimg.bash").display()
        ))
        .run();
    assert!(o.stdout.contains("pimg"), "{}", o.stdout);
}

#[test]
fn an_unknown_shell_is_refused_naming_the_choices() {
    let o = run(std::path::Path::new("."), &["completions", "tcsh"], &[]);
    assert_eq!(o.code(), Some(2), "{}", o.text());
    for w in ["tcsh", "bash", "zsh", "fish"] {
        assert!(o.stderr.contains(w), "{}", o.stderr);
    }
}
