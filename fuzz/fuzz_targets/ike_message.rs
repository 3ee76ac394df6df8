//! Parses arbitrary bytes as an IKE message; whatever parses must emit to
//! bytes that parse back to the same message (and, since emission is
//! canonical, to a datagram of the same length). The decrypted-payload chain
//! parser gets the same bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxisec_wire::{Message, PayloadType, emit_payloads, parse_payloads, rules};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let bytes = m.emit();
        assert_eq!(bytes.len(), data.len());
        let again = Message::parse(&bytes).expect("emitted message must parse");
        assert_eq!(again, m);
        if let Some(off) = m.encrypted_body_offset() {
            assert!(off <= bytes.len());
        }
        let _ = rules::check(m.header.exchange, m.header.flags.response(), &m.payloads);
    }
    if let Some((&first, rest)) = data.split_first()
        && let Ok(ps) = parse_payloads(PayloadType(first), rest)
    {
        let mut out = Vec::new();
        let ty = emit_payloads(&ps, &mut out);
        assert_eq!(
            parse_payloads(ty, &out).expect("emitted chain must parse"),
            ps
        );
    }
});
