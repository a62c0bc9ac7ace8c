//! A QR code PNG of a client config, for phone VPN apps.

use anyhow::{Context, Result};
use fast_qr::{QRBuilder, ECL};

const SCALE: usize = 4;
const QUIET: usize = 4;

/// What a phone's VPN app needs of a config: the lines without comments and
/// blank lines. Fewer bytes make a smaller symbol (422 bytes → 326 for the
/// shipped template: version 13 → 12), which phones read more easily and we
/// encode faster (the mask search is most of a bundle's CPU).
pub fn config_for_phone(config: &str) -> String {
    let mut out = String::with_capacity(config.len());
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.push_str(trimmed);
        out.push('\n');
    }
    out
}

/// Encode `text` as a black-on-white PNG (4 px per module, 4-module quiet zone).
pub fn png(text: &str) -> Result<Vec<u8>> {
    let code = QRBuilder::new(text.as_bytes())
        .ecl(ECL::L)
        .build()
        .map_err(|e| anyhow::anyhow!("the config does not fit a QR code: {e:?}"))?;
    let modules = code.size;
    let side = (modules + 2 * QUIET) * SCALE;
    // One bit per pixel, 1 = white: an eighth of the bytes to deflate.
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xffu8; row_bytes * side];
    for y in 0..modules {
        for x in 0..modules {
            if code[y][x].value() {
                for dy in 0..SCALE {
                    let row = ((y + QUIET) * SCALE + dy) * row_bytes;
                    for dx in 0..SCALE {
                        let px = (x + QUIET) * SCALE + dx;
                        pixels[row + px / 8] &= !(0x80 >> (px % 8));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let size = u32::try_from(side).context("QR code too large")?;
        let mut encoder = png::Encoder::new(&mut out, size, size);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png() {
        let bytes = super::png("[Interface]\nPrivateKey = x\n").unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= (21 + 8) * 4);
    }

    #[test]
    fn phones_get_the_config_without_comments() {
        let config = "# WireGuard – Stadt\n# Anna (ameier)\n\n[Interface]\nPrivateKey = k\nAddress = 10.20.0.2/32\n\n[Peer]\nPublicKey = p\nEndpoint = [2001:db8::1]:51820\n";
        assert_eq!(
            super::config_for_phone(config),
            "[Interface]\nPrivateKey = k\nAddress = 10.20.0.2/32\n[Peer]\nPublicKey = p\nEndpoint = [2001:db8::1]:51820\n"
        );
    }

    #[test]
    fn decodes_back_to_the_config() {
        let config = "[Interface]\nPrivateKey = 9liljEtUxXmjop6yiA1wlIw/NMpC70a37ILKhgT1b88=\nAddress = 10.20.0.2/32\nDNS = 10.20.0.1, musterstadt.example\nMTU = 1380\n\n[Peer]\nPublicKey = WUgk0xLKXLhOiEklTDgyJNO1dGJw35CH+6eVgieEqRY=\nAllowedIPs = 10.20.0.0/16, 10.0.0.0/8, 172.16.0.0/12\nEndpoint = vpn.musterstadt.example:51820\nPersistentKeepalive = 25\n";
        let bytes = super::png(config).unwrap();
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, text) = grids[0].decode().unwrap();
        assert_eq!(text, config);
    }
}
