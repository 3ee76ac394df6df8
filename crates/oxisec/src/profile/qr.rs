//! `--qr`: the profile as a QR code, on the terminal and as a PNG file.
//!
//! A QR code holds at most 2953 bytes (version 40, error correction L,
//! byte mode; ISO/IEC 18004), so a `.sswan` profile with a PKCS#12 bundle
//! inside rarely fits: then the code carries the profile without the
//! bundle, and the strongSwan app asks the user to pick an installed
//! certificate (the bundle still travels as the `.sswan` file or the
//! `oxisec pki` export).
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use super::{Profile, ProfileError, sswan};

/// Largest payload that fits in any QR code (version 40-L, byte mode).
pub const MAX_QR_BYTES: usize = 2953;
/// Modules of light border around the code (the standard asks for 4).
const QUIET: usize = 4;

/// Encodes `data`, with the lowest error correction level that leaves the
/// most room (screens do not get dirty the way printed labels do).
pub fn encode(data: &[u8]) -> Result<QrCode, ProfileError> {
    if data.len() > MAX_QR_BYTES {
        return Err(ProfileError::Unsupported(format!(
            "the profile is {} bytes, more than the {MAX_QR_BYTES} a QR code can hold; transfer the file instead",
            data.len()
        )));
    }
    QrCode::with_error_correction_level(data, EcLevel::L)
        .map_err(|e| ProfileError::Unsupported(format!("cannot make a QR code: {e}")))
}

/// The `.sswan` JSON for a QR code: compact, and without the PKCS#12
/// bundle when it would not fit.
pub fn fit_sswan(p: &Profile) -> Result<Zeroizing<Vec<u8>>, ProfileError> {
    for with_p12 in [true, false] {
        let v = sswan::to_json(p, with_p12);
        let text = Zeroizing::new(
            serde_json::to_vec(&v)
                .map_err(|e| ProfileError::Config(format!("cannot write JSON: {e}")))?,
        );
        if text.len() <= MAX_QR_BYTES {
            if !with_p12 && p.creds.p12.is_some() {
                eprintln!(
                    "oxisec: the PKCS#12 bundle does not fit into a QR code; the code holds the profile without it (import the bundle separately)"
                );
            }
            return Ok(text);
        }
    }
    Err(ProfileError::Unsupported(format!(
        "the profile does not fit into a QR code even without the PKCS#12 bundle (more than {MAX_QR_BYTES} bytes)"
    )))
}

fn dark(code: &QrCode, colors: &[Color], x: usize, y: usize) -> bool {
    let w = code.width();
    if x < QUIET || y < QUIET || x >= w + QUIET || y >= w + QUIET {
        return false;
    }
    colors[(y - QUIET) * w + (x - QUIET)] == Color::Dark
}

/// Two module rows per text line with half blocks. Light modules are drawn
/// as the terminal's foreground, so the code reads correctly on the usual
/// dark terminal background (light text on dark).
pub fn render_terminal(code: &QrCode) -> String {
    let colors = code.to_colors();
    let size = code.width() + 2 * QUIET;
    let mut out = String::with_capacity(size * (size / 2 + 1) * 3);
    for y in (0..size).step_by(2) {
        for x in 0..size {
            let top = !dark(code, &colors, x, y);
            let bottom = y + 1 < size && !dark(code, &colors, x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

/// An 8-bit greyscale PNG, `scale` pixels per module, quiet zone included.
pub fn render_png(code: &QrCode, scale: usize) -> Result<Vec<u8>, ProfileError> {
    let colors = code.to_colors();
    let size = code.width() + 2 * QUIET;
    let px = size * scale;
    let mut img = vec![255u8; px * px];
    for y in 0..size {
        for x in 0..size {
            if dark(code, &colors, x, y) {
                for dy in 0..scale {
                    let row = (y * scale + dy) * px;
                    img[row + x * scale..row + (x + 1) * scale].fill(0);
                }
            }
        }
    }
    let side =
        u32::try_from(px).map_err(|_| ProfileError::Unsupported("QR code too large".into()))?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| ProfileError::Config(format!("cannot write the PNG: {e}"));
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(&img).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_terminal_render() {
        let code = encode(b"{\"uuid\":\"x\"}").unwrap();
        let png = render_png(&code, 4).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Decode it back and check the size and a finder pattern corner.
        let dec = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let side = (code.width() + 2 * QUIET) * 4;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        assert_eq!(buf[0], 255, "quiet zone is white");
        let corner = (QUIET * 4) * side + QUIET * 4;
        assert_eq!(buf[corner], 0, "finder pattern is black");
        let text = render_terminal(&code);
        assert_eq!(text.lines().count(), (code.width() + 2 * QUIET).div_ceil(2));
        assert!(
            text.lines()
                .all(|l| l.chars().count() == code.width() + 2 * QUIET)
        );
    }

    #[test]
    fn refuses_oversized_payloads() {
        assert!(encode(&vec![b'a'; MAX_QR_BYTES + 1]).is_err());
        assert!(encode(&vec![b'a'; MAX_QR_BYTES]).is_ok());
    }
}
