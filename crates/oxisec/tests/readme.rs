//! The README's walk-through ("From an empty machine to a phone") run as
//! written (needs root): its commands and its gateway configuration are
//! taken from README.md itself, so the page cannot drift from what works.
//!
//! The commands run in a private mount namespace with overlays on `/etc` and
//! `/var`: they write `/etc/oxisec/…` and `/var/lib/oxisec` as an admin's
//! would, and the machine running the test keeps none of it. Two commands
//! are replaced: `scripts/install.sh` (the binary under test is used
//! instead of a release build) and `editor FILE` (the README's TOML block is
//! written to FILE). `systemctl enable --now oxisec` runs what the unit in
//! `packaging/oxisec.service` runs — its `ExecStartPre` check, then its
//! `ExecStart` in a network namespace that owns the gateway's address —
//! until `oxisec status` answers with the connection loaded. The profile for
//! the phone is then checked: the gateway's address and identity, the CA
//! the phone must trust, EAP for the user, and the QR code's PNG.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Result;
use common::oxisec_peer::oxisec_bin;

const PASSWORD: &str = "walk-through password 1";

/// The workspace root (README.md, packaging/).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first fenced block of `lang` after the line containing `marker`.
fn block_after(text: &str, marker: &str, lang: &str) -> Result<Vec<String>> {
    let at = text
        .find(marker)
        .ok_or_else(|| format!("README.md has no {marker:?}"))?;
    let fence = format!("```{lang}\n");
    let start = text[at..]
        .find(&fence)
        .map(|i| at + i + fence.len())
        .ok_or_else(|| format!("no ```{lang} block after {marker:?}"))?;
    let len = text[start..].find("```").ok_or("unterminated code block")?;
    Ok(text[start..start + len]
        .lines()
        .map(str::to_owned)
        .collect())
}

/// A README command without its trailing comment.
fn command_part(line: &str) -> &str {
    match line.find("  #") {
        Some(i) => line[..i].trim(),
        None => line.trim(),
    }
}

/// The unit's `KEY=` command line with the installed binary's path
/// replaced by the one under test.
fn unit_command(unit: &str, key: &str, bin: &Path) -> Result<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .ok_or_else(|| format!("packaging/oxisec.service has no {key}"))?;
    Ok(line.replace("/usr/local/sbin/oxisec", &bin.display().to_string()))
}

/// The shell script that plays the walk-through: `commands` translated,
/// inside overlays, with the daemon in network namespace `ns`.
fn script(commands: &[String], toml: &str, unit: &str, dir: &Path, ns: &str) -> Result<String> {
    let bin = oxisec_bin();
    let bin_dir = bin.parent().ok_or("binary without a directory")?;
    let d = dir.display();
    let mut s = format!(
        "set -euo pipefail\n\
         mount -t tmpfs walkthrough {d}/overlay\n\
         for t in etc var; do\n\
         \x20   mkdir {d}/overlay/$t-up {d}/overlay/$t-work\n\
         \x20   mount -t overlay overlay -o lowerdir=/$t,upperdir={d}/overlay/$t-up,workdir={d}/overlay/$t-work /$t\n\
         done\n\
         rm -rf /etc/oxisec /var/lib/oxisec\n\
         export PATH={bin_dir}:$PATH\n\
         cleanup() {{ [ -n \"${{pid:-}}\" ] && kill \"$pid\" 2>/dev/null; ip netns del {ns} 2>/dev/null || true; }}\n\
         trap cleanup EXIT\n\
         cd {d}/cwd\n",
        bin_dir = bin_dir.display(),
    );
    for line in commands {
        let cmd = command_part(line);
        if cmd.is_empty() {
            continue;
        }
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["scripts/install.sh", ..] => {
                s += "echo '+ (scripts/install.sh: the binary under test is used)'\n";
            }
            ["editor", file] => {
                s += &format!(
                    "echo '+ editor {file}'\ncat > {file} <<'OXISEC_TOML'\n{toml}OXISEC_TOML\n"
                );
            }
            ["systemctl", "enable", "--now", "oxisec"] => {
                let pre = unit_command(unit, "ExecStartPre", &bin)?;
                let start = unit_command(unit, "ExecStart", &bin)?;
                s += &format!(
                    "echo '+ {cmd}'\n{pre}\n\
                     ip netns add {ns}\n\
                     ip -n {ns} link set lo up\n\
                     ip -n {ns} addr add 192.0.2.1/24 dev lo\n\
                     ip netns exec {ns} {start} --socket {d}/control.sock > {d}/daemon.log 2>&1 &\n\
                     pid=$!\n\
                     for _ in $(seq 100); do\n\
                     \x20   oxisec status --socket {d}/control.sock > {d}/status.txt 2>/dev/null && break\n\
                     \x20   kill -0 \"$pid\" || {{ cat {d}/daemon.log; exit 1; }}\n\
                     \x20   sleep 0.1\n\
                     done\n\
                     cat {d}/status.txt\n"
                );
            }
            ["oxisec", "user", "add", ..] => {
                s += &format!("echo '+ {cmd}'\necho '{PASSWORD}' | {cmd}\n");
            }
            _ => s += &format!("echo '+ {cmd}'\n{cmd}\n"),
        }
    }
    // The daemon stops as systemd would stop it.
    s += "kill -TERM \"$pid\"\nwait \"$pid\"\npid=\n";
    Ok(s)
}

#[test]
fn readme_walkthrough_from_an_empty_machine_to_a_phone() {
    if common::skip("readme_walkthrough_from_an_empty_machine_to_a_phone", &[]) {
        return;
    }
    if let Err(e) = run() {
        panic!("README walk-through: {e}");
    }
}

fn run() -> Result<()> {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let unit = std::fs::read_to_string(root.join("packaging/oxisec.service"))?;
    let commands = block_after(&readme, "<!-- walkthrough:", "sh")?;
    let toml = block_after(&readme, "<!-- walkthrough-config -->", "toml")?.join("\n") + "\n";

    let dir = common::TestDir::new("readme_walkthrough")?;
    dir.sub("overlay")?;
    dir.sub("cwd")?;
    let ns = format!("oxwalk{}", std::process::id());
    let sh = script(&commands, &toml, &unit, dir.path(), &ns)?;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", &sh])
        .output()?;
    // The script's trap deletes the namespace; make sure even if bash died.
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        dir.keep();
        return Err(format!("the commands failed ({}):\n{log}", out.status).into());
    }
    let status = std::fs::read_to_string(dir.path().join("status.txt"))?;
    if !status.contains("\n  rw ") || !status.contains("pool staff") {
        return Err(format!(
            "`oxisec status` does not show connection rw and pool staff:\n{status}"
        )
        .into());
    }

    // The profile for alice's phone: Android's strongSwan app format.
    let profile_path = dir.path().join("cwd/alice-rw.sswan");
    let profile: serde_json::Value = serde_json::from_slice(&std::fs::read(&profile_path)?)?;
    let remote = &profile["remote"];
    if remote["addr"] != "192.0.2.1" {
        return Err(format!("profile dials {} instead of 192.0.2.1", remote["addr"]).into());
    }
    if remote["id"] != "vpn.example.com" {
        return Err(format!("profile expects gateway id {}", remote["id"]).into());
    }
    if remote["cert"].as_str().is_none_or(str::is_empty) {
        return Err("profile carries no CA certificate".into());
    }
    if profile["local"]["eap_id"] != "alice" {
        return Err(format!("profile logs in as {}", profile["local"]["eap_id"]).into());
    }
    if !profile["type"].as_str().is_some_and(|t| t.contains("eap")) {
        return Err(format!("profile type {} is not EAP", profile["type"]).into());
    }
    let png = std::fs::read(dir.path().join("cwd/alice-rw.png"))
        .map_err(|e| format!("no QR code PNG: {e}\n{log}"))?;
    if !png.starts_with(b"\x89PNG") {
        return Err("the QR code file is not a PNG".into());
    }
    // Nothing of it stayed on this machine.
    if Path::new("/run/netns").join(&ns).exists() {
        return Err(format!("namespace {ns} left behind").into());
    }
    Ok(())
}

#[test]
fn walkthrough_blocks_are_found_and_translated() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let unit = std::fs::read_to_string(repo_root().join("packaging/oxisec.service")).unwrap();
    let commands = block_after(&readme, "<!-- walkthrough:", "sh").unwrap();
    let toml = block_after(&readme, "<!-- walkthrough-config -->", "toml").unwrap();
    assert!(commands.iter().any(|c| c.starts_with("oxisec profile")));
    assert!(toml.iter().any(|l| l.starts_with("[connections.")));
    let s = script(&commands, "x = 1\n", &unit, Path::new("/tmp/x"), "ns").unwrap();
    assert!(s.contains("check-config /etc/oxisec/oxisec.toml"), "{s}");
    assert!(
        s.contains(" run --config /etc/oxisec/oxisec.toml --socket"),
        "{s}"
    );
    assert!(!s.contains("\nscripts/install.sh"), "{s}");
    assert_eq!(command_part("a b   # c"), "a b");
}
