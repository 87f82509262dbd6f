//! QR codes of ticket URIs, as SVG (for pages) and PNG (for apps and mail).

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

use crate::error::{Error, Result};

/// Blank modules around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;

fn encode(data: &str) -> Result<QrCode> {
    // Medium error correction: survives a scuffed phone screen, keeps the code small.
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| Error::invalid("qr", format!("cannot encode as a QR code: {e}")))
}

/// An SVG document, at least `min_size` pixels wide.
pub fn svg(data: &str, min_size: u32) -> Result<String> {
    Ok(encode(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(min_size, min_size)
        .quiet_zone(true)
        .build())
}

/// A grayscale PNG, `scale` pixels per module.
pub fn png(data: &str, scale: usize) -> Result<Vec<u8>> {
    let code = encode(data)?;
    let modules = code.width();
    let scale = scale.max(1);
    let side = (modules + 2 * QUIET_ZONE) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (index % modules + QUIET_ZONE, index / modules + QUIET_ZONE);
        for row in y * scale..(y + 1) * scale {
            pixels[row * side + x * scale..row * side + (x + 1) * scale].fill(0);
        }
    }
    let side = u32::try_from(side).map_err(|_| Error::invalid("qr", "too large"))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let png_error = |e: png::EncodingError| Error::storage(format!("encoding a PNG failed: {e}"));
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scanner_reads_the_png_back_as_the_uri() {
        let uri = "otpauth://totp/auth-server:RustConf%202026%20%231%20alice?\
                   secret=72RKTDMCH2OQMPGTT7FYAGZIN4SNJGC3AKKHVMU3P4EVPA5XO3QA&issuer=auth-server";
        let png = png(uri, 4).unwrap();
        let mut reader = ::png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0u8; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }

    #[test]
    fn svg_and_png_are_well_formed() {
        let uri = "otpauth://totp/Conf%20%231?secret=JBSWY3DPEHPK3PXP&issuer=Conf";
        let svg = svg(uri, 200).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        let png = png(uri, 4).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = ::png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % 4, 0);
    }
}
