//! An IKE responder engine fed hostile datagrams, timers and commands.
//!
//! The responder has one PSK connection ("tunnel", child "net") offering an
//! AEAD and a CBC+HMAC suite, and a virtual IP pool of four addresses, so
//! that configuration payloads in IKE_AUTH are parsed and answered. The input is one *mode* byte followed by
//! records (see `oxisec_fuzz::Records`), at most [`MAX_RECORDS`].
//!
//! Mode bits: a fake initiator written here from the wire and crypto crates
//! (not a second engine: this one knows its keys, so it can encrypt whatever
//! the fuzzer wants) first runs
//!
//! * `0x01` a valid IKE_SA_INIT: the SA is half open, IKE_AUTH is reachable;
//! * `0x02` (with 0x01) then a valid IKE_AUTH: the SA is established, so
//!   INFORMATIONAL and CREATE_CHILD_SA handling and the responder's own
//!   requests (delete, liveness) are reachable;
//! * `0x04` with AES-CBC + HMAC-SHA-256 instead of AES-GCM;
//! * `0x08` sets `force_encap` on the responder's connection;
//! * `0x10` leaves the NAT detection notifies out, `0x20` makes them claim a NAT;
//! * `0x40` (with 0x01, instead of 0x02) an IKE_AUTH without AUTH from the
//!   EAP-TLS user: the gateway answers with its certificate AUTH and starts
//!   EAP-TLS, so `seal` records carrying EAP payloads reach the EAP-TLS
//!   framing and rustls (a second connection, "users", is there for it).
//!
//! Record ops: `op & 7` is the kind, `op & 0x08` sends to/from port 4500,
//! `op & 0x10` comes from another address (198.51.100.7) and `op & 0x20` from
//! another source port, as if a NAT had changed its mapping.
//!
//! * 0 `raw`: the data is the datagram.
//! * 1 `spi`: the data with the fake initiator's SPIs written over its first
//!   16 bytes, so that mutated messages reach the SA they are meant for.
//! * 2 `seal`: exchange(1) flags(1) message ID(4) first inner type(1), then
//!   the inner payload bytes, protected with the fake initiator's keys: the
//!   engine's handling of *authentic* messages, with any content.
//! * 3 `auth`: like `seal`, but the inner payloads are parsed and an AUTH
//!   payload among them gets the correct PSK value for the IDi among them,
//!   so mutated IKE_AUTH requests still authenticate, and an EAP payload gets
//!   the identifier of the responder's last EAP request, so mutated EAP
//!   responses get past the identifier check into the EAP method.
//! * 4 `time`: advance the clock by a u16 of seconds (0: to the engine's
//!   next timeout) and fire timers.
//! * 5 `command`: initiate, terminate the IKE SA or terminate the child.
//! * 6 `resend`: one of the fake initiator's earlier datagrams again.
//! * 7 `reflect`: one of the responder's own datagrams, back at it.
//!
//! Oracles besides "no panic": everything the engine sends parses; whatever
//! it sends under the fake initiator's SA decrypts with those keys and obeys
//! the payload rules of its exchange; every ESP SA it installs can be keyed
//! by the data plane; a valid handshake succeeds.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use oxisec_crypto::esp_cipher::EspCipher;
use oxisec_crypto::hash::sha1;
use oxisec_crypto::ike_cipher::{IkeCipher, IkeSuite};
use oxisec_crypto::kdf::{self, IkeKeySizes};
use oxisec_crypto::prf::Prf;
use oxisec_crypto::{Rng, Secret, ke};
use oxisec_fuzz::{Fields, Records};
use oxisec_ike::{
    Auth, ChildConfig, ChildLifetime, Command, Config, Connection, Datagram, DpdAction, Engine,
    EapTlsServer, EspProposal, IkeLifetime, IkeProposal, LocalCert, RetransmitConfig, SaCommand,
    SendCert, StartAction, Transmit,
};
use oxisec_pki::{
    Certificate, EkuPolicy, PrivateKey, RevocationPolicy, TrustStore, ValidationPolicy,
};
use oxisec_wire::{
    AuthMethod, AuthPayload, ExchangeType, Flags, HeaderRepr, KePayload, Message, NotifyPayload,
    NotifyType, Payload, PayloadType, SaPayload, SkPayload, TsPayload, emit_payloads, encr,
    parse_payloads, rules,
};

const MAX_RECORDS: usize = 32;
/// Inner payload bytes the fake initiator encrypts at most (keeps every
/// length field far from its limit).
const MAX_PLAINTEXT: usize = 16 * 1024;
/// Datagrams remembered for `resend` / `reflect`.
const HISTORY: usize = 16;

const INITIATOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const RESPONDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const PSK: &[u8] = b"fuzzing: correct horse battery staple";
const SPI_I: u64 = 0x0123_4567_89ab_cdef;
const CHILD_SPI: u32 = 0xc0ff_ee01;
const GCM: &str = "aes128gcm16-prfsha256-x25519";
/// The EAP-TLS user (its IDi selects the "users" connection).
const EAP_USER: &str = "alice@example.org";
const CBC: &str = "aes256-sha256-x25519";

/// SplitMix64: the engine's randomness, the same every run.
struct SplitMix(u64);

impl Rng for SplitMix {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
    }
}

/// A CA, the gateway's certificate and the user's, made once per process
/// (key generation would dominate every run).
struct Pki {
    anchor: Certificate,
    gateway: LocalCert,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType,
            date_time_ymd,
        };
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "fuzz CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = date_time_ymd(2020, 1, 1);
        ca.not_after = date_time_ymd(2040, 1, 1);
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);
        let mut gw = CertificateParams::default();
        gw.distinguished_name.push(DnType::CommonName, "gw-b.example.com");
        gw.subject_alt_names = vec![SanType::DnsName("gw-b.example.com".try_into().unwrap())];
        gw.not_before = date_time_ymd(2020, 1, 1);
        gw.not_after = date_time_ymd(2040, 1, 1);
        let gw_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let gw_cert = gw.signed_by(&gw_key, &issuer).unwrap();
        Pki {
            anchor: Certificate::from_der(ca_cert.der()).unwrap(),
            gateway: LocalCert {
                key: Arc::new(PrivateKey::from_bytes(&gw_key.serialize_der(), None).unwrap()),
                chain: vec![Certificate::from_der(gw_cert.der()).unwrap()],
                send: SendCert::Always,
            },
        }
    })
}

/// The EAP-TLS gateway connection: certificate AUTH, users by EAP-TLS,
/// small fragments so that fragmentation is reachable with short inputs.
fn eap_tls_connection(base: &Connection) -> Connection {
    let pki = pki();
    let trust = TrustStore::new(
        vec![pki.anchor.clone()],
        ValidationPolicy {
            eku: EkuPolicy::Client,
            revocation: RevocationPolicy::Relaxed,
            max_depth: 4,
        },
    );
    let mut server = EapTlsServer::new(Arc::new(trust));
    server.fragment_size = 64;
    Connection {
        name: "users".into(),
        remote_addrs: Vec::new(),
        remote_id: None,
        local_auth: Auth::Cert(pki.gateway.clone()),
        remote_auth: Auth::EapTls(server),
        ..base.clone()
    }
}

fn responder(force_encap: bool) -> Engine {
    let conn = Connection {
        name: "tunnel".into(),
        local_addrs: vec![RESPONDER.into()],
        remote_addrs: vec![INITIATOR.into()],
        remote_port: 500,
        local_id: "gw-b.example.com".parse().unwrap(),
        remote_id: Some("gw-a.example.com".parse().unwrap()),
        local_auth: Auth::Psk(Secret::from_slice(PSK)),
        remote_auth: Auth::Psk(Secret::from_slice(PSK)),
        ike_proposals: [GCM, CBC]
            .iter()
            .map(|s| IkeProposal::parse(s).unwrap())
            .collect(),
        children: vec![ChildConfig {
            name: "net".into(),
            local_ts: vec!["203.0.113.0/24".parse().unwrap()],
            remote_ts: vec!["198.51.100.0/24".parse().unwrap()],
            esp_proposals: ["aes128gcm16", "aes256-sha256"]
                .iter()
                .map(|s| EspProposal::parse(s).unwrap())
                .collect(),
            start_action: StartAction::None,
            // Short lifetimes so that clock jumps reach the rekey and expiry paths.
            lifetime: ChildLifetime::from_rekey_time(std::time::Duration::from_secs(300)),
            // Transport, so that a USE_TRANSPORT_MODE in the input reaches
            // the mode decision (the subnets make it fall back to tunnel).
            mode: oxisec_ike::ChildMode::Transport,
            mode_required: false,
            replay_window: oxisec_ike::config::DEFAULT_REPLAY_WINDOW,
        }],
        force_encap,
        ike_lifetime: IkeLifetime::from_rekey_time(std::time::Duration::from_secs(900)),
        dpd_delay: std::time::Duration::from_secs(30),
        dpd_action: DpdAction::Clear,
        // A pool, so that configuration payloads in IKE_AUTH reach the
        // CP parser and the address allocator.
        remote_access: oxisec_ike::RemoteAccess {
            pools: vec!["fuzz".into()],
            dns: vec!["203.0.113.53".parse().unwrap()],
            ..Default::default()
        },
    };
    let users = eap_tls_connection(&conn);
    let config = Config {
        connections: vec![Arc::new(conn), Arc::new(users)],
        retransmit: RetransmitConfig::default(),
        pools: vec![oxisec_ike::PoolConfig {
            name: "fuzz".into(),
            first: "198.51.100.200".parse().unwrap(),
            last: "198.51.100.203".parse().unwrap(),
        }],
        ..Config::default()
    };
    let mut engine = Engine::new(config, Box::new(SplitMix(7)));
    // Certificates are checked against a fixed day inside their validity.
    engine.set_wall_clock(Instant::now(), UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    engine
}

/// The fake initiator's IKE SA once IKE_SA_INIT is done.
struct Ike {
    spi_r: u64,
    prf: Prf,
    /// Initiator → responder protection, and the reverse to check replies.
    out: IkeCipher,
    inb: IkeCipher,
    sk_pi: Secret,
    init_request: Vec<u8>,
    nr: Vec<u8>,
}

impl Ike {
    fn header(&self, exchange: ExchangeType, flags: u8, message_id: u32) -> HeaderRepr {
        HeaderRepr {
            spi_i: SPI_I,
            spi_r: self.spi_r,
            next_payload: PayloadType::NONE,
            version: 0x20,
            exchange,
            flags: Flags(flags),
            message_id,
            length: 0,
        }
    }

    /// `hdr` + SK{plain}, protected with the initiator's keys.
    fn seal(
        &self,
        rng: &mut dyn Rng,
        hdr: HeaderRepr,
        first: PayloadType,
        plain: &[u8],
    ) -> Vec<u8> {
        let msg = Message {
            header: hdr,
            payloads: vec![Payload::Sk(SkPayload {
                first_inner: first,
                body: vec![0; self.out.body_len(plain.len())],
            })],
        };
        let mut bytes = msg.emit();
        let offset = msg.encrypted_body_offset().expect("has SK");
        self.out
            .seal(rng, &mut bytes, offset, plain)
            .expect("laid out for sealing");
        bytes
    }

    /// AUTH = prf(prf(PSK, "Key Pad for IKEv2"), RealMessage1 | Nr | prf(SK_pi, IDi')),
    /// RFC 7296 §2.15, written out here independently of the engine.
    fn psk_auth(&self, idi_body: &[u8]) -> Vec<u8> {
        let maced_id = self.prf.compute(self.sk_pi.as_bytes(), &[idi_body]);
        let key = self.prf.compute(PSK, &[b"Key Pad for IKEv2"]);
        self.prf
            .compute(
                key.as_bytes(),
                &[&self.init_request, &self.nr, maced_id.as_bytes()],
            )
            .as_bytes()
            .to_vec()
    }

    /// Gives the AUTH payload among `payloads` the right value for their IDi.
    fn fix_auth(&self, payloads: &mut [Payload]) {
        let Some(idi) = payloads.iter().find_map(|p| match p {
            Payload::IdI(id) => Some(id.body_bytes()),
            _ => None,
        }) else {
            return;
        };
        let value = self.psk_auth(&idi);
        for p in payloads {
            if let Payload::Auth(a) = p {
                a.data = value.clone();
            }
        }
    }
}

fn nat_hash(spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let IpAddr::V4(ip) = addr.ip() else {
        unreachable!("IPv4 only here")
    };
    sha1(&[
        &SPI_I.to_be_bytes(),
        &spi_r.to_be_bytes(),
        &ip.octets(),
        &addr.port().to_be_bytes(),
    ])
    .to_vec()
}

struct Harness {
    engine: Engine,
    rng: SplitMix,
    now: Instant,
    ike: Option<Ike>,
    /// Datagrams the fake initiator sent, and the responder's replies.
    sent: Vec<Datagram>,
    replies: Vec<Transmit>,
    /// The identifier of the last EAP request the responder sent.
    eap_id: std::cell::Cell<Option<u8>>,
}

impl Harness {
    fn deliver(&mut self, dgram: Datagram) {
        if self.sent.len() < HISTORY {
            self.sent.push(dgram.clone());
        }
        self.engine.handle_datagram(self.now, dgram);
        self.drain();
    }

    /// Takes every output and checks it.
    fn drain(&mut self) {
        while let Some(c) = self.engine.poll_sa_command() {
            if let SaCommand::InstallInbound { sa, .. } | SaCommand::InstallOutbound { sa, .. } = &c
                && let Err(e) = EspCipher::new(sa.suite, &sa.keys)
            {
                panic!(
                    "engine installs an SA the data plane cannot key: {:?}: {e}",
                    sa.suite
                );
            }
        }
        while self.engine.poll_event().is_some() {}
        while let Some(t) = self.engine.poll_transmit() {
            self.check_transmit(&t);
            if self.replies.len() < HISTORY {
                self.replies.push(t);
            }
        }
    }

    fn check_transmit(&self, t: &Transmit) {
        let msg = match Message::parse(&t.data) {
            Ok(m) => m,
            Err(e) => panic!(
                "engine sent a message that does not parse ({e}): {:02x?}",
                t.data
            ),
        };
        let Some(ike) = &self.ike else { return };
        if (msg.header.spi_i, msg.header.spi_r) != (SPI_I, ike.spi_r) {
            return;
        }
        let Some(Payload::Sk(sk)) = msg.payloads.last() else {
            return;
        };
        let offset = t.data.len() - sk.body.len();
        let plain = ike
            .inb
            .open(&t.data, offset)
            .expect("the responder's messages decrypt with the responder's keys");
        let inner = parse_payloads(sk.first_inner, plain.as_bytes())
            .expect("the responder's encrypted payloads parse");
        for p in &inner {
            if let Payload::Eap(eap) = p
                && let [1, id, ..] = eap.as_slice()
            {
                self.eap_id.set(Some(*id));
            }
        }
        let response = msg.header.flags.response();
        if let Err(v) = rules::check(msg.header.exchange, response, &inner) {
            panic!(
                "responder's {} {} breaks the payload rules: {v:?}: {inner:?}",
                msg.header.exchange,
                if response { "response" } else { "request" }
            );
        }
    }

    fn addr(op: u8, ip: Ipv4Addr, port: u16) -> SocketAddr {
        let port = if op & 0x08 != 0 { 4500 } else { port };
        SocketAddr::new(ip.into(), port)
    }

    fn datagram(op: u8, data: Vec<u8>) -> Datagram {
        let remote_ip = if op & 0x10 != 0 { ELSEWHERE } else { INITIATOR };
        let mut remote = Self::addr(op, remote_ip, 500);
        if op & 0x20 != 0 {
            remote.set_port(61_000);
        }
        Datagram {
            local: Self::addr(op, RESPONDER, 500),
            remote,
            data,
        }
    }

    /// IKE_SA_INIT from the fake initiator. Every mode makes a request the
    /// responder must accept.
    fn ike_sa_init(&mut self, mode: u8) -> Ike {
        let (proposal, suite) = if mode & 0x04 != 0 {
            let suite = IkeSuite {
                encr: encr::AES_CBC,
                encr_key_bits: Some(256),
                integ: Some(oxisec_wire::integ::HMAC_SHA2_256_128),
            };
            (CBC, suite)
        } else {
            let suite = IkeSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(128),
                integ: None,
            };
            (GCM, suite)
        };
        let mut initiator_rng = SplitMix(0xf00d);
        let share = ke::generate(ke_group(), &mut initiator_rng).expect("x25519");
        let mut ni = vec![0u8; 32];
        initiator_rng.fill(&mut ni);
        let mut payloads = vec![
            Payload::Sa(SaPayload {
                proposals: vec![IkeProposal::parse(proposal).unwrap().to_wire(1, Vec::new())],
            }),
            Payload::Ke(KePayload {
                group: ke_group(),
                data: share.public_key().to_vec(),
            }),
            Payload::Nonce(ni.clone()),
        ];
        if mode & 0x10 == 0 {
            let source = if mode & 0x20 != 0 {
                SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 500)
            } else {
                SocketAddr::new(INITIATOR.into(), 500)
            };
            for (ty, addr) in [
                (NotifyType::NAT_DETECTION_SOURCE_IP, source),
                (
                    NotifyType::NAT_DETECTION_DESTINATION_IP,
                    SocketAddr::new(RESPONDER.into(), 500),
                ),
            ] {
                payloads.push(Payload::Notify(NotifyPayload::new(ty, nat_hash(0, addr))));
            }
        }
        let request = Message {
            header: HeaderRepr {
                spi_i: SPI_I,
                spi_r: 0,
                next_payload: PayloadType::NONE,
                version: 0x20,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags(Flags::INITIATOR),
                message_id: 0,
                length: 0,
            },
            payloads,
        }
        .emit();
        let before = self.replies.len();
        self.deliver(Self::datagram(0, request.clone()));
        let response = self.replies.get(before).expect("IKE_SA_INIT is answered");
        let msg = Message::parse(&response.data).expect("checked in drain");
        let spi_r = msg.header.spi_r;
        let mut ke_r = None;
        let mut nr = None;
        for p in &msg.payloads {
            match p {
                Payload::Ke(k) => ke_r = Some(k.data.clone()),
                Payload::Nonce(n) => nr = Some(n.clone()),
                _ => {}
            }
        }
        let (Some(ke_r), Some(nr)) = (ke_r, nr) else {
            panic!("valid IKE_SA_INIT refused: {:?}", msg.payloads)
        };
        let prf = Prf::HmacSha256;
        let g_ir = share
            .shared_secret(&ke_r)
            .expect("responder's key share is valid");
        let skeyseed = kdf::skeyseed(prf, &ni, &nr, g_ir.as_bytes());
        let sizes = IkeKeySizes {
            encr: suite.encr_key_len(),
            integ: suite.integ_key_len(),
        };
        let k = kdf::ike_keys(prf, skeyseed.as_bytes(), &ni, &nr, SPI_I, spi_r, sizes);
        Ike {
            spi_r,
            prf,
            out: IkeCipher::new(suite, &k.sk_ei, &k.sk_ai).unwrap(),
            inb: IkeCipher::new(suite, &k.sk_er, &k.sk_ar).unwrap(),
            sk_pi: k.sk_pi,
            init_request: request,
            nr,
        }
    }

    /// A valid IKE_AUTH request (message ID 1) for the child "net".
    fn ike_auth(&mut self, mode: u8) {
        let Some(ike) = &self.ike else { return };
        let esp = if mode & 0x04 != 0 {
            "aes256-sha256"
        } else {
            "aes128gcm16"
        };
        let ts = |s: &str| TsPayload {
            selectors: vec![s.parse::<oxisec_ike::TsRange>().unwrap().to_wire()],
        };
        let mut payloads = vec![
            Payload::IdI(
                "gw-a.example.com"
                    .parse::<oxisec_ike::Identity>()
                    .unwrap()
                    .to_wire(),
            ),
            Payload::IdR(
                "gw-b.example.com"
                    .parse::<oxisec_ike::Identity>()
                    .unwrap()
                    .to_wire(),
            ),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: Vec::new(),
            }),
            Payload::Sa(SaPayload {
                proposals: vec![
                    EspProposal::parse(esp)
                        .unwrap()
                        .to_wire(1, CHILD_SPI, false),
                ],
            }),
            Payload::TsI(ts("198.51.100.0/24")),
            Payload::TsR(ts("203.0.113.0/24")),
        ];
        ike.fix_auth(&mut payloads);
        let mut plain = Vec::new();
        let first = emit_payloads(&payloads, &mut plain);
        let hdr = ike.header(ExchangeType::IKE_AUTH, Flags::INITIATOR, 1);
        let bytes = ike.seal(&mut self.rng, hdr, first, &plain);
        let port = if mode & 0x10 == 0 { 0x08 } else { 0 };
        self.deliver(Self::datagram(port, bytes));
        if mode & 0x30 == 0 {
            // A plain, valid handshake must work.
            let status = self.engine.status();
            assert!(
                status
                    .iter()
                    .any(|s| s.state == "ESTABLISHED" && s.children.len() == 1),
                "valid IKE_AUTH did not establish the SA: {status:?}"
            );
        }
    }

    /// IKE_AUTH (message ID 1) from the EAP-TLS user: no AUTH, so the
    /// gateway starts EAP.
    fn eap_auth(&mut self) {
        let Some(ike) = &self.ike else { return };
        let ts = |s: &str| TsPayload {
            selectors: vec![s.parse::<oxisec_ike::TsRange>().unwrap().to_wire()],
        };
        let payloads = vec![
            Payload::IdI(EAP_USER.parse::<oxisec_ike::Identity>().unwrap().to_wire()),
            Payload::Sa(SaPayload {
                proposals: vec![
                    EspProposal::parse("aes128gcm16")
                        .unwrap()
                        .to_wire(1, CHILD_SPI, false),
                ],
            }),
            Payload::TsI(ts("198.51.100.0/24")),
            Payload::TsR(ts("203.0.113.0/24")),
        ];
        let mut plain = Vec::new();
        let first = emit_payloads(&payloads, &mut plain);
        let hdr = ike.header(ExchangeType::IKE_AUTH, Flags::INITIATOR, 1);
        let bytes = ike.seal(&mut self.rng, hdr, first, &plain);
        self.deliver(Self::datagram(0x08, bytes));
    }

    fn sealed(&mut self, op: u8, data: &[u8], fix_auth: bool) {
        let Some(ike) = &self.ike else { return };
        let mut f = Fields::new(data);
        let exchange = ExchangeType(f.u8());
        let flags = f.u8();
        let message_id = f.u32();
        let mut first = PayloadType(f.u8());
        let rest = f.rest();
        let mut plain = rest[..rest.len().min(MAX_PLAINTEXT)].to_vec();
        if fix_auth && let Ok(mut payloads) = parse_payloads(first, &plain) {
            ike.fix_auth(&mut payloads);
            if let Some(id) = self.eap_id.get() {
                for p in &mut payloads {
                    if let Payload::Eap(eap) = p
                        && eap.len() >= 2
                    {
                        eap[1] = id;
                    }
                }
            }
            plain.clear();
            first = emit_payloads(&payloads, &mut plain);
        }
        let bytes = ike.seal(
            &mut self.rng,
            ike.header(exchange, flags, message_id),
            first,
            &plain,
        );
        self.deliver(Self::datagram(op, bytes));
    }

    fn record(&mut self, op: u8, data: &[u8]) {
        match op & 7 {
            0 => self.deliver(Self::datagram(op, data.to_vec())),
            1 => {
                let mut d = data.to_vec();
                let spi_r = self.ike.as_ref().map_or(0, |i| i.spi_r);
                let spis = [SPI_I.to_be_bytes(), spi_r.to_be_bytes()].concat();
                let n = d.len().min(16);
                d[..n].copy_from_slice(&spis[..n]);
                self.deliver(Self::datagram(op, d));
            }
            2 => self.sealed(op, data, false),
            3 => self.sealed(op, data, true),
            4 => {
                let secs = u16::from_be_bytes(Fields::new(data).bytes());
                self.now = if secs == 0 {
                    self.engine
                        .poll_timeout()
                        .map_or(self.now, |t| t.max(self.now))
                } else {
                    self.now + Duration::from_secs(secs.into())
                };
                self.engine.handle_timeout(self.now);
                self.drain();
            }
            5 => {
                let cmd = match Fields::new(data).u8() % 4 {
                    0 => Command::Initiate {
                        connection: "tunnel".into(),
                        child: None,
                    },
                    1 => Command::Initiate {
                        connection: "tunnel".into(),
                        child: Some("net".into()),
                    },
                    2 => Command::TerminateIke {
                        connection: "tunnel".into(),
                    },
                    _ => Command::TerminateChild {
                        child: "net".into(),
                    },
                };
                self.engine.handle_command(self.now, cmd);
                self.drain();
            }
            6 => {
                if !self.sent.is_empty() {
                    let i = usize::from(Fields::new(data).u8()) % self.sent.len();
                    let d = self.sent[i].clone();
                    self.deliver(d);
                }
            }
            _ => {
                if !self.replies.is_empty() {
                    let i = usize::from(Fields::new(data).u8()) % self.replies.len();
                    let t = self.replies[i].clone();
                    self.deliver(Datagram {
                        local: t.local,
                        remote: t.remote,
                        data: t.data,
                    });
                }
            }
        }
    }
}

fn ke_group() -> oxisec_wire::TransformId {
    oxisec_wire::ke::CURVE25519
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut h = Harness {
        engine: responder(mode & 0x08 != 0),
        rng: SplitMix(0xbeef),
        now: Instant::now(),
        ike: None,
        sent: Vec::new(),
        replies: Vec::new(),
        eap_id: std::cell::Cell::new(None),
    };
    if mode & 0x01 != 0 {
        h.ike = Some(h.ike_sa_init(mode));
        if mode & 0x02 != 0 {
            h.ike_auth(mode);
        } else if mode & 0x40 != 0 {
            h.eap_auth();
        }
    }
    for rec in Records::new(rest).take(MAX_RECORDS) {
        h.record(rec.op, rec.data);
    }
});
