//! CRLs from http:// distribution points, for the trust stores of the
//! configuration ([`oxisec_pki::CrlCache`]).
//!
//! Validation never waits for the network: the trust store reads what this
//! cache holds and asks ([`CrlCache::want`]) for the URLs it missed, which a
//! background thread then fetches. With `revocation = "ifuri"` or
//! `"strict"` the first handshake of a peer whose CRL is not cached yet
//! therefore fails ("revocation status unknown"); the next attempt, a few
//! seconds later, finds the CRL. To avoid that in the usual one-CA setup,
//! the daemon prefetches the distribution points of our own certificates
//! ([`HttpCrlCache::prefetch`]), which the peers' certificates share.
//! Fetched CRLs are kept on disk in `daemon.crl_cache_dir`, so a restart
//! starts with them, and refreshed every [`REFRESH_INTERVAL`].
//!
//! Only plain HTTP is fetched: a CRL is signed by its CA, so transport
//! security adds nothing (RFC 5280 §5 and every CA publish them over HTTP),
//! and LDAP distribution points are out of scope. Responses are bounded in
//! size ([`oxisec_pki::MAX_CRL_SIZE`]) and time ([`FETCH_TIMEOUT`]); up to
//! [`MAX_REDIRECTS`] redirects are followed, to http:// URLs only. The
//! content is checked to be a CRL before it is cached; its signature and
//! scope are checked by the trust store when it is used.
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use oxisec_pki::{CrlCache, MAX_CRL_SIZE};
use tracing::{info, warn};

use crate::x509util::{CrlSummary, crl_ders, crl_summary, fmt_date};

/// Longest a single fetch (connect, redirects and body) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed per fetch.
pub const MAX_REDIRECTS: usize = 3;
/// A URL is not fetched again sooner than this after an attempt, so that
/// a peer retrying every second does not make us hammer a CA's server.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How many distribution points are remembered; the URLs come from
/// certificates that chain to our anchors, so this is generous.
pub const MAX_URLS: usize = 256;
/// A cached CRL is fetched again after this long even before its
/// nextUpdate, so that a revocation reaches us within the hour rather than
/// when the CA's CRL period (often weeks) ends. One found on disk at start
/// is refreshed at once.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the fetcher looks for CRLs whose nextUpdate has passed.
const IDLE_WAKE: Duration = Duration::from_secs(300);

/// The cache and its fetcher's queue.
#[derive(Debug)]
pub struct HttpCrlCache {
    dir: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// URLs asked for and not yet attempted.
    wanted: BTreeSet<String>,
    started: bool,
}

#[derive(Debug, Default)]
struct Entry {
    der: Option<Arc<Vec<u8>>>,
    next_update: Option<SystemTime>,
    last_attempt: Option<Instant>,
    /// Whether the disk cache has been looked at for this URL.
    disk_checked: bool,
}

impl HttpCrlCache {
    /// A cache that keeps its files in `dir`. Nothing is read, created or
    /// fetched yet.
    pub fn new(dir: PathBuf) -> HttpCrlCache {
        HttpCrlCache {
            dir,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the background fetcher (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        {
            let mut st = self.lock();
            if st.started {
                return Ok(());
            }
            st.started = true;
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("crl-fetch".into())
            .spawn(move || me.run())?;
        Ok(())
    }

    /// Queues the distribution points of our own certificates (and of the
    /// configured CAs) for connections that check the peer's certificate,
    /// unless they are cached already. With one CA, the peers' certificates
    /// name the same CRL as ours, so it is there before the first
    /// handshake instead of failing it.
    pub fn prefetch(&self, ike: &oxisec_ike::Config) {
        for c in &ike.connections {
            let oxisec_ike::Auth::PeerCert(trust) = &c.remote_auth else {
                continue;
            };
            let mut urls: Vec<&String> = trust
                .anchors()
                .iter()
                .flat_map(|a| a.crl_distribution_points())
                .collect();
            if let oxisec_ike::Auth::Cert(lc) = &c.local_auth {
                urls.extend(lc.chain.iter().flat_map(|c| c.crl_distribution_points()));
            }
            for url in urls {
                if url.starts_with("http://") {
                    let _ = CrlCache::get(self, url);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only cache data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file a URL's CRL is cached in: a hash of the URL (so that any
    /// URL makes a safe file name) and a readable tail.
    pub fn file_for(&self, url: &str) -> PathBuf {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let tail: String = url
            .rsplit('/')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        let tail = tail.trim_start_matches('.');
        self.dir.join(format!("{h:016x}-{tail}.der"))
    }

    /// Fetches `url` now, in the calling thread, and stores the result.
    pub fn fetch_now(&self, url: &str) -> Result<CrlSummary, String> {
        self.lock()
            .entries
            .entry(url.to_owned())
            .or_default()
            .last_attempt = Some(Instant::now());
        let der = fetch(url)?;
        let summary = crl_summary(&der)?;
        if let Err(e) = self.write_file(url, &der) {
            warn!(
                "cannot keep the CRL of {url} in {}: {e}",
                self.dir.display()
            );
        }
        let mut st = self.lock();
        let e = st.entries.entry(url.to_owned()).or_default();
        e.der = Some(Arc::new(der));
        e.next_update = summary.next_update;
        e.disk_checked = true;
        Ok(summary)
    }

    fn write_file(&self, url: &str, der: &[u8]) -> std::io::Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.dir)?;
        let path = self.file_for(url);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(der)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// The cached file of `url`, if present and a CRL.
    fn read_file(&self, url: &str) -> Option<(Vec<u8>, CrlSummary)> {
        use std::io::Read;
        let f = std::fs::File::open(self.file_for(url)).ok()?;
        let mut der = Vec::new();
        f.take(MAX_CRL_SIZE as u64 + 1).read_to_end(&mut der).ok()?;
        if der.len() > MAX_CRL_SIZE {
            return None;
        }
        let s = crl_summary(&der).ok()?;
        Some((der, s))
    }

    fn run(&self) {
        loop {
            let due = self.next_batch();
            for url in due {
                match self.fetch_now(&url) {
                    Ok(s) => info!(
                        "fetched the CRL of {} from {url}: {} revoked, next update {}",
                        s.issuer,
                        s.revoked,
                        s.next_update.map_or("not given".to_owned(), fmt_date)
                    ),
                    Err(e) => warn!("cannot fetch the CRL from {url}: {e}"),
                }
            }
        }
    }

    /// Waits until some URL is due (asked for, or past its nextUpdate) and
    /// not fetched within [`REFETCH_INTERVAL`].
    fn next_batch(&self) -> Vec<String> {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let wall = SystemTime::now();
            let mut due = Vec::new();
            let mut wait = IDLE_WAKE;
            let stale: Vec<String> = st
                .entries
                .iter()
                .filter(|(_, e)| {
                    e.next_update.is_some_and(|t| t <= wall)
                        || (e.der.is_some()
                            && e.last_attempt.is_none_or(|t| {
                                now.saturating_duration_since(t) >= REFRESH_INTERVAL
                            }))
                })
                .map(|(u, _)| u.clone())
                .collect();
            let candidates: BTreeSet<String> = st.wanted.iter().cloned().chain(stale).collect();
            for url in candidates {
                let last = st.entries.get(&url).and_then(|e| e.last_attempt);
                match last.map(|t| now.saturating_duration_since(t)) {
                    Some(ago) if ago < REFETCH_INTERVAL => {
                        wait = wait.min(REFETCH_INTERVAL - ago + Duration::from_millis(10));
                    }
                    _ => {
                        st.wanted.remove(&url);
                        due.push(url);
                    }
                }
            }
            if !due.is_empty() {
                return due;
            }
            st = self
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl CrlCache for HttpCrlCache {
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        let mut st = self.lock();
        if !st.entries.contains_key(url) && st.entries.len() >= MAX_URLS {
            return None;
        }
        let e = st.entries.entry(url.to_owned()).or_default();
        if !e.disk_checked {
            e.disk_checked = true;
            if let Some((der, s)) = self.read_file(url) {
                e.der = Some(Arc::new(der));
                e.next_update = s.next_update;
            }
        }
        let der = e.der.as_ref().map(|d| d.to_vec());
        let stale = e.next_update.is_some_and(|t| t <= SystemTime::now());
        if der.is_none() || stale {
            st.wanted.insert(url.to_owned());
            self.wake.notify_one();
        }
        der
    }

    fn want(&self, url: &str) {
        let mut st = self.lock();
        if !st.entries.contains_key(url) && st.entries.len() >= MAX_URLS {
            warn!("not fetching the CRL from {url}: already {MAX_URLS} distribution points known");
            return;
        }
        st.entries.entry(url.to_owned()).or_default();
        st.wanted.insert(url.to_owned());
        self.wake.notify_one();
    }
}

/// One bounded HTTP GET of a CRL, following http:// redirects; returns the
/// DER (a PEM answer is decoded).
pub fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        if !current
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            return Err(format!(
                "{current}: only http:// distribution points are fetched"
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {}s", FETCH_TIMEOUT.as_secs()));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(left))
            .max_redirects(0)
            .http_status_as_error(false)
            // A daemon fetches directly, whatever the environment says.
            .proxy(None)
            .build()
            .into();
        let mut resp = agent.get(&current).call().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let loc = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("HTTP {status} without a Location"))?;
            current = if loc.starts_with('/') {
                // Same server: keep scheme and authority.
                let authority_end = current[7..].find('/').map_or(current.len(), |i| i + 7);
                format!("{}{loc}", &current[..authority_end])
            } else {
                loc.to_owned()
            };
            continue;
        }
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_CRL_SIZE as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    format!("the answer is larger than {MAX_CRL_SIZE} bytes")
                }
                other => other.to_string(),
            })?;
        let der = crl_ders(&body)?.into_iter().next().ok_or("empty answer")?;
        crl_summary(&der)?;
        return Ok(der);
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A CRL made by rcgen, DER.
    fn test_crl() -> Vec<u8> {
        use rcgen::{
            CertificateParams, CertificateRevocationListParams, IsCa, KeyIdMethod, KeyPair,
            KeyUsagePurpose, SerialNumber,
        };
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::KeyCertSign];
        let ca = p.self_signed(&key).unwrap();
        let issuer = rcgen::Issuer::new(p, &key);
        let _ = ca;
        let now = time::OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
        .der()
        .to_vec()
    }

    /// Serves the given responses, one per connection, on a local port.
    fn serve(responses: Vec<Vec<u8>>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for r in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut rd = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while rd.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = s.write_all(&r);
            }
        });
        format!("http://{addr}")
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn fetches_der_and_pem_and_follows_redirects() {
        let crl = test_crl();
        let pem = pem::encode(&pem::Pem::new("X509 CRL", crl.clone()));
        let base = serve(vec![
            ok(&crl),
            b"HTTP/1.1 302 Found\r\nLocation: /b.crl\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            ok(pem.as_bytes()),
        ]);
        assert_eq!(fetch(&format!("{base}/a.crl")).unwrap(), crl);
        assert_eq!(fetch(&format!("{base}/moved.crl")).unwrap(), crl);
    }

    #[test]
    fn rejects_non_http_oversized_and_non_crl_answers() {
        assert!(
            fetch("https://ca.example/x.crl")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            fetch("ldap://ca.example/cn=x")
                .unwrap_err()
                .contains("only http://")
        );
        let big = vec![0x30u8; MAX_CRL_SIZE + 10];
        let base = serve(vec![
            ok(&big),
            ok(b"<html>not found</html>"),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/x.crl\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        ]);
        assert!(
            fetch(&format!("{base}/big"))
                .unwrap_err()
                .contains("larger than")
        );
        assert!(fetch(&format!("{base}/html")).unwrap_err().contains("CRL"));
        assert_eq!(fetch(&format!("{base}/none")).unwrap_err(), "HTTP 404");
        assert!(
            fetch(&format!("{base}/tls"))
                .unwrap_err()
                .contains("only http://")
        );
    }

    #[test]
    fn caches_on_disk_and_queues_misses() {
        let dir = std::env::temp_dir().join(format!("oxisec-crlfetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let crl = test_crl();
        let base = serve(vec![ok(&crl)]);
        let url = format!("{base}/ca.crl");
        let cache = HttpCrlCache::new(dir.clone());
        // A miss is queued for the fetcher.
        assert_eq!(cache.get(&url), None);
        assert!(cache.lock().wanted.contains(&url));
        let s = cache.fetch_now(&url).unwrap();
        assert_eq!(s.revoked, 0);
        assert_eq!(cache.get(&url), Some(crl.clone()));
        // A new cache (a restarted daemon) finds it on disk.
        let again = HttpCrlCache::new(dir.clone());
        assert_eq!(again.get(&url), Some(crl));
        assert!(again.lock().wanted.is_empty());
        // ... and refreshes it at once, in case it was revoked meanwhile.
        assert_eq!(again.next_batch(), vec![url.clone()]);
        // File names stay inside the directory whatever the URL says.
        let f = again.file_for("http://x/../../etc/passwd");
        assert_eq!(f.parent(), Some(dir.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefetches_the_crl_our_own_certificate_names() {
        use crate::pki::{IssueRequest, KeyType, Pki, Profile};
        let dir = std::env::temp_dir().join(format!("oxisec-crlpre-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = Pki::init_ca(
            &dir,
            "CA",
            KeyType::Ecdsa,
            30,
            Some("http://192.0.2.1/crl.pem"),
        )
        .unwrap();
        pki.issue(&IssueRequest::new("gw.example.com", Profile::Server))
            .unwrap();
        let text = format!(
            "[connections.gw]\nlocal_id = \"gw.example.com\"\nlocal_cert = \"{0}/certs/gw.example.com.crt\"\nlocal_key = \"{0}/private/gw.example.com.key\"\nca_certs = [\"{0}/ca.crt\"]\n[daemon]\ncrl_cache_dir = \"{0}/crls\"\n",
            dir.display()
        );
        let l = crate::config::parse(&text, &dir.join("x.toml"), &NoDns).unwrap();
        l.crl_cache.prefetch(&l.ike);
        assert!(
            l.crl_cache
                .lock()
                .wanted
                .contains("http://192.0.2.1/crl.pem")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    struct NoDns;
    impl crate::config::Resolver for NoDns {
        fn resolve(&self, host: &str) -> Result<Vec<std::net::IpAddr>, String> {
            Err(host.to_owned())
        }
    }

    #[test]
    fn remembers_a_bounded_number_of_urls() {
        let cache = HttpCrlCache::new(PathBuf::from("/nonexistent/oxisec-test"));
        for i in 0..MAX_URLS + 10 {
            cache.want(&format!("http://ca.example/{i}.crl"));
        }
        assert_eq!(cache.lock().entries.len(), MAX_URLS);
    }
}
