//! Reauthentication against strongSwan, in network namespaces (needs
//! root): oxisec with `reauth_time` builds a new IKE SA with a full
//! IKE_AUTH and a new CHILD_SA while a ping runs through the tunnel, and
//! deletes the old IKE SA only then (make-before-break): strongSwan ends
//! with exactly one, new, IKE SA and no ping is lost.
mod common;

use std::time::Duration;

use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::Peer;
use common::{CONN, PeerKind, RIGHT_HOST, Result, Side, Tool, Topology, wait_until};

#[test]
fn oxisec_reauthenticates_with_strongswan_make_before_break() {
    let _serial = common::serial();
    let test = "oxisec_reauthenticates_with_strongswan_make_before_break";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let run = || -> Result<()> {
        let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        let right = PeerKind::StrongSwan.start(&topo, Side::Right, &r)?;
        let toml = oxisec_toml(&l).replace(
            "encap = true\n",
            "encap = true\nreauth_time = \"8s\"\nrand_time = \"1s\"\nover_time = \"20s\"\n",
        );
        let left = OxisecPeer::start_with_config(
            topo.left.clone(),
            topo.dir.sub("left")?,
            "oxisec@left".into(),
            &toml,
        )?;
        left.initiate(CONN)?;
        let first = right.list_sas()?;
        let first_spi = first
            .first()
            .ok_or("strongSwan lists no IKE SA")?
            .spi_i
            .clone();
        // 70 pings 0.2 s apart: the reauthentication (7–8 s after the
        // start) happens in the middle of them.
        let out = topo
            .left
            .exec_timeout(
                "ping",
                &[
                    "-c",
                    "70",
                    "-i",
                    "0.2",
                    "-W",
                    "1",
                    "-I",
                    "198.51.100.1",
                    &RIGHT_HOST.to_string(),
                ],
                Duration::from_secs(30),
            )
            .map_err(|e| format!("ping through the reauthentication: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains(" 0% packet loss") {
            return Err(format!("packets lost during the reauthentication:\n{text}").into());
        }
        let sas = wait_until(
            "strongSwan to hold only the new IKE SA",
            Duration::from_secs(10),
            || {
                let sas = right.list_sas()?;
                Ok(
                    (sas.len() == 1 && sas[0].spi_i != first_spi && sas[0].children.len() == 1)
                        .then_some(sas),
                )
            },
        )?;
        if !left
            .log()
            .contains("reauthenticated; deleting the old IKE SA")
        {
            return Err("oxisec did not log the reauthentication".into());
        }
        // Both full IKE_AUTH exchanges were seen by strongSwan.
        let auths = right
            .log()
            .matches("authentication of 'left.example.org' with pre-shared key successful")
            .count();
        if auths < 2 {
            return Err(
                format!("strongSwan saw {auths} IKE_AUTH, expected 2 or more ({sas:?})").into(),
            );
        }
        left.terminate(CONN)?;
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}
