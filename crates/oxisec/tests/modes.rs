//! ESP modes and replay windows (issue 5, parts 2 and 3) in network
//! namespaces, oxisec ↔ oxisec.
//!
//! Today: a per-child `replay_window` of 4096 on both daemons, tunnel up
//! and a ping through it. Raw ESP (protocol 50), transport mode and IPv6
//! outer headers need the daemon's data plane first (see CHANGELOG); their
//! cases belong here once it carries them.
//!
//! Root only, like `interop.rs` (skipped with a printed reason otherwise).
//! Run: `cargo test -p oxisec --test modes -- --test-threads=1`.

mod common;

use std::time::{Duration, Instant};

use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::{Peer, tunnel_up};
use common::{CONN, LEFT_HOST, RIGHT_HOST, Side, Tool, Topology, traffic, wait_until};

/// `keys` added to the (single) child table of a generated configuration.
fn with_child_keys(toml: &str, keys: &str) -> String {
    let header = toml
        .lines()
        .find(|l| l.starts_with("[connections.") && l.contains(".children."))
        .unwrap_or_else(|| panic!("no child table in:\n{toml}"));
    toml.replace(header, &format!("{header}\n{keys}"))
}

#[test]
fn replay_window_4096_configured_on_both_sides_carries_traffic() {
    let test = "replay_window_4096_configured_on_both_sides_carries_traffic";
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        let keys = "mode = \"tunnel\"\nreplay_window = 4096";
        let start = |side: Side, toml: String| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &toml,
            )
        };
        let lp = start(Side::Left, with_child_keys(&oxisec_toml(&l), keys))?;
        let rp = start(Side::Right, with_child_keys(&oxisec_toml(&r), keys))?;
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            for p in [&lp, &rp] {
                wait_until(
                    &format!("{} to have the tunnel up", Peer::label(p)),
                    Duration::from_secs(10),
                    || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
                )?;
            }
            traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- oxisec@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}
