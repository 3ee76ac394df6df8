//! Traffic through the tunnel: ping and iperf3, each bounded in time.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::{Netns, Result, netns, tail, wait_until};

/// Replies counted by `ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
}

/// Pings `dst` from source address `src` in `ns`, `count` packets 200 ms
/// apart, two seconds per reply at most. A ping that gets no reply is not an
/// error here (the caller decides); a ping that cannot run is.
pub fn ping(ns: &Netns, src: IpAddr, dst: IpAddr, count: u32) -> Result<PingStats> {
    let count_s = count.to_string();
    let src_s = src.to_string();
    let dst_s = dst.to_string();
    let timeout = Duration::from_secs(u64::from(count) + 10);
    let mut cmd = ns.command("ping");
    cmd.args([
        "-n", "-c", &count_s, "-i", "0.2", "-W", "2", "-I", &src_s, &dst_s,
    ]);
    let out = netns::run_output(&mut cmd, timeout)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without any route (e.g. after the tunnel's route was removed) ping
    // cannot even send: nothing transmitted, nothing received.
    if stderr.contains("Network is unreachable") {
        return Ok(PingStats {
            transmitted: 0,
            received: 0,
        });
    }
    parse_ping(&text).ok_or_else(|| {
        format!(
            "`{}`: no statistics in output: {text}{stderr}",
            netns::describe(&cmd),
        )
        .into()
    })
}

/// Pings and requires every packet to be answered.
pub fn ping_all(ns: &Netns, src: IpAddr, dst: IpAddr, count: u32) -> Result<()> {
    let stats = ping(ns, src, dst, count)?;
    if stats.received != stats.transmitted || stats.transmitted == 0 {
        return Err(format!(
            "ping {src} -> {dst} in {ns}: {}/{} replies",
            stats.received, stats.transmitted
        )
        .into());
    }
    Ok(())
}

/// Extracts "N packets transmitted, M received" from ping's summary.
pub fn parse_ping(text: &str) -> Option<PingStats> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut fields = line.split(", ");
    let transmitted = fields.next()?.split_whitespace().next()?.parse().ok()?;
    let received = fields.next()?.split_whitespace().next()?.parse().ok()?;
    Some(PingStats {
        transmitted,
        received,
    })
}

/// The result of one iperf3 TCP run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IperfResult {
    /// Sender side goodput in bit/s.
    pub sent_bps: f64,
    /// Receiver side goodput in bit/s (what the tables report).
    pub received_bps: f64,
    /// TCP retransmissions seen by the sender.
    pub retransmits: u64,
}

/// Runs a single-stream iperf3 TCP test for `seconds`: server in
/// `server_ns` bound to `server_addr`, client in `client_ns` bound to
/// `client_addr`. The server log goes to `log_dir/iperf3-server.log`.
pub fn iperf3_tcp(
    server_ns: &Netns,
    server_addr: IpAddr,
    client_ns: &Netns,
    client_addr: IpAddr,
    seconds: u32,
    log_dir: &Path,
) -> Result<IperfResult> {
    const PORT: &str = "5201";
    let server_s = server_addr.to_string();
    let client_s = client_addr.to_string();
    let server_log = log_dir.join("iperf3-server.log");
    // -1: serve one test, then exit.
    let mut server = server_ns.spawn(
        "iperf3",
        &["-s", "-1", "-B", &server_s, "-p", PORT],
        Some(&server_log),
    )?;
    let result = (|| {
        wait_until("iperf3 server to listen", Duration::from_secs(10), || {
            if let Some(status) = server.try_wait()? {
                return Err(
                    format!("iperf3 server exited: {status}: {}", tail(&server_log, 10)).into(),
                );
            }
            let out = server_ns.exec("ss", &["-Hltn", "sport", "=", &format!(":{PORT}")])?;
            Ok((!out.stdout.is_empty()).then_some(()))
        })?;
        let secs = seconds.to_string();
        let mut cmd = client_ns.command("iperf3");
        cmd.args([
            "-c",
            &server_s,
            "-B",
            &client_s,
            "-p",
            PORT,
            "-t",
            &secs,
            "-J",
            "--connect-timeout",
            "5000",
        ]);
        let out = netns::run_output(&mut cmd, Duration::from_secs(u64::from(seconds) + 30))?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_iperf3_json(&text).map_err(|e| format!("`{}`: {e}", netns::describe(&cmd)).into())
    })();
    // The server exits by itself after one test; make sure on every path.
    if wait_until("iperf3 server to exit", Duration::from_secs(5), || {
        Ok(server.try_wait()?.map(|_| ()))
    })
    .is_err()
    {
        let _ = server.kill();
        let _ = server.wait();
    }
    result
}

/// Reads bit rates and retransmissions out of `iperf3 -J` output; an
/// `error` member (iperf3 reports failures that way, also with -J) is an error.
pub fn parse_iperf3_json(text: &str) -> Result<IperfResult> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("iperf3 output is not JSON ({e}): {text}"))?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(format!("iperf3: {err}").into());
    }
    let end = v.get("end").ok_or("iperf3 JSON has no `end`")?;
    let num = |path: &[&str]| -> Option<f64> {
        path.iter()
            .try_fold(end, |v, k| v.get(*k))
            .and_then(Value::as_f64)
    };
    let sent_bps = num(&["sum_sent", "bits_per_second"]).ok_or("iperf3 JSON: no sum_sent")?;
    let received_bps =
        num(&["sum_received", "bits_per_second"]).ok_or("iperf3 JSON: no sum_received")?;
    let retransmits = num(&["sum_sent", "retransmits"]).unwrap_or(0.0) as u64;
    Ok(IperfResult {
        sent_bps,
        received_bps,
        retransmits,
    })
}
