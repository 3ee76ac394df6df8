//! `oxisec proposals`: every algorithm keyword oxisec accepts, the transform
//! it names and how RFC 8247 (IKE) and RFC 8221 (ESP) rank it, so an admin
//! can build a proposal string without reading either RFC.
use oxisec_crypto::policy::{self, Status, Usage};
use oxisec_ike::proposal::{self, Algorithm};
use oxisec_wire::{TransformType, encr};

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub keyword: &'static str,
    pub kind: &'static str,
    pub transform: String,
    /// How IKE may use it: a status, or why it cannot.
    pub ike: String,
    pub esp: String,
}

fn kind(ty: TransformType) -> &'static str {
    match ty {
        TransformType::ENCR => "encryption",
        TransformType::INTEG => "integrity",
        TransformType::PRF => "prf",
        TransformType::KE => "key exchange",
        TransformType::ESN => "esn",
        _ => "other",
    }
}

fn rank(usage: Usage, a: Algorithm) -> String {
    let usable = match (usage, a.ty) {
        (Usage::Ike, TransformType::ESN) | (Usage::Esp, TransformType::PRF) => false,
        (Usage::Ike, TransformType::ENCR) => a.id != encr::NULL,
        _ => true,
    };
    if !usable {
        return "-".into();
    }
    match policy::classify(usage, a.ty, a.id) {
        // In ESP proposals a KE transform is the PFS group of
        // CREATE_CHILD_SA, which the IKE table (RFC 8247 §2.4) judges.
        Some(c) => c.status.to_string(),
        None if a.ty == TransformType::ESN => "yes".into(),
        None => "-".into(),
    }
}

/// Every keyword, aliases included, in the order of oxisec's table.
pub fn rows() -> Vec<Row> {
    proposal::keywords()
        .filter(|(name, _)| *name != "none")
        .map(|(keyword, a)| Row {
            keyword,
            kind: kind(a.ty),
            transform: proposal::transform_name(a.ty, a.id, a.key_bits),
            ike: rank(Usage::Ike, a),
            esp: rank(Usage::Esp, a),
        })
        .collect()
}

/// The table `oxisec proposals` prints; `legacy_only` keeps the rows that
/// would draw a configuration warning.
pub fn render(legacy_only: bool) -> String {
    let legacy = Status::Legacy.to_string();
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| !legacy_only || r.ike == legacy || r.esp == legacy)
        .collect();
    let header = ("KEYWORD", "TYPE", "TRANSFORM", "IKE", "ESP");
    let w0 = rows
        .iter()
        .map(|r| r.keyword.len())
        .max()
        .unwrap_or(0)
        .max(header.0.len());
    let w1 = rows
        .iter()
        .map(|r| r.kind.len())
        .max()
        .unwrap_or(0)
        .max(header.1.len());
    let w2 = rows
        .iter()
        .map(|r| r.transform.len())
        .max()
        .unwrap_or(0)
        .max(header.2.len());
    let w3 = rows
        .iter()
        .map(|r| r.ike.len())
        .max()
        .unwrap_or(0)
        .max(header.3.len());
    let mut out = format!(
        "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}\n",
        header.0, header.1, header.2, header.3, header.4
    );
    for r in &rows {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}\n",
            r.keyword, r.kind, r.transform, r.ike, r.esp
        ));
    }
    out.push_str(
        "\nA proposal joins keywords with '-', e.g. aes256gcm16-prfsha384-x25519 (IKE) or \
         aes128gcm16 (ESP);\nkeN_<group> adds an RFC 9370 additional key exchange, e.g. \
         ke1_mlkem768. 'legacy' draws a warning at load;\nrecommended/allowed follow \
         RFC 8247 (IKE) and RFC 8221 (ESP).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(keyword: &str) -> Row {
        rows().into_iter().find(|r| r.keyword == keyword).unwrap()
    }

    #[test]
    fn ranks_by_usage() {
        let r = row("aes256gcm16");
        assert_eq!(
            (r.transform.as_str(), r.ike.as_str(), r.esp.as_str()),
            ("AES_GCM_16_256", "recommended", "recommended")
        );
        let r = row("null");
        assert_eq!((r.ike.as_str(), r.esp.as_str()), ("-", "allowed"));
        let r = row("sha1");
        assert_eq!((r.ike.as_str(), r.esp.as_str()), ("legacy", "legacy"));
        let r = row("prfsha256");
        assert_eq!((r.ike.as_str(), r.esp.as_str()), ("recommended", "-"));
        let r = row("modp1024");
        assert_eq!(r.ike, "legacy");
        assert_eq!(row("esn").ike, "-");
    }

    #[test]
    fn legacy_filter_keeps_only_warned_rows() {
        let text = render(true);
        assert!(text.contains("3des"));
        assert!(text.contains("modp1024"));
        assert!(!text.contains("aes256gcm16 "));
        assert!(render(false).lines().count() > 80);
    }
}
