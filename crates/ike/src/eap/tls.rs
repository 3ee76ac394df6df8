//! EAP-TLS on the gateway (RFC 5216 for TLS 1.2, RFC 9190 for TLS 1.3):
//! the client proves itself with a certificate inside a TLS handshake that
//! EAP carries, the gateway with its IKE certificate as TLS server
//! certificate; the MSK exported from the TLS session keys the final AUTH
//! payloads (RFC 7296 §2.16).
//!
//! TLS itself is rustls, driven from buffers only (`read_tls` and
//! `write_tls` on byte slices, no sockets), so the engine stays sans-IO.
//! This module does the EAP-TLS framing around it (RFC 5216 §3.1: the
//! flags L, M, S, the TLS Message Length, fragments acknowledged by empty
//! messages) in both directions, with bounds on what a peer may make us
//! buffer (a whole TLS flight, [`MAX_MESSAGE`]) and on the round trips
//! ([`MAX_ROUNDS`]).
//!
//! The client certificate is checked after the TLS handshake, before
//! anything that proves success goes out (the server's Finished in TLS
//! 1.2, the protected success indication in TLS 1.3), by the same
//! [`oxisec_pki::TrustStore::validate`] that checks IKE certificates:
//! chain to the connection's anchors, dates at the engine's wall-clock
//! time, EKU policy, revocation, and the EAP identity in the certificate
//! (subject DN or subjectAltName, as an IDi must be). rustls only checks
//! the client's possession of the key (CertificateVerify).
use std::io::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use oxisec_pki::{Certificate, IdClaim, PrivateKey, SigScheme, TrustStore};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{
    DigitallySignedStruct, DistinguishedName, ProtocolVersion, SignatureAlgorithm, SignatureScheme,
};
use zeroize::Zeroizing;

use super::server::Step;
use super::{Code, EapPacket, EapType, Msk};
use crate::identity::Identity;

mod framing;

use framing::{FLAG_S, Framing, Received};

/// EAP-TLS (RFC 5216).
pub(crate) const TYPE: EapType = EapType::TLS;

/// Largest TLS message (one flight: all records between two turns) we
/// reassemble from a peer or announce ourselves. A client flight is its
/// certificate chain plus a few hundred octets; 64 KiB is far beyond any
/// sane chain and keeps a hostile Length field from costing memory.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Default largest EAP-TLS packet we send (EAP header included), as
/// strongSwan's `fragment_size`. Small enough that an IKE message with one
/// such EAP payload stays below a 1280-octet path without IKE fragments.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1024;

/// Bounds of a configurable fragment size: room for the headers and a
/// useful amount of TLS data, and no more than one EAP packet can carry.
pub const FRAGMENT_SIZE_RANGE: std::ops::RangeInclusive<usize> = 128..=16_384;

/// IKE_AUTH round trips an EAP-TLS authentication may take: Start,
/// ClientHello, the server flight in fragments, the client flight in
/// fragments, the last flight, its acknowledgement, the final AUTH. With
/// 1 KiB fragments a 4-certificate chain each way fits comfortably; a
/// peer that keeps fragmenting beyond this is cut off.
pub(crate) const MAX_ROUNDS: u32 = 64;

/// RFC 5216 §2.3: the TLS 1.2 exporter label of the key material.
const LABEL_TLS12: &[u8] = b"client EAP encryption";
/// RFC 9190 §2.3: the TLS 1.3 exporter label, with the EAP Type as context.
const LABEL_TLS13: &[u8] = b"EXPORTER_EAP_TLS_Key_Material";
/// Key_Material is 128 octets (MSK ‖ EMSK); the MSK its first 64. TLS 1.3
/// exporters hash the length in, so it must be asked for at 128.
const KEY_MATERIAL: usize = 128;
const MSK_LEN: usize = 64;

/// Which TLS versions the gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 only (RFC 5216).
    Tls12,
    /// TLS 1.2 and TLS 1.3 (RFC 9190), 1.3 preferred.
    #[default]
    Tls12And13,
}

/// Where the server is.
enum State {
    /// EAP-Identity Request outstanding.
    Identity,
    /// The TLS handshake is running (Start included).
    Handshake,
    /// Our last flight is out (or going out); the peer's empty
    /// acknowledgement completes EAP-TLS.
    Finishing { msk: Msk },
    /// EAP-Success sent.
    Done { msk: Msk },
    /// EAP-Failure sent.
    Failed,
}

/// Settings a server is started with (from [`crate::EapTlsServer`] and the
/// connection's certificate).
pub(crate) struct Settings {
    pub trust: Arc<TrustStore>,
    pub key: Arc<PrivateKey>,
    pub chain: Vec<Certificate>,
    pub versions: TlsVersions,
    pub fragment_size: usize,
}

pub(crate) struct Server {
    tls: rustls::ServerConnection,
    trust: Arc<TrustStore>,
    identifier: u8,
    /// The EAP identity: the IDi, or what the peer answered to EAP-Identity.
    identity: String,
    /// What the certificate must hold: the IDi as received, or the
    /// EAP-Identity answer read as an identity.
    claim: Option<IdClaim>,
    framing: Framing,
    state: State,
    /// The user's groups: the OUs of its validated certificate.
    groups: Vec<String>,
}

impl Server {
    /// A server for the peer with IKE identity `idi`, and the first
    /// request: EAP-Identity if `ask_identity`, else the EAP-TLS Start with
    /// the IDi as EAP identity.
    pub fn start(
        settings: Settings,
        ask_identity: bool,
        idi: &Identity,
        rng: &mut dyn oxisec_crypto::Rng,
    ) -> Result<(Server, Vec<u8>), String> {
        let tls = rustls::ServerConnection::new(server_config(&settings)?)
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        let mut id = [0u8; 1];
        rng.fill(&mut id);
        let mut s = Server {
            tls,
            trust: settings.trust,
            identifier: id[0],
            identity: super::identity_text(idi),
            claim: Some(idi.claim()),
            framing: Framing::new(settings.fragment_size),
            state: State::Identity,
            groups: Vec::new(),
        };
        let first = if ask_identity {
            packet(Code::REQUEST, s.identifier, EapType::IDENTITY, &[])
        } else {
            s.start_tls()
        };
        Ok((s, first))
    }

    /// The EAP identity in use (for logs).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The MSK once EAP succeeded.
    pub fn msk(&self) -> Option<&Msk> {
        match &self.state {
            State::Done { msk } => Some(msk),
            _ => None,
        }
    }

    /// The user's groups (OUs of its certificate), once EAP succeeded.
    pub fn groups(&self) -> &[String] {
        match &self.state {
            State::Done { .. } => &self.groups,
            _ => &[],
        }
    }

    /// The authenticated EAP identity, once EAP succeeded.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Done { .. } => Some(&self.identity),
            _ => None,
        }
    }

    fn start_tls(&mut self) -> Vec<u8> {
        self.state = State::Handshake;
        self.request_with(FLAG_S)
    }

    /// The next request: the next fragment of our message, or an
    /// acknowledgement.
    fn request_with(&mut self, flags: u8) -> Vec<u8> {
        self.identifier = self.identifier.wrapping_add(1);
        let data = self.framing.next_fragment(flags);
        packet(Code::REQUEST, self.identifier, TYPE, &data)
    }

    fn fail(&mut self, reason: String) -> Step {
        self.state = State::Failed;
        Step::Failure {
            packet: EapPacket::result(false, self.identifier),
            reason,
        }
    }

    /// Processes the peer's EAP message (the whole EAP payload body).
    /// `wall` is the engine's wall-clock time, at which the client
    /// certificate must be valid.
    pub fn process(&mut self, data: &[u8], wall: Option<SystemTime>) -> Step {
        let p = match EapPacket::parse(data) {
            Ok(p) => p,
            Err(e) => return self.fail(format!("invalid EAP message: {e}")),
        };
        if p.code != Code::RESPONSE {
            return self.fail(format!(
                "peer sent EAP code {} instead of a Response",
                p.code.0
            ));
        }
        if p.identifier != self.identifier {
            return self.fail(format!(
                "EAP Response with identifier {}, expected {}",
                p.identifier, self.identifier
            ));
        }
        let ty = p.ty.unwrap_or(EapType::NAK);
        if ty == EapType::NAK {
            return self.fail(format!(
                "{}: peer refused the EAP method (Nak); only EAP-TLS is offered",
                self.identity
            ));
        }
        match &self.state {
            State::Identity => {
                if ty != EapType::IDENTITY {
                    return self.fail(format!("expected an EAP-Identity response, got {ty}"));
                }
                let Some(identity) = std::str::from_utf8(p.type_data)
                    .ok()
                    .filter(|s| !s.is_empty() && s.len() <= 255)
                    .filter(|s| !s.chars().any(char::is_control))
                else {
                    return self.fail(format!(
                        "unusable EAP identity \"{}\"",
                        super::printable(p.type_data)
                    ));
                };
                self.identity = identity.to_string();
                // An identity that is no IKE identity (a bare user name
                // that is no host name either) can match no certificate;
                // the check after the handshake says so.
                self.claim = identity.parse::<Identity>().ok().map(|i| i.claim());
                return Step::Continue(self.start_tls());
            }
            State::Done { .. } | State::Failed => {
                return self.fail("EAP message after EAP completed".into());
            }
            State::Handshake | State::Finishing { .. } => {}
        }
        if ty != TYPE {
            return self.fail(format!("expected an EAP-TLS response, got {ty}"));
        }
        let message = match self.framing.receive(p.type_data) {
            Ok(Received::NeedMore) | Ok(Received::Ack) => {
                return Step::Continue(self.request_with(0));
            }
            Ok(Received::Complete(m)) => m,
            Err(why) => return self.fail(format!("{}: {why}", self.identity)),
        };
        if let State::Finishing { .. } = self.state {
            if !message.is_empty() {
                return self.fail(format!(
                    "{}: TLS data after the handshake instead of an acknowledgement",
                    self.identity
                ));
            }
            let State::Finishing { msk } = std::mem::replace(&mut self.state, State::Failed) else {
                return self.fail("internal: EAP-TLS state".into());
            };
            self.state = State::Done { msk };
            return Step::Success {
                packet: EapPacket::result(true, self.identifier),
                user: self.identity.clone(),
            };
        }
        if message.is_empty() {
            return self.fail(format!(
                "{}: empty EAP-TLS response during the TLS handshake",
                self.identity
            ));
        }
        match self.handshake(&message, wall) {
            Ok(()) => Step::Continue(self.request_with(0)),
            Err(why) => self.fail(format!("{}: {why}", self.identity)),
        }
    }

    /// Feeds one TLS message of the peer to rustls and queues its answer;
    /// once the handshake is complete, checks the client certificate and
    /// derives the MSK before the last flight goes out.
    fn handshake(&mut self, mut message: &[u8], wall: Option<SystemTime>) -> Result<(), String> {
        while !message.is_empty() {
            let n = self
                .tls
                .read_tls(&mut message)
                .map_err(|e| format!("TLS input refused: {e}"))?;
            if n == 0 {
                return Err("TLS input not consumed".into());
            }
            self.tls
                .process_new_packets()
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        if !self.tls.is_handshaking() {
            self.check_client(wall)?;
            let msk = self.derive_msk()?;
            if self.tls.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
                // RFC 9190 §2.5: one octet 0x00 of application data, the
                // protected success indication.
                self.tls
                    .writer()
                    .write_all(&[0])
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            self.state = State::Finishing { msk };
        }
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .map_err(|e| format!("TLS output: {e}"))?;
            if out.len() > MAX_MESSAGE {
                break;
            }
        }
        if out.is_empty() {
            return Err("TLS handshake stalled: nothing to answer".into());
        }
        self.framing.queue(out)
    }

    /// The client certificate chain against the connection's anchors, as
    /// for IKE certificate authentication, for the EAP identity.
    fn check_client(&mut self, wall: Option<SystemTime>) -> Result<(), String> {
        let wall = wall.ok_or("no wall-clock time to check certificates against")?;
        let chain = self
            .tls
            .peer_certificates()
            .ok_or("client sent no certificate")?
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("client certificate refused: {e}"))?;
        let claim = self.claim.as_ref().ok_or_else(|| {
            format!(
                "EAP identity \"{}\" is not an identity a certificate can hold",
                self.identity.escape_debug()
            )
        })?;
        self.trust
            .validate(&chain, wall, claim)
            .map_err(|e| format!("client certificate refused: {e}"))?;
        if let Some(ee) = chain.first() {
            self.groups = crate::groups::organizational_units(&ee.subject_der());
        }
        Ok(())
    }

    fn derive_msk(&self) -> Result<Msk, String> {
        derive(&self.tls, self.tls.protocol_version())
    }
}

/// Settings an EAP-TLS peer (client) is started with.
pub(crate) struct ClientSettings {
    /// The EAP identity (answer to EAP-Identity).
    pub identity: String,
    pub key: Arc<PrivateKey>,
    pub chain: Vec<Certificate>,
    /// What the gateway's TLS certificate must validate against: the
    /// trust store its IKE certificate is checked with.
    pub trust: Arc<TrustStore>,
    pub versions: TlsVersions,
    pub fragment_size: usize,
}

enum ClientState {
    /// The TLS handshake is running (or not yet started).
    Handshake,
    /// Handshake complete, server verified, MSK derived; waiting for
    /// EAP-Success (and in TLS 1.3 the protected success indication).
    Finished {
        msk: Msk,
    },
    /// EAP-Success received.
    Done {
        msk: Msk,
    },
    Failed,
}

/// The road warrior's side of EAP-TLS: our certificate in a TLS client
/// handshake; the gateway's TLS certificate is checked against the trust
/// store and identity its IKE certificate was checked with.
pub(crate) struct Client {
    tls: rustls::ClientConnection,
    trust: Arc<TrustStore>,
    identity: String,
    framing: Framing,
    started: bool,
    /// TLS 1.3: the server's protected success indication arrived.
    indicated: bool,
    state: ClientState,
}

impl Client {
    pub fn new(s: ClientSettings) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match s.versions {
            TlsVersions::Tls12 => &[&rustls::version::TLS12],
            TlsVersions::Tls12And13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let chain = s
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect::<Vec<_>>();
        if chain.is_empty() {
            return Err("EAP-TLS needs our certificate, none is configured".into());
        }
        let key = CertifiedKey::new(chain, Arc::new(OurKey(s.key.clone())));
        let verifier = ServerVerifier {
            algs: provider.signature_verification_algorithms,
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(OurClientCert(Arc::new(key))));
        // The gateway is known by its IKE identity, not a host name.
        config.enable_sni = false;
        config.resumption = rustls::client::Resumption::disabled();
        let name = rustls::pki_types::ServerName::try_from("gateway.invalid")
            .map_err(|e| format!("TLS server name: {e}"))?;
        let tls = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        Ok(Client {
            tls,
            trust: s.trust,
            identity: s.identity,
            framing: Framing::new(s.fragment_size),
            started: false,
            indicated: false,
            state: ClientState::Handshake,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The MSK once EAP succeeded.
    pub fn msk(&self) -> Option<&Msk> {
        match &self.state {
            ClientState::Done { msk } => Some(msk),
            _ => None,
        }
    }

    fn failed(&mut self, why: String) -> super::client::Step {
        self.state = ClientState::Failed;
        super::client::Step::Failure(why)
    }

    /// Processes the gateway's EAP message. `gateway` is the identity the
    /// gateway proved in IKE; its TLS certificate must hold it too.
    pub fn process(
        &mut self,
        data: &[u8],
        wall: Option<SystemTime>,
        gateway: Option<&Identity>,
    ) -> super::client::Step {
        use super::client::Step;
        let p = match EapPacket::parse(data) {
            Ok(p) => p,
            Err(e) => return self.failed(format!("invalid EAP message from the gateway: {e}")),
        };
        if matches!(self.state, ClientState::Failed | ClientState::Done { .. }) {
            return self.failed("EAP message after EAP completed".into());
        }
        match p.code {
            Code::SUCCESS => {
                let ClientState::Finished { msk } =
                    std::mem::replace(&mut self.state, ClientState::Failed)
                else {
                    return self.failed("EAP-Success before the TLS handshake finished".into());
                };
                if self.tls.protocol_version() == Some(ProtocolVersion::TLSv1_3) && !self.indicated
                {
                    return self.failed(
                        "EAP-Success without TLS 1.3's protected success indication".into(),
                    );
                }
                self.state = ClientState::Done { msk };
                return Step::Success;
            }
            Code::FAILURE => return self.failed("the gateway sent EAP-Failure".into()),
            Code::REQUEST => {}
            Code(c) => return self.failed(format!("EAP code {c} from the gateway")),
        }
        let reply = |ty: EapType, d: &[u8]| packet(Code::RESPONSE, p.identifier, ty, d);
        match p.ty.unwrap_or(EapType::NAK) {
            EapType::IDENTITY => {
                return Step::Reply(reply(EapType::IDENTITY, self.identity.as_bytes()));
            }
            EapType::NOTIFICATION => return Step::Reply(reply(EapType::NOTIFICATION, &[])),
            TYPE => {}
            _ => return Step::Reply(reply(EapType::NAK, &[TYPE.0])),
        }
        let start = p.type_data.first().is_some_and(|f| f & FLAG_S != 0);
        if start {
            if self.started {
                return self.failed("a second EAP-TLS Start".into());
            }
            self.started = true;
            return match self.flush() {
                Ok(()) => Step::Reply(reply(TYPE, &self.framing.next_fragment(0))),
                Err(why) => self.failed(why),
            };
        }
        if !self.started {
            return self.failed("EAP-TLS data before the Start".into());
        }
        let message = match self.framing.receive(p.type_data) {
            Ok(Received::NeedMore) | Ok(Received::Ack) => {
                return Step::Reply(reply(TYPE, &self.framing.next_fragment(0)));
            }
            Ok(Received::Complete(m)) => m,
            Err(why) => return self.failed(why),
        };
        if let Err(why) = self.input(&message, wall, gateway) {
            return self.failed(why);
        }
        Step::Reply(reply(TYPE, &self.framing.next_fragment(0)))
    }

    fn input(
        &mut self,
        mut message: &[u8],
        wall: Option<SystemTime>,
        gateway: Option<&Identity>,
    ) -> Result<(), String> {
        use std::io::Read as _;
        while !message.is_empty() {
            let n = self
                .tls
                .read_tls(&mut message)
                .map_err(|e| format!("TLS input refused: {e}"))?;
            if n == 0 {
                return Err("TLS input not consumed".into());
            }
            self.tls
                .process_new_packets()
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        let mut buf = [0u8; 64];
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => break,
                // RFC 9190 §2.5: the indication is one octet 0x00.
                Ok(n) if buf[..n] == [0] && !self.indicated => self.indicated = true,
                Ok(_) => return Err("unexpected TLS application data from the gateway".into()),
                Err(_) => break,
            }
        }
        if !self.tls.is_handshaking() && matches!(self.state, ClientState::Handshake) {
            self.check_server(wall, gateway)?;
            let msk = derive(&self.tls, self.tls.protocol_version())?;
            self.state = ClientState::Finished { msk };
        }
        self.flush()
    }

    /// Queues what rustls has to send (possibly nothing: an ack).
    fn flush(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .map_err(|e| format!("TLS output: {e}"))?;
            if out.len() > MAX_MESSAGE {
                break;
            }
        }
        self.framing.queue(out)
    }

    fn check_server(
        &self,
        wall: Option<SystemTime>,
        gateway: Option<&Identity>,
    ) -> Result<(), String> {
        let wall = wall.ok_or("no wall-clock time to check certificates against")?;
        let gateway = gateway.ok_or("the gateway's identity is not known yet")?;
        let chain = self
            .tls
            .peer_certificates()
            .ok_or("the gateway sent no TLS certificate")?
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the gateway's TLS certificate: {e}"))?;
        self.trust
            .validate(&chain, wall, &gateway.claim())
            .map(drop)
            .map_err(|e| format!("the gateway's TLS certificate is refused: {e}"))
    }
}

/// Key_Material's MSK from a finished TLS session (either side).
fn derive<D>(
    conn: &rustls::ConnectionCommon<D>,
    version: Option<ProtocolVersion>,
) -> Result<Msk, String> {
    let (label, context): (&[u8], Option<&[u8]>) = match version {
        Some(ProtocolVersion::TLSv1_3) => (LABEL_TLS13, Some(&[TYPE.0])),
        _ => (LABEL_TLS12, None),
    };
    let km = conn
        .export_keying_material(Zeroizing::new([0u8; KEY_MATERIAL]), label, context)
        .map_err(|e| format!("TLS exporter: {e}"))?;
    Ok(Msk::from_slice(&km[..MSK_LEN]))
}

/// Accepts the gateway's TLS certificate for the handshake (checking its
/// signatures); [`Client::check_server`] validates the chain afterwards.
#[derive(Debug)]
struct ServerVerifier {
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Certificate::from_der(end_entity.as_ref())
            .map(|_| rustls::client::danger::ServerCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Our certificate, whichever CAs the gateway hints at.
#[derive(Debug)]
struct OurClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for OurClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls server configuration for one conversation: our IKE
/// certificate and key, client certificates required, no resumption.
fn server_config(s: &Settings) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match s.versions {
        TlsVersions::Tls12 => &[&rustls::version::TLS12],
        TlsVersions::Tls12And13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let verifier = ClientVerifier {
        hints: s
            .trust
            .anchors()
            .iter()
            .map(|a| DistinguishedName::from(a.subject_der()))
            .collect(),
        algs: provider.signature_verification_algorithms,
    };
    let chain = s
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect::<Vec<_>>();
    if chain.is_empty() {
        return Err("EAP-TLS needs our certificate (local_auth), none is configured".into());
    }
    let key = CertifiedKey::new(chain, Arc::new(OurKey(s.key.clone())));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(OurCert(Arc::new(key))));
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Requires a client certificate and checks the client's signature with
/// it; the chain is checked after the handshake ([`Server::check_client`]),
/// where the engine's clock and the EAP identity are at hand.
#[derive(Debug)]
struct ClientVerifier {
    /// Our anchors' subjects, sent in the CertificateRequest so that a
    /// client with several certificates picks one we can use.
    hints: Vec<DistinguishedName>,
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Parses, so that garbage ends the handshake with bad_certificate.
        Certificate::from_der(end_entity.as_ref())
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Our IKE certificate, whatever the client asks for.
#[derive(Debug)]
struct OurCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for OurCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Our IKE private key signing for TLS: the key stays in `oxisec_pki`.
#[derive(Debug)]
struct OurKey(Arc<PrivateKey>);

/// The TLS name of one of our signature schemes.
fn tls_scheme(s: SigScheme) -> Option<SignatureScheme> {
    Some(match s {
        SigScheme::RsaPssSha256 => SignatureScheme::RSA_PSS_SHA256,
        SigScheme::RsaPssSha384 => SignatureScheme::RSA_PSS_SHA384,
        SigScheme::RsaPssSha512 => SignatureScheme::RSA_PSS_SHA512,
        SigScheme::RsaPkcs1Sha256 => SignatureScheme::RSA_PKCS1_SHA256,
        SigScheme::RsaPkcs1Sha384 => SignatureScheme::RSA_PKCS1_SHA384,
        SigScheme::RsaPkcs1Sha512 => SignatureScheme::RSA_PKCS1_SHA512,
        SigScheme::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        SigScheme::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        SigScheme::EcdsaP521Sha512 => SignatureScheme::ECDSA_NISTP521_SHA512,
        SigScheme::Ed25519 => SignatureScheme::ED25519,
        SigScheme::RsaPkcs1Sha1 => return None,
    })
}

impl SigningKey for OurKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let mut ours = self.0.schemes();
        // PSS first: the only RSA form TLS 1.3 allows, and fine in 1.2.
        ours.sort_by_key(|s| {
            !matches!(
                s,
                SigScheme::RsaPssSha256 | SigScheme::RsaPssSha384 | SigScheme::RsaPssSha512
            )
        });
        ours.into_iter().find_map(|s| {
            let t = tls_scheme(s)?;
            offered.contains(&t).then(|| {
                Box::new(OurSigner {
                    key: self.0.clone(),
                    ours: s,
                    tls: t,
                }) as Box<dyn Signer>
            })
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.0.schemes().first() {
            Some(
                SigScheme::EcdsaP256Sha256
                | SigScheme::EcdsaP384Sha384
                | SigScheme::EcdsaP521Sha512,
            ) => SignatureAlgorithm::ECDSA,
            Some(SigScheme::Ed25519) => SignatureAlgorithm::ED25519,
            _ => SignatureAlgorithm::RSA,
        }
    }
}

#[derive(Debug)]
struct OurSigner {
    key: Arc<PrivateKey>,
    ours: SigScheme,
    tls: SignatureScheme,
}

impl Signer for OurSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign(self.ours, message)
            .map_err(|e| rustls::Error::General(format!("signing failed: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.tls
    }
}

fn packet(code: Code, id: u8, ty: EapType, data: &[u8]) -> Vec<u8> {
    // Our fragments are bounded by the fragment size: emit cannot fail.
    EapPacket::new(code, id, ty, data)
        .emit()
        .unwrap_or_else(|_| EapPacket::result(false, id))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::time::{Duration, UNIX_EPOCH};

    use oxisec_pki::{EkuPolicy, RevocationPolicy, ValidationPolicy};
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevokedCertParams, SanType, SerialNumber, date_time_ymd,
    };

    use super::*;
    use framing::{FLAG_L, FLAG_M};

    struct Counter(u8);
    impl oxisec_crypto::Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *b = self.0;
            }
        }
    }

    /// 2025-06-01: the engine's wall clock in these tests.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_748_736_000)
    }

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        cert: Certificate,
    }

    impl Ca {
        fn new(cn: &str) -> Ca {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2040, 1, 1);
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = p.self_signed(&key).unwrap();
            Ca {
                cert: Certificate::from_der(cert.der()).unwrap(),
                params: p,
                key,
            }
        }

        fn issuer(&self) -> Issuer<'_, &KeyPair> {
            Issuer::from_params(&self.params, &self.key)
        }

        /// An end entity: `san` as dNSName (gateway) or rfc822Name (user).
        fn issue(
            &self,
            san: &str,
            serial: u8,
            not_after: i32,
            rsa: bool,
        ) -> (Certificate, KeyPair) {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, san);
            p.serial_number = Some(SerialNumber::from_slice(&[serial]));
            let client = san.contains('@');
            p.subject_alt_names = vec![if client {
                SanType::Rfc822Name(san.try_into().unwrap())
            } else {
                SanType::DnsName(san.try_into().unwrap())
            }];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![if client {
                ExtendedKeyUsagePurpose::ClientAuth
            } else {
                ExtendedKeyUsagePurpose::ServerAuth
            }];
            p.not_before = date_time_ymd(2024, 1, 1);
            p.not_after = date_time_ymd(not_after, 1, 1);
            let key = if rsa {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                    .unwrap()
            } else {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
            };
            let cert = p.signed_by(&key, &self.issuer()).unwrap();
            (Certificate::from_der(cert.der()).unwrap(), key)
        }

        fn crl(&self, serials: &[u8]) -> Vec<u8> {
            CertificateRevocationListParams {
                this_update: date_time_ymd(2025, 1, 1),
                next_update: date_time_ymd(2026, 1, 1),
                crl_number: SerialNumber::from_slice(&[1]),
                issuing_distribution_point: None,
                revoked_certs: serials
                    .iter()
                    .map(|s| RevokedCertParams {
                        serial_number: SerialNumber::from_slice(&[*s]),
                        revocation_time: date_time_ymd(2025, 1, 1),
                        reason_code: None,
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: KeyIdMethod::Sha256,
            }
            .signed_by(&self.issuer())
            .unwrap()
            .der()
            .to_vec()
        }
    }

    const GW: &str = "vpn.example.org";
    const ALICE: &str = "alice@example.org";

    struct Setup {
        ca: Ca,
        gw: (Certificate, KeyPair),
    }

    fn setup(rsa_gateway: bool) -> Setup {
        let ca = Ca::new("oxisec test CA");
        let gw = ca.issue(GW, 1, 2040, rsa_gateway);
        Setup { ca, gw }
    }

    impl Setup {
        fn trust(&self, crl: Option<Vec<u8>>) -> Arc<TrustStore> {
            let mut t = TrustStore::new(
                vec![self.ca.cert.clone()],
                ValidationPolicy {
                    eku: EkuPolicy::Client,
                    revocation: RevocationPolicy::Relaxed,
                    max_depth: 4,
                },
            );
            if let Some(crl) = crl {
                t.add_crl(&crl).unwrap();
            }
            Arc::new(t)
        }

        fn server(
            &self,
            versions: TlsVersions,
            fragment_size: usize,
            ask: bool,
            crl: Option<Vec<u8>>,
        ) -> (Server, Vec<u8>) {
            let settings = Settings {
                trust: self.trust(crl),
                key: Arc::new(PrivateKey::from_bytes(&self.gw.1.serialize_der(), None).unwrap()),
                chain: vec![self.gw.0.clone()],
                versions,
                fragment_size,
            };
            let idi = Identity::Email(ALICE.into());
            Server::start(settings, ask, &idi, &mut Counter(3)).unwrap()
        }
    }

    /// A test peer: rustls as TLS client inside our framing.
    struct Peer {
        tls: rustls::ClientConnection,
        framing: Framing,
        identity: String,
        /// Application data the server sent (the TLS 1.3 success indication).
        app_data: Vec<u8>,
    }

    impl Peer {
        fn new(
            ca: &Ca,
            cert: Option<&(Certificate, KeyPair)>,
            max13: bool,
            fragment_size: usize,
        ) -> Peer {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let versions: &[&rustls::SupportedProtocolVersion] = if max13 {
                &[&rustls::version::TLS13, &rustls::version::TLS12]
            } else {
                &[&rustls::version::TLS12]
            };
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(ca.cert.der().to_vec()))
                .unwrap();
            let b = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
            let config = match cert {
                Some((c, k)) => b
                    .with_client_auth_cert(
                        vec![CertificateDer::from(c.der().to_vec())],
                        rustls::pki_types::PrivateKeyDer::try_from(k.serialize_der()).unwrap(),
                    )
                    .unwrap(),
                None => b.with_no_client_auth(),
            };
            let name = rustls::pki_types::ServerName::try_from(GW).unwrap();
            Peer {
                tls: rustls::ClientConnection::new(Arc::new(config), name).unwrap(),
                framing: Framing::new(fragment_size),
                identity: ALICE.into(),
                app_data: Vec::new(),
            }
        }

        /// The response to one request; `None` for Success/Failure.
        fn respond(&mut self, request: &[u8]) -> Option<Vec<u8>> {
            let p = EapPacket::parse(request).unwrap();
            if p.code != Code::REQUEST {
                return None;
            }
            let reply = |data: &[u8], ty| {
                EapPacket::new(Code::RESPONSE, p.identifier, ty, data)
                    .emit()
                    .unwrap()
            };
            if p.ty == Some(EapType::IDENTITY) {
                return Some(reply(self.identity.as_bytes(), EapType::IDENTITY));
            }
            assert_eq!(p.ty, Some(TYPE));
            let m = match self.framing.receive(p.type_data).unwrap() {
                Received::NeedMore | Received::Ack => {
                    return Some(reply(&self.framing.next_fragment(0), TYPE));
                }
                Received::Complete(m) => m,
            };
            let mut rest = &m[..];
            while !rest.is_empty() {
                self.tls.read_tls(&mut rest).unwrap();
                if let Err(e) = self.tls.process_new_packets() {
                    // Send whatever alert rustls has, then give up.
                    let mut out = Vec::new();
                    let _ = self.tls.write_tls(&mut out);
                    panic!("client TLS error: {e}");
                }
            }
            let mut buf = [0u8; 16];
            while let Ok(n) = self.tls.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.app_data.extend_from_slice(&buf[..n]);
            }
            let mut out = Vec::new();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut out).unwrap();
            }
            self.framing.queue(out).unwrap();
            Some(reply(&self.framing.next_fragment(0), TYPE))
        }

        fn msk(&self) -> Vec<u8> {
            let (label, ctx): (&[u8], Option<&[u8]>) = match self.tls.protocol_version().unwrap() {
                ProtocolVersion::TLSv1_3 => (LABEL_TLS13, Some(&[13])),
                _ => (LABEL_TLS12, None),
            };
            let km = self
                .tls
                .export_keying_material([0u8; 128], label, ctx)
                .unwrap();
            km[..64].to_vec()
        }
    }

    /// Runs server and peer; the server's final step, and the rounds.
    fn run(s: &mut Server, first: Vec<u8>, c: &mut Peer) -> (Step, u32) {
        let mut req = first;
        for round in 1..=MAX_ROUNDS {
            let resp = c.respond(&req).expect("peer stopped early");
            match s.process(&resp, Some(now())) {
                Step::Continue(next) => {
                    assert!(next.len() <= 1024, "{} octets", next.len());
                    req = next
                }
                done => return (done, round),
            }
        }
        panic!("no end");
    }

    fn success(s: &Server, c: &Peer, step: Step) {
        let Step::Success { packet, user } = step else {
            let Step::Failure { reason, .. } = step else {
                unreachable!()
            };
            panic!("refused: {reason}");
        };
        assert_eq!(packet[0], Code::SUCCESS.0);
        assert_eq!(user, ALICE);
        assert_eq!(s.user(), Some(ALICE));
        assert_eq!(s.msk().unwrap().as_bytes(), c.msk().as_slice());
        assert_eq!(s.msk().unwrap().len(), 64);
    }

    fn failure(step: Step) -> String {
        match step {
            Step::Failure { packet, reason } => {
                assert_eq!(packet[0], Code::FAILURE.0);
                reason
            }
            _ => panic!("not refused"),
        }
    }

    #[test]
    fn tls12_success_msk_equals_the_peers() {
        let st = setup(false);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, false, None);
        let mut c = Peer::new(&st.ca, Some(&alice), false, 1024);
        let (step, _) = run(&mut s, first, &mut c);
        assert_eq!(c.tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        assert!(c.app_data.is_empty());
        success(&s, &c, step);
    }

    #[test]
    fn tls13_success_with_protected_success_indication() {
        let st = setup(false);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, false, None);
        let mut c = Peer::new(&st.ca, Some(&alice), true, 1024);
        let (step, _) = run(&mut s, first, &mut c);
        assert_eq!(c.tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(c.app_data, vec![0], "RFC 9190 §2.5 indication");
        success(&s, &c, step);
    }

    #[test]
    fn tls12_only_server_talks_tls12_to_a_tls13_peer() {
        let st = setup(false);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        let (mut s, first) = st.server(TlsVersions::Tls12, 1024, false, None);
        let mut c = Peer::new(&st.ca, Some(&alice), true, 1024);
        let (step, _) = run(&mut s, first, &mut c);
        assert_eq!(c.tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        success(&s, &c, step);
    }

    #[test]
    fn rsa_gateway_key_signs_for_both_versions() {
        let st = setup(true);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        for max13 in [false, true] {
            let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, false, None);
            let mut c = Peer::new(&st.ca, Some(&alice), max13, 1024);
            let (step, _) = run(&mut s, first, &mut c);
            success(&s, &c, step);
        }
    }

    #[test]
    fn small_fragments_both_ways() {
        let st = setup(true);
        let alice = st.ca.issue(ALICE, 2, 2030, true);
        for max13 in [false, true] {
            let (mut s, first) = st.server(TlsVersions::Tls12And13, 200, true, None);
            let mut c = Peer::new(&st.ca, Some(&alice), max13, 150);
            let (step, rounds) = run(&mut s, first, &mut c);
            // RSA certificates (> 700 octets) need several fragments each way.
            assert!(rounds > 12, "{rounds} rounds");
            success(&s, &c, step);
        }
    }

    #[test]
    fn identity_round_and_an_identity_the_certificate_lacks() {
        let st = setup(false);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, true, None);
        let mut c = Peer::new(&st.ca, Some(&alice), true, 1024);
        c.identity = "bob@example.org".into();
        let (step, _) = run(&mut s, first, &mut c);
        let why = failure(step);
        assert!(why.contains("bob@example.org"), "{why}");
        assert!(why.contains("client certificate refused"), "{why}");
        assert!(s.msk().is_none());
    }

    #[test]
    fn refused_certificates_say_why() {
        let st = setup(false);
        let foreign = Ca::new("someone else's CA");
        let cases = [
            ("foreign CA", foreign.issue(ALICE, 2, 2030, false), None),
            ("expired", st.ca.issue(ALICE, 3, 2025, false), None),
            (
                "revoked",
                st.ca.issue(ALICE, 4, 2030, false),
                Some(st.ca.crl(&[4])),
            ),
        ];
        for (what, cert, crl) in cases {
            for max13 in [false, true] {
                let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, false, crl.clone());
                let mut c = Peer::new(&st.ca, Some(&cert), max13, 1024);
                let (step, _) = run(&mut s, first, &mut c);
                let why = failure(step);
                assert!(why.contains("client certificate refused"), "{what}: {why}");
                let expect = match what {
                    "foreign CA" => "CA",
                    "expired" => "expired",
                    _ => "revoked",
                };
                assert!(
                    why.to_lowercase().contains(&expect.to_lowercase()),
                    "{what}: {why}"
                );
                assert!(s.msk().is_none());
                // Nothing proving success went out: the peer has no
                // indication (1.3) and the server no MSK.
                assert!(c.app_data.is_empty());
            }
        }
    }

    #[test]
    fn a_peer_without_certificate_is_refused() {
        let st = setup(false);
        for max13 in [false, true] {
            let (mut s, first) = st.server(TlsVersions::Tls12And13, 1024, false, None);
            let mut c = Peer::new(&st.ca, None, max13, 1024);
            let (step, _) = run(&mut s, first, &mut c);
            let why = failure(step);
            assert!(why.contains("TLS handshake failed"), "{why}");
        }
    }

    #[test]
    fn no_wall_clock_no_success() {
        let st = setup(false);
        let alice = st.ca.issue(ALICE, 2, 2030, false);
        let (mut s, first) = st.server(TlsVersions::Tls12, 1024, false, None);
        let mut c = Peer::new(&st.ca, Some(&alice), false, 1024);
        let mut req = first;
        loop {
            let resp = c.respond(&req).unwrap();
            match s.process(&resp, None) {
                Step::Continue(next) => req = next,
                Step::Success { .. } => panic!("success without a clock"),
                Step::Failure { reason, .. } => {
                    assert!(reason.contains("wall-clock"), "{reason}");
                    break;
                }
            }
        }
    }

    #[test]
    fn framing_round_trips_any_size() {
        for size in [128, 200, 1000, 1400] {
            for len in [0usize, 1, 100, 121, 122, 1000, 5000, 20_000] {
                let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut tx = Framing::new(size);
                let mut rx = Framing::new(size);
                tx.queue(msg.clone()).unwrap();
                let mut fragments = 0;
                loop {
                    let f = tx.next_fragment(0);
                    assert!(f.len() + 5 <= size, "{} > {size}", f.len() + 5);
                    fragments += 1;
                    match rx.receive(&f).unwrap() {
                        Received::NeedMore => {
                            // The receiver's acknowledgement.
                            let ack = rx.next_fragment(0);
                            assert_eq!(ack, vec![0]);
                            assert_eq!(tx.receive(&ack).unwrap(), Received::Ack);
                        }
                        Received::Complete(m) => {
                            assert_eq!(m, msg);
                            break;
                        }
                        Received::Ack => panic!(),
                    }
                }
                assert!(!tx.sending());
                assert!(fragments <= len / (size - 10) + 1, "{fragments}");
            }
        }
    }

    #[test]
    fn framing_rejects_hostile_fragments() {
        let mut f = Framing::new(1024);
        assert!(f.receive(&[]).is_err(), "no flags");
        assert!(f.receive(&[FLAG_L, 0, 0]).is_err(), "short length");
        let mut f = Framing::new(1024);
        assert!(
            f.receive(&[FLAG_L | FLAG_M, 0xff, 0xff, 0xff, 0xff, 1])
                .is_err()
        );
        let mut f = Framing::new(1024);
        assert!(
            f.receive(&[FLAG_L | FLAG_M, 0, 1, 0, 1, 1]).is_err(),
            "over 64 KiB"
        );
        let mut f = Framing::new(1024);
        assert_eq!(
            f.receive(&[FLAG_L | FLAG_M, 0, 0, 0, 3, 1, 2]),
            Ok(Received::NeedMore)
        );
        assert!(
            f.receive(&[FLAG_M, 3, 4]).is_err(),
            "beyond the announced length"
        );
        let mut f = Framing::new(1024);
        f.receive(&[FLAG_L | FLAG_M, 0, 0, 0, 3, 1]).unwrap();
        assert!(
            f.receive(&[FLAG_L, 0, 0, 0, 4, 2]).is_err(),
            "length changed"
        );
        let mut f = Framing::new(1024);
        f.receive(&[FLAG_L | FLAG_M, 0, 0, 0, 3, 1]).unwrap();
        assert!(f.receive(&[0, 2]).is_err(), "shorter than announced");
        let mut f = Framing::new(1024);
        assert!(f.receive(&[FLAG_M]).is_err(), "M without data");
        // Unannounced fragments are bounded too.
        let mut f = Framing::new(1024);
        let chunk = [vec![FLAG_M], vec![0u8; 1000]].concat();
        let mut err = false;
        for _ in 0..70 {
            if f.receive(&chunk).is_err() {
                err = true;
                break;
            }
        }
        assert!(err, "unbounded reassembly");
        // Data while we are still sending fragments.
        let mut f = Framing::new(200);
        f.queue(vec![0; 1000]).unwrap();
        f.next_fragment(0);
        assert!(f.receive(&[0, 1, 2]).is_err());
    }

    #[test]
    fn server_fails_on_hostile_messages_and_stays_failed() {
        let st = setup(false);
        let hostile: [&[u8]; 9] = [
            &[],
            &[2, 0, 0, 3],
            &[1, 0, 0, 6, 13, 0],                               // a Request
            &[2, 0, 0, 6, 3, 13],                               // Nak
            &[2, 0, 0, 5, 13],                                  // no flags
            &[2, 0, 0, 6, 13, 0],                               // empty during the handshake
            &[2, 0, 0, 6, 26, 0],                               // another method
            &[2, 0, 0, 11, 13, 0, 22, 3, 1, 0],                 // truncated TLS record
            &[2, 0, 0, 14, 13, 0x80, 0, 0, 0, 99, 22, 3, 1, 0], // wrong length
        ];
        for h in hostile {
            let (mut s, _) = st.server(TlsVersions::Tls12And13, 1024, false, None);
            let mut h = h.to_vec();
            if h.len() > 1 {
                h[1] = s.identifier;
            }
            let step = s.process(&h, Some(now()));
            assert!(matches!(step, Step::Failure { .. }), "{h:?}");
            assert!(matches!(s.process(&h, Some(now())), Step::Failure { .. }));
        }
        // A wrong identifier.
        let (mut s, req) = st.server(TlsVersions::Tls12And13, 1024, false, None);
        let resp = [2, req[1].wrapping_add(1), 0, 6, 13, 0];
        assert!(matches!(
            s.process(&resp, Some(now())),
            Step::Failure { .. }
        ));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Whatever a client sends, the server answers and never
            /// panics, and never reports success.
            #[test]
            fn server_survives_arbitrary_responses(
                msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
                tls_header in any::<bool>(),
            ) {
                SETUP.with(|st| {
                    let (mut s, _) = st.server(TlsVersions::Tls12And13, 256, false, None);
                    for m in msgs {
                        let mut p = if tls_header {
                            let len = (m.len() + 5).min(0xffff) as u16;
                            let mut p = vec![2, s.identifier];
                            p.extend_from_slice(&len.to_be_bytes());
                            p.push(13);
                            p
                        } else {
                            Vec::new()
                        };
                        p.extend_from_slice(&m);
                        match s.process(&p, Some(now())) {
                            Step::Success { .. } => panic!("success from random bytes"),
                            Step::Failure { .. } => break,
                            Step::Continue(next) => assert!(EapPacket::parse(&next).is_ok()),
                        }
                    }
                    assert!(s.msk().is_none());
                });
            }
        }

        thread_local! {
            static SETUP: Setup = setup(false);
        }
    }
}
