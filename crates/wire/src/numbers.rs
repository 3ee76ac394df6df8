//! Protocol numbers as open newtypes: every value of the field is representable,
//! so an unknown number survives parse → emit unchanged; the well-known ones are
//! named constants (IANA "Internet Key Exchange Version 2 (IKEv2) Parameters").

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident($repr:ty) { $($(#[$cm:meta])* $cname:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);
        impl $name {
            $($(#[$cm])* pub const $cname: $name = $name($val);)*
            /// The IANA name of a known value, `None` for others.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(v if v == $val => Some(stringify!($cname)),)*
                    _ => None,
                }
            }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }
        impl From<$repr> for $name { fn from(v: $repr) -> Self { $name(v) } }
        impl From<$name> for $repr { fn from(v: $name) -> Self { v.0 } }
    };
}

open_enum!(
    /// RFC 7296 §3.1 exchange types.
    ExchangeType(u8) {
        IKE_SA_INIT = 34, IKE_AUTH = 35, CREATE_CHILD_SA = 36, INFORMATIONAL = 37,
        /// RFC 9242.
        IKE_INTERMEDIATE = 43,
        /// RFC 9370 §2.2.4: additional key exchanges after a CREATE_CHILD_SA.
        IKE_FOLLOWUP_KE = 44,
    }
);

open_enum!(
    /// RFC 7296 §3.2 payload types.
    PayloadType(u8) {
        NONE = 0, SA = 33, KE = 34, IDI = 35, IDR = 36, CERT = 37, CERTREQ = 38, AUTH = 39,
        NONCE = 40, NOTIFY = 41, DELETE = 42, VENDOR_ID = 43, TSI = 44, TSR = 45, SK = 46,
        CP = 47, EAP = 48,
        /// RFC 7383 encrypted fragment.
        SKF = 53,
    }
);

open_enum!(
    /// Security protocol identifiers (RFC 7296 §3.3.1).
    ProtocolId(u8) { NONE = 0, IKE = 1, AH = 2, ESP = 3 }
);

open_enum!(
    /// Transform types (RFC 7296 §3.3.2, RFC 9370 for ADDKE*).
    TransformType(u8) {
        ENCR = 1, PRF = 2, INTEG = 3, KE = 4, ESN = 5,
        ADDKE1 = 6, ADDKE2 = 7, ADDKE3 = 8, ADDKE4 = 9, ADDKE5 = 10, ADDKE6 = 11, ADDKE7 = 12,
    }
);

/// Transform identifier; its meaning depends on the transform type, so the named
/// values live in the [`encr`], [`prf`], [`integ`], [`ke`] and [`esn`] modules.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct TransformId(pub u16);

/// Encryption algorithm transform IDs (type 1).
pub mod encr {
    use super::TransformId;
    pub const DES_IV64: TransformId = TransformId(1);
    pub const DES: TransformId = TransformId(2);
    pub const TRIPLE_DES: TransformId = TransformId(3);
    pub const NULL: TransformId = TransformId(11);
    pub const AES_CBC: TransformId = TransformId(12);
    pub const AES_CTR: TransformId = TransformId(13);
    pub const AES_CCM_8: TransformId = TransformId(14);
    pub const AES_CCM_12: TransformId = TransformId(15);
    pub const AES_CCM_16: TransformId = TransformId(16);
    pub const AES_GCM_8: TransformId = TransformId(18);
    pub const AES_GCM_12: TransformId = TransformId(19);
    pub const AES_GCM_16: TransformId = TransformId(20);
    pub const NULL_AUTH_AES_GMAC: TransformId = TransformId(21);
    pub const CHACHA20_POLY1305: TransformId = TransformId(28);
}

/// Pseudorandom function transform IDs (type 2).
pub mod prf {
    use super::TransformId;
    pub const HMAC_MD5: TransformId = TransformId(1);
    pub const HMAC_SHA1: TransformId = TransformId(2);
    pub const AES128_XCBC: TransformId = TransformId(4);
    pub const HMAC_SHA2_256: TransformId = TransformId(5);
    pub const HMAC_SHA2_384: TransformId = TransformId(6);
    pub const HMAC_SHA2_512: TransformId = TransformId(7);
    pub const AES128_CMAC: TransformId = TransformId(8);
}

/// Integrity algorithm transform IDs (type 3).
pub mod integ {
    use super::TransformId;
    pub const NONE: TransformId = TransformId(0);
    pub const HMAC_MD5_96: TransformId = TransformId(1);
    pub const HMAC_SHA1_96: TransformId = TransformId(2);
    pub const AES_XCBC_96: TransformId = TransformId(5);
    pub const AES_CMAC_96: TransformId = TransformId(8);
    pub const HMAC_SHA2_256_128: TransformId = TransformId(12);
    pub const HMAC_SHA2_384_192: TransformId = TransformId(13);
    pub const HMAC_SHA2_512_256: TransformId = TransformId(14);
}

/// Key exchange method transform IDs (type 4, formerly "Diffie-Hellman group").
pub mod ke {
    use super::TransformId;
    pub const NONE: TransformId = TransformId(0);
    pub const MODP_768: TransformId = TransformId(1);
    pub const MODP_1024: TransformId = TransformId(2);
    pub const MODP_1536: TransformId = TransformId(5);
    pub const MODP_2048: TransformId = TransformId(14);
    pub const MODP_3072: TransformId = TransformId(15);
    pub const MODP_4096: TransformId = TransformId(16);
    pub const MODP_6144: TransformId = TransformId(17);
    pub const MODP_8192: TransformId = TransformId(18);
    pub const ECP_256: TransformId = TransformId(19);
    pub const ECP_384: TransformId = TransformId(20);
    pub const ECP_521: TransformId = TransformId(21);
    pub const ECP_256_BP: TransformId = TransformId(28);
    pub const ECP_384_BP: TransformId = TransformId(29);
    pub const ECP_512_BP: TransformId = TransformId(30);
    pub const CURVE25519: TransformId = TransformId(31);
    pub const CURVE448: TransformId = TransformId(32);
    pub const ML_KEM_512: TransformId = TransformId(35);
    pub const ML_KEM_768: TransformId = TransformId(36);
    pub const ML_KEM_1024: TransformId = TransformId(37);
}

/// Extended sequence numbers transform IDs (type 5).
pub mod esn {
    use super::TransformId;
    pub const NO: TransformId = TransformId(0);
    pub const YES: TransformId = TransformId(1);
}

/// Transform attribute type for the key length (RFC 7296 §3.3.5), always TV format.
pub const ATTR_KEY_LENGTH: u16 = 14;

open_enum!(
    /// Notify message types (RFC 7296 §3.10.1 and later RFCs).
    NotifyType(u16) {
        UNSUPPORTED_CRITICAL_PAYLOAD = 1, INVALID_IKE_SPI = 4, INVALID_MAJOR_VERSION = 5,
        INVALID_SYNTAX = 7, INVALID_MESSAGE_ID = 9, INVALID_SPI = 11, NO_PROPOSAL_CHOSEN = 14,
        INVALID_KE_PAYLOAD = 17, AUTHENTICATION_FAILED = 24, SINGLE_PAIR_REQUIRED = 34,
        NO_ADDITIONAL_SAS = 35, INTERNAL_ADDRESS_FAILURE = 36, FAILED_CP_REQUIRED = 37,
        TS_UNACCEPTABLE = 38, INVALID_SELECTORS = 39, TEMPORARY_FAILURE = 43,
        CHILD_SA_NOT_FOUND = 44,
        /// RFC 9370 §2.2.4: an IKE_FOLLOWUP_KE whose link the responder does not know.
        STATE_NOT_FOUND = 47,
        INITIAL_CONTACT = 16384, SET_WINDOW_SIZE = 16385, ADDITIONAL_TS_POSSIBLE = 16386,
        IPCOMP_SUPPORTED = 16387, NAT_DETECTION_SOURCE_IP = 16388,
        NAT_DETECTION_DESTINATION_IP = 16389, COOKIE = 16390, USE_TRANSPORT_MODE = 16391,
        HTTP_CERT_LOOKUP_SUPPORTED = 16392, REKEY_SA = 16393,
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394, NON_FIRST_FRAGMENTS_ALSO = 16395,
        MOBIKE_SUPPORTED = 16396, ADDITIONAL_IP4_ADDRESS = 16397,
        ADDITIONAL_IP6_ADDRESS = 16398, NO_ADDITIONAL_ADDRESSES = 16399,
        UPDATE_SA_ADDRESSES = 16400, COOKIE2 = 16401, NO_NATS_ALLOWED = 16402,
        AUTH_LIFETIME = 16403, MULTIPLE_AUTH_SUPPORTED = 16404,
        ANOTHER_AUTH_FOLLOWS = 16405, REDIRECT_SUPPORTED = 16406, REDIRECT = 16407,
        REDIRECTED_FROM = 16408, EAP_ONLY_AUTHENTICATION = 16417,
        IKEV2_FRAGMENTATION_SUPPORTED = 16430, SIGNATURE_HASH_ALGORITHMS = 16431,
        USE_PPK = 16435, PPK_IDENTITY = 16436, NO_PPK_AUTH = 16437,
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
        /// RFC 9370 §2.2.4: links a CREATE_CHILD_SA to its IKE_FOLLOWUP_KE exchanges.
        ADDITIONAL_KEY_EXCHANGE = 16441,
    }
);

impl NotifyType {
    /// Types below 16384 report errors (RFC 7296 §3.10.1).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }
}

open_enum!(
    /// Identification types (RFC 7296 §3.5).
    IdType(u8) {
        IPV4_ADDR = 1, FQDN = 2, RFC822_ADDR = 3, IPV6_ADDR = 5, DER_ASN1_DN = 9,
        DER_ASN1_GN = 10, KEY_ID = 11,
    }
);

open_enum!(
    /// Authentication methods (RFC 7296 §3.8, RFC 7427).
    AuthMethod(u8) {
        RSA_SIG = 1, SHARED_KEY_MIC = 2, DSS_SIG = 3, ECDSA_SHA256_P256 = 9,
        ECDSA_SHA384_P384 = 10, ECDSA_SHA512_P521 = 11, GENERIC_SECURE_PASSWORD = 12,
        NULL_AUTH = 13, DIGITAL_SIGNATURE = 14,
    }
);

open_enum!(
    /// Traffic selector types (RFC 7296 §3.13.1).
    TsType(u8) { IPV4_ADDR_RANGE = 7, IPV6_ADDR_RANGE = 8 }
);

open_enum!(
    /// Certificate encodings (RFC 7296 §3.6).
    CertEncoding(u8) {
        PKCS7_X509 = 1, PGP = 2, DNS_SIGNED_KEY = 3, X509_SIGNATURE = 4, KERBEROS_TOKEN = 6,
        CRL = 7, ARL = 8, SPKI = 9, X509_ATTRIBUTE = 10, HASH_URL_X509_CERT = 12,
        HASH_URL_X509_BUNDLE = 13,
    }
);

open_enum!(
    /// Configuration payload types (RFC 7296 §3.15).
    CfgType(u8) { CFG_REQUEST = 1, CFG_REPLY = 2, CFG_SET = 3, CFG_ACK = 4 }
);

open_enum!(
    /// Configuration attribute types (RFC 7296 §3.15.1, RFC 8598).
    CfgAttrType(u16) {
        INTERNAL_IP4_ADDRESS = 1, INTERNAL_IP4_NETMASK = 2, INTERNAL_IP4_DNS = 3,
        INTERNAL_IP4_NBNS = 4, INTERNAL_IP4_DHCP = 6, APPLICATION_VERSION = 7,
        INTERNAL_IP6_ADDRESS = 8, INTERNAL_IP6_DNS = 10, INTERNAL_IP6_DHCP = 12,
        INTERNAL_IP4_SUBNET = 13, SUPPORTED_ATTRIBUTES = 14, INTERNAL_IP6_SUBNET = 15,
        INTERNAL_DNS_DOMAIN = 25, INTERNAL_DNSSEC_TA = 26,
    }
);
