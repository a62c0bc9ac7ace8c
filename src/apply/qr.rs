//! A QR code PNG of a client config, for phone VPN apps.
//!
//! The symbol is built by the `qrcode` crate (segments, Reed-Solomon, module
//! placement, format and version info); only the choice of the mask is ours.
//! ISO/IEC 18004 has the encoder evaluate all eight masks and keep the one of
//! the lowest penalty. The crate does that on a fresh copy of its canvas per
//! mask with a per-module scorer (1.5 ms a symbol); fast_qr, before it, took
//! 0.16 ms, a third of an apply's CPU. Here the eight candidates are XORs of
//! bit rows and the penalty rules (N1 runs, N2 blocks, N3 finder lookalikes,
//! N4 balance) popcounts over them, scored exactly as the crate scores
//! (`picks_the_same_mask_as_the_qrcode_crate` holds us to its symbols):
//! 0.04 ms a symbol, encoding included.

use std::cell::RefCell;

use anyhow::{Context, Result};
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{bits, ec, Color, EcLevel, Version};

const SCALE: usize = 4;
const QUIET: usize = 4;
const ECL: EcLevel = EcLevel::L;

/// What a phone's VPN app needs of a config: the lines without comments and
/// blank lines. Fewer bytes make a smaller symbol (422 bytes → 326 for the
/// shipped template: version 13 → 12), which phones read more easily and we
/// encode faster.
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
    let symbol = encode(text.as_bytes())?;
    render(&symbol)
}

/// The modules of `text`'s symbol, for drawing it as vectors (the letters
/// PDF): the width in modules and, row by row, `true` for dark.
pub fn modules(text: &str) -> Result<(usize, Vec<bool>)> {
    let symbol = encode(text.as_bytes())?;
    Ok((symbol.width, symbol.dark))
}

/// A finished symbol: `width` × `width` modules, row by row, `true` = dark.
struct Symbol {
    width: usize,
    dark: Vec<bool>,
}

fn encode(data: &[u8]) -> Result<Symbol> {
    let too_long = |e| anyhow::anyhow!("the config does not fit a QR code: {e:?}");
    let bits = bits::encode_auto(data, ECL).map_err(too_long)?;
    let version = bits.version();
    let (data, ec) = ec::construct_codewords(&bits.into_bytes(), version, ECL).map_err(too_long)?;
    let mut canvas = Canvas::new(version, ECL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    let width = usize::try_from(version.width()).context("QR code width")?;
    if width > masks::MAX_WIDTH {
        // Version 26 and up (over ~1,500 bytes): no bit row holds a line with
        // its quiet zone; the crate's own search is slow but right.
        let dark = canvas
            .apply_best_mask()
            .into_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        return Ok(Symbol { width, dark });
    }
    Ok(masks::best(&canvas, version, width))
}

/// The mask search on bit rows. A row (or column) of the symbol is a `u128`
/// whose bit `PAD + x` is module `x`; the `PAD` bits below and the bits above
/// the symbol stay 0, light like the quiet zone they stand for.
mod masks {
    use super::*;

    const PAD: usize = 4;
    /// The widest symbol whose line, with 4 light modules on each side, fits a `u128`.
    pub const MAX_WIDTH: usize = 128 - 2 * PAD;

    const PATTERNS: [MaskPattern; 8] = [
        MaskPattern::Checkerboard,
        MaskPattern::HorizontalLines,
        MaskPattern::VerticalLines,
        MaskPattern::DiagonalLines,
        MaskPattern::LargeCheckerboard,
        MaskPattern::Fields,
        MaskPattern::Diamonds,
        MaskPattern::Meadow,
    ];

    /// Rows and columns of one version's symbol with no data in it, once per
    /// mask: function patterns and the format info of that mask, and the mask
    /// itself over the data modules. A symbol masked with it is this XOR its
    /// unmasked data modules.
    struct Templates {
        width: usize,
        rows: [Vec<u128>; 8],
        cols: [Vec<u128>; 8],
    }

    thread_local! {
        // A handful of versions at most in a run; built once per thread.
        static TEMPLATES: RefCell<Vec<std::rc::Rc<Templates>>> = const { RefCell::new(Vec::new()) };
    }

    fn templates(version: Version, width: usize) -> std::rc::Rc<Templates> {
        TEMPLATES.with(|cache| {
            if let Some(t) = cache.borrow().iter().find(|t| t.width == width) {
                return t.clone();
            }
            let mut blank = Canvas::new(version, ECL);
            blank.draw_all_functional_patterns();
            let mut rows: [Vec<u128>; 8] = Default::default();
            let mut cols: [Vec<u128>; 8] = Default::default();
            for (i, pattern) in PATTERNS.into_iter().enumerate() {
                let mut masked = blank.clone();
                masked.apply_mask(pattern);
                (rows[i], cols[i]) = lines(width, |x, y| masked.get(x, y).is_dark());
            }
            let t = std::rc::Rc::new(Templates { width, rows, cols });
            cache.borrow_mut().push(t.clone());
            t
        })
    }

    /// Rows and columns of the modules for which `dark` holds.
    fn lines(width: usize, dark: impl Fn(i16, i16) -> bool) -> (Vec<u128>, Vec<u128>) {
        let mut rows = vec![0u128; width];
        let mut cols = vec![0u128; width];
        for (y, row) in rows.iter_mut().enumerate() {
            for (x, col) in cols.iter_mut().enumerate() {
                // width ≤ MAX_WIDTH: the casts are exact.
                if dark(x as i16, y as i16) {
                    *row |= 1 << (PAD + x);
                    *col |= 1 << (PAD + y);
                }
            }
        }
        (rows, cols)
    }

    /// The symbol of `canvas` (data drawn, not masked) under the mask of the
    /// lowest penalty; the first of equals, like `Canvas::apply_best_mask`.
    pub fn best(canvas: &Canvas, version: Version, width: usize) -> Symbol {
        let t = templates(version, width);
        let (data_rows, data_cols) = lines(width, |x, y| {
            canvas.get(x, y) == Module::Unmasked(Color::Dark)
        });
        let mut rows = vec![0u128; width];
        let mut cols = vec![0u128; width];
        let mut best: Option<(u32, usize)> = None;
        for m in 0..8 {
            xor(&mut rows, &t.rows[m], &data_rows);
            xor(&mut cols, &t.cols[m], &data_cols);
            let score = penalty(&rows, &cols, width);
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, m));
            }
        }
        let m = best.map_or(0, |(_, m)| m);
        xor(&mut rows, &t.rows[m], &data_rows);
        let dark = rows
            .iter()
            .flat_map(|row| (0..width).map(move |x| row >> (PAD + x) & 1 == 1))
            .collect();
        Symbol { width, dark }
    }

    fn xor(out: &mut [u128], a: &[u128], b: &[u128]) {
        for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
            *o = a ^ b;
        }
    }

    /// The penalty of `qrcode`'s `Canvas::compute_total_penalty_scores`, less
    /// its constant (the finder patterns' own 360): the same order of masks.
    pub(super) fn penalty(rows: &[u128], cols: &[u128], width: usize) -> u32 {
        let n = width;
        let mut score = line_penalty(rows, n) + line_penalty(cols, n);
        // N2: 3 for each 2×2 block of one colour (overlaps count).
        let pairs = ((1u128 << (n - 1)) - 1) << PAD;
        for pair in rows.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let same = !(a ^ (a >> 1)) & !(b ^ (b >> 1)) & !(a ^ b) & pairs;
            score += 3 * same.count_ones();
        }
        // N4: |dark share − 50 %| in points of 0.5 %, as the crate rounds it.
        let dark: u32 = rows.iter().map(|r| r.count_ones()).sum();
        let ratio = dark as usize * 200 / (n * n);
        score + ratio.abs_diff(100) as u32
    }

    /// N1 and N3 along lines (rows or columns) of `n` modules.
    fn line_penalty(lines: &[u128], n: usize) -> u32 {
        // Bit i of `pairs`: modules i and i+1 are both in the line.
        let pairs = ((1u128 << (n - 1)) - 1) << PAD;
        // Bit j of `starts`: a 7-module pattern starting at j ends in the line.
        let starts = ((1u128 << (n - 6)) - 1) << PAD;
        let mut score = 0;
        for &r in lines {
            // N1: a run of L ≥ 5 modules of one colour scores L − 2. It is a
            // stretch of L − 1 equal neighbours; bits where 4 such begin count
            // L − 4 … minus one, plus 2 for each stretch (its first such bit).
            let eq = !(r ^ (r >> 1)) & pairs;
            let two = eq & (eq >> 1);
            let four = two & (two >> 2);
            score += four.count_ones() + 2 * (four & !(four << 1)).count_ones();
            // N3: dark-light-dark³-light-dark with 4 light modules before or
            // after it (outside the symbol counts as light): 40 each. Bit i
            // of `dark3` / `light4`: the 3 / 4 modules from i on are dark / light.
            let l = !r;
            let dark3 = r & (r >> 1) & (r >> 2);
            let light2 = l & (l >> 1);
            let light4 = light2 & (light2 >> 2);
            let finder = r & (l >> 1) & (dark3 >> 2) & (l >> 5) & (r >> 6);
            let lit = (light4 << 4) | (light4 >> 7);
            score += 40 * (finder & lit & starts).count_ones();
        }
        score
    }
}

fn render(symbol: &Symbol) -> Result<Vec<u8>> {
    let modules = symbol.width;
    let side = (modules + 2 * QUIET) * SCALE;
    // One bit per pixel, 1 = white: an eighth of the bytes to deflate.
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xffu8; row_bytes * side];
    for y in 0..modules {
        let top = (y + QUIET) * SCALE * row_bytes;
        let row = &mut pixels[top..top + row_bytes];
        for x in 0..modules {
            if symbol.dark[y * modules + x] {
                for dx in 0..SCALE {
                    let px = (x + QUIET) * SCALE + dx;
                    row[px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
        // The other pixel rows of this module row are the same.
        for dy in 1..SCALE {
            pixels.copy_within(top..top + row_bytes, top + dy * row_bytes);
        }
    }
    let mut out = Vec::new();
    {
        let size = u32::try_from(side).context("QR code too large")?;
        let mut encoder = png::Encoder::new(&mut out, size, size);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // Each module row is SCALE equal pixel rows: with the Up filter all
        // but the first are zeros, which deflate to nearly nothing.
        encoder.set_filter(png::FilterType::Up);
        // `fdeflate` rather than zlib's level 6: 24 µs a code instead of
        // 105 µs (a tenth of a 100,000-person apply's CPU), for 2.9 KB
        // instead of 1.3 KB.
        encoder.set_compression(png::Compression::Fast);
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

    const CONFIG: &str = "[Interface]\nPrivateKey = 9liljEtUxXmjop6yiA1wlIw/NMpC70a37ILKhgT1b88=\nAddress = 10.20.0.2/32\nDNS = 10.20.0.1, musterstadt.example\nMTU = 1380\n\n[Peer]\nPublicKey = WUgk0xLKXLhOiEklTDgyJNO1dGJw35CH+6eVgieEqRY=\nAllowedIPs = 10.20.0.0/16, 10.0.0.0/8, 172.16.0.0/12\nEndpoint = vpn.musterstadt.example:51820\nPersistentKeepalive = 25\n";

    #[test]
    fn decodes_back_to_the_config() {
        let bytes = super::png(CONFIG).unwrap();
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
        assert_eq!(text, CONFIG);
    }

    /// Texts of every length up to past the fast search's limit (version 25),
    /// of bytes that make the crate mix numeric, alphanumeric and byte segments.
    fn samples() -> impl Iterator<Item = String> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:abcdefghijklmnopqrstuvwxyz=[]\n";
        let lengths = (0..40).chain((40..1700).step_by(23)).chain([1800, 2300]);
        lengths
            .map(move |len| {
                (0..len)
                    .map(|_| alphabet[next() as usize % alphabet.len()] as char)
                    .collect::<String>()
            })
            .chain(std::iter::once(CONFIG.to_string()))
    }

    #[test]
    fn picks_the_same_mask_as_the_qrcode_crate() {
        for text in samples() {
            let ours = super::encode(text.as_bytes()).unwrap();
            let theirs = qrcode::QrCode::with_error_correction_level(&text, super::ECL).unwrap();
            assert_eq!(ours.width, theirs.width(), "{} bytes", text.len());
            let dark: Vec<bool> = theirs
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect();
            assert!(ours.dark == dark, "{} bytes: another symbol", text.len());
        }
    }
}
