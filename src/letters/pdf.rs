//! Letters laid out on A4 and written as one PDF with krilla.
//!
//! Geometry of DIN 5008 (all in mm from the top left of the sheet): the
//! address field is 85 × 45 mm at 20 mm from the left, from 27 mm (form A)
//! or 45 mm (form B) down; its upper 17.7 mm are the return-address zone,
//! the lower 27.3 mm hold at most six address lines. The information block
//! starts at 125 mm from the left, the body at 25 mm; fold marks at
//! 87/192 mm (A) or 105/210 mm (B), the punch mark at 148.5 mm.

use std::sync::OnceLock;

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;

use super::markup::Block;
use super::LetterError;
use crate::config::DinForm;

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const MM: f32 = 72.0 / 25.4;
const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
const LEFT: f32 = 25.0;
const RIGHT: f32 = 190.0;
const BOTTOM: f32 = 272.0;
const ADDRESS_LEFT: f32 = 25.0;
const ADDRESS_WIDTH: f32 = 80.0;
pub const ADDRESS_LINES: usize = 6;
/// The side of a QR module: 0.6 mm prints and scans well at 300 dpi.
const QR_MODULE: f32 = 0.6;

struct Face {
    font: Font,
    metrics: ttf_parser::Face<'static>,
}

impl Face {
    fn load(bytes: &'static [u8]) -> Face {
        Face {
            font: Font::new(bytes.into(), 0).expect("the embedded font parses"),
            metrics: ttf_parser::Face::parse(bytes, 0).expect("the embedded font parses"),
        }
    }

    /// Width of `text` at `size` pt, in mm (advances; the fonts' kerning is slight).
    fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| {
                self.metrics
                    .glyph_index(c)
                    .and_then(|g| self.metrics.glyph_hor_advance(g))
                    .unwrap_or(0) as u32
            })
            .sum();
        units as f32 * size / self.metrics.units_per_em() as f32 / MM
    }
}

struct Fonts {
    regular: Face,
    bold: Face,
}

fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| Fonts {
        regular: Face::load(REGULAR),
        bold: Face::load(BOLD),
    })
}

/// What a page shows, in mm from the top left.
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        grey: bool,
        text: String,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    Box {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
    Qr {
        x: f32,
        y: f32,
        width: usize,
        dark: Vec<bool>,
    },
}

type Page = Vec<Op>;

/// Split `text` into lines no wider than `width` mm: at spaces, and inside
/// a word only when the word alone is wider.
fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if face.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if face.width(word, size) <= width {
            line = word.to_string();
            continue;
        }
        for c in word.chars() {
            let mut next = line.clone();
            next.push(c);
            if face.width(&next, size) > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line.push(c);
            } else {
                line = next;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// One letter's pages.
struct Layout<'a> {
    fonts: &'a Fonts,
    pages: Vec<Page>,
    y: f32,
    /// Right of the body while a floated QR code is beside it: its left
    /// edge and its bottom.
    float: Option<(f32, f32)>,
    steps: usize,
}

impl Layout<'_> {
    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a letter has a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = 25.0;
        self.float = None;
    }

    fn right(&self, y: f32) -> f32 {
        match self.float {
            Some((left, bottom)) if y - 5.0 < bottom => left - 4.0,
            _ => RIGHT,
        }
    }

    /// Room for `height` mm more, else a new page.
    fn need(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, text: String, size: f32, bold: bool, grey: bool) {
        let y = self.y;
        self.page().push(Op::Text {
            x,
            y,
            size,
            bold,
            grey,
            text,
        });
    }

    /// A wrapped paragraph from `x` (hanging lines at `x` too).
    fn flow(&mut self, x: f32, text: &str, size: f32, bold: bool, grey: bool) {
        let leading = size * 1.35 / MM;
        let face = if bold {
            &self.fonts.bold
        } else {
            &self.fonts.regular
        };
        let width = self.right(self.y + leading) - x;
        for line in wrap(face, text, size, width) {
            self.need(leading);
            self.y += leading;
            self.text(x, line, size, bold, grey);
        }
    }

    fn block(&mut self, block: &Block) -> Result<(), LetterError> {
        match block {
            Block::From(_) | Block::To(_) | Block::Info(..) => {}
            Block::Title(text) => {
                self.need(12.0);
                self.y += 4.0;
                self.flow(LEFT, text, 14.0, true, false);
                self.y += 2.0;
            }
            Block::Heading(text) => {
                self.need(14.0);
                self.y += 3.0;
                self.flow(LEFT, text, 11.0, true, false);
                self.y += 1.0;
                self.steps = 0;
            }
            Block::Para(text) => {
                self.y += 1.5;
                self.flow(LEFT, text, 10.0, false, false);
            }
            Block::Small(text) => {
                self.y += 3.0;
                self.flow(LEFT, text, 8.0, false, true);
            }
            Block::Fact(label, value) | Block::Secret(label, value) => {
                let secret = matches!(block, Block::Secret(..));
                let size = if secret { 12.0 } else { 10.0 };
                let leading = size * 1.4 / MM;
                let x = LEFT + 45.0;
                let width = self.right(self.y + leading) - x;
                let lines = wrap(&self.fonts.bold, value, size, width);
                self.need(leading * lines.len().max(1) as f32 + 1.0);
                let top = self.y;
                self.y += leading;
                self.text(LEFT, label.clone(), 10.0, false, false);
                self.y = top;
                for line in lines {
                    self.y += leading;
                    self.text(x, line, size, true, false);
                }
                if secret {
                    let w = self.fonts.bold.width(value, size).min(width) + 4.0;
                    let (y, h) = (top + 0.8, self.y - top + 1.6);
                    self.page().push(Op::Box {
                        x: x - 2.0,
                        y,
                        w,
                        h,
                    });
                    self.y += 1.5;
                }
            }
            Block::Step(text) => {
                self.steps += 1;
                let number = format!("{}.", self.steps);
                let leading = 10.0 * 1.35 / MM;
                self.need(leading);
                self.y += 1.0;
                let top = self.y;
                self.y += leading;
                self.text(LEFT, number, 10.0, true, false);
                self.y = top;
                self.flow(LEFT + 6.0, text, 10.0, false, false);
            }
            Block::Qr(_) => {}
            Block::Sign(caption) => {
                self.need(22.0);
                self.y += 16.0;
                let y = self.y;
                self.page().push(Op::Line {
                    x1: LEFT,
                    y1: y,
                    x2: LEFT + 100.0,
                    y2: y,
                });
                self.flow(LEFT, caption, 8.0, false, true);
            }
            Block::Page => self.new_page(),
        }
        Ok(())
    }

    /// The QR code of `config` floated at the right margin from here on.
    fn qr(&mut self, config: &str, caption: &str) -> Result<(), LetterError> {
        let (width, dark) = crate::apply::qr::modules(&crate::apply::qr::config_for_phone(config))
            .map_err(|e| LetterError::Qr(format!("{e:#}")))?;
        // Four modules of quiet zone on each side.
        let side = (width + 8) as f32 * QR_MODULE;
        self.need(side + 6.0);
        let x = RIGHT - side;
        let y = self.y + 2.0;
        self.page().push(Op::Qr {
            x: x + 4.0 * QR_MODULE,
            y: y + 4.0 * QR_MODULE,
            width,
            dark,
        });
        let cy = y + side + 3.0;
        self.page().push(Op::Text {
            x,
            y: cy,
            size: 7.0,
            bold: false,
            grey: true,
            text: caption.to_string(),
        });
        self.float = Some((x, cy));
        Ok(())
    }
}

/// The DIN 5008 parts of the first page: marks, return address, address,
/// information block. Address lines that do not fit the window are an error.
fn letterhead(
    layout: &mut Layout,
    blocks: &[Block],
    form: DinForm,
    who: &str,
) -> Result<(), LetterError> {
    let (field_top, folds, info_top, body) = match form {
        DinForm::A => (27.0, [87.0, 192.0], 32.0, 80.46),
        DinForm::B => (45.0, [105.0, 210.0], 50.0, 98.46),
    };
    for y in folds.into_iter().chain([HEIGHT / 2.0]) {
        let len = if y == HEIGHT / 2.0 { 7.0 } else { 5.0 };
        layout.page().push(Op::Line {
            x1: 3.0,
            y1: y,
            x2: 3.0 + len,
            y2: y,
        });
    }
    let fonts = layout.fonts;
    if let Some(from) = blocks.iter().find_map(|b| match b {
        Block::From(t) => Some(t),
        _ => None,
    }) {
        let line = wrap(&fonts.regular, from, 7.0, ADDRESS_WIDTH);
        if line.len() > 1 {
            return Err(LetterError::Address {
                person: who.to_string(),
                why: format!(
                    "the return address \"{from}\" is wider than the window's {ADDRESS_WIDTH} mm"
                ),
            });
        }
        layout.page().push(Op::Text {
            x: ADDRESS_LEFT,
            y: field_top + 17.7 - 2.0,
            size: 7.0,
            bold: false,
            grey: true,
            text: from.clone(),
        });
    }
    let mut lines = Vec::new();
    for block in blocks {
        if let Block::To(text) = block {
            lines.extend(wrap(&fonts.regular, text, 10.0, ADDRESS_WIDTH));
        }
    }
    if lines.len() > ADDRESS_LINES {
        return Err(LetterError::Address {
            person: who.to_string(),
            why: format!(
                "the address takes {} lines after wrapping at {ADDRESS_WIDTH} mm; the window holds {ADDRESS_LINES}",
                lines.len()
            ),
        });
    }
    let leading = 27.3 / ADDRESS_LINES as f32;
    for (index, line) in lines.into_iter().enumerate() {
        layout.page().push(Op::Text {
            x: ADDRESS_LEFT,
            y: field_top + 17.7 + leading * (index + 1) as f32 - 1.0,
            size: 10.0,
            bold: false,
            grey: false,
            text: line,
        });
    }
    let mut y = info_top;
    for block in blocks {
        if let Block::Info(label, value) = block {
            y += 4.5;
            layout.page().push(Op::Text {
                x: 125.0,
                y,
                size: 8.0,
                bold: false,
                grey: true,
                text: label.clone(),
            });
            layout.page().push(Op::Text {
                x: 155.0,
                y,
                size: 8.0,
                bold: false,
                grey: false,
                text: value.clone(),
            });
        }
    }
    layout.y = body;
    Ok(())
}

/// Lay out one letter: its pages, numbered "Seite i von n".
pub fn lay_out(
    blocks: &[Block],
    qr: Option<&str>,
    form: DinForm,
    who: &str,
) -> Result<Vec<LaidOut>, LetterError> {
    let fonts = fonts();
    let mut layout = Layout {
        fonts,
        pages: vec![Vec::new()],
        y: 0.0,
        float: None,
        steps: 0,
    };
    letterhead(&mut layout, blocks, form, who)?;
    for block in blocks {
        match (block, qr) {
            (Block::Qr(caption), Some(config)) => layout.qr(config, caption)?,
            (Block::Qr(_), None) => {}
            (other, _) => layout.block(other)?,
        }
    }
    let total = layout.pages.len();
    for (index, page) in layout.pages.iter_mut().enumerate() {
        let text = format!("Seite {} von {total} · {who}", index + 1);
        let x = (WIDTH - fonts.regular.width(&text, 7.0)) / 2.0;
        page.push(Op::Text {
            x,
            y: 287.0,
            size: 7.0,
            bold: false,
            grey: true,
            text,
        });
    }
    Ok(layout.pages.into_iter().map(LaidOut).collect())
}

/// A laid-out page, opaque outside this module.
pub struct LaidOut(Page);

fn grey() -> Fill {
    Fill {
        paint: rgb::Color::new(85, 85, 85).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

/// Write laid-out pages (`None`: a blank page, for duplex) into one PDF.
pub fn write(pages: &[Option<&LaidOut>], title: &str) -> Result<Vec<u8>, LetterError> {
    let fonts = fonts();
    let mut document = Document::new();
    document.set_metadata(
        krilla::metadata::Metadata::new()
            .title(title.to_string())
            .language("de-DE".to_string())
            .creator("homebase".to_string()),
    );
    let settings = PageSettings::from_wh(WIDTH * MM, HEIGHT * MM).expect("A4 is a size");
    for page in pages {
        let mut pdf_page = document.start_page_with(settings.clone());
        let mut surface = pdf_page.surface();
        for op in page.iter().flat_map(|p| p.0.iter()) {
            draw(&mut surface, fonts, op);
        }
        surface.finish();
        pdf_page.finish();
    }
    document
        .finish()
        .map_err(|e| LetterError::Pdf(format!("{e:?}")))
}

fn draw(surface: &mut krilla::surface::Surface, fonts: &Fonts, op: &Op) {
    match op {
        Op::Text {
            x,
            y,
            size,
            bold,
            grey: is_grey,
            text,
        } => {
            surface.set_fill(Some(if *is_grey { grey() } else { Fill::default() }));
            let face = if *bold { &fonts.bold } else { &fonts.regular };
            surface.draw_text(
                Point::from_xy(x * MM, y * MM),
                face.font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Line { x1, y1, x2, y2 } => {
            let mut path = PathBuilder::new();
            path.move_to(x1 * MM, y1 * MM);
            path.line_to(x2 * MM, y2 * MM);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    width: 0.5,
                    ..Default::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Box { x, y, w, h } => {
            let mut path = PathBuilder::new();
            if let Some(rect) = Rect::from_xywh(x * MM, y * MM, w * MM, h * MM) {
                path.push_rect(rect);
            }
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    width: 0.7,
                    dash: Some(krilla::paint::StrokeDash {
                        array: vec![2.0, 2.0],
                        offset: 0.0,
                    }),
                    ..Default::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Qr { x, y, width, dark } => {
            let mut path = PathBuilder::new();
            let m = QR_MODULE * MM;
            for row in 0..*width {
                // Runs of dark modules as one rectangle each: fewer path operators.
                let mut col = 0;
                while col < *width {
                    if !dark[row * width + col] {
                        col += 1;
                        continue;
                    }
                    let start = col;
                    while col < *width && dark[row * width + col] {
                        col += 1;
                    }
                    if let Some(rect) = Rect::from_xywh(
                        x * MM + start as f32 * m,
                        y * MM + row as f32 * m,
                        (col - start) as f32 * m,
                        m,
                    ) {
                        path.push_rect(rect);
                    }
                }
            }
            if let Some(path) = path.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(Fill::default()));
                surface.draw_path(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_within_the_width() {
        let face = &fonts().regular;
        let text = "Ğülşen Łukasiewicz-Brzęczyszczykiewicz Straße Übergabeprotokoll";
        let lines = wrap(face, text, 10.0, 40.0);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(face.width(line, 10.0) <= 40.0, "{line}");
        }
        // Nothing is lost: the words come back, a broken one in pieces.
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
        // One word wider than the width is broken, not cut.
        let long = "x".repeat(200);
        assert_eq!(wrap(face, &long, 10.0, 40.0).concat(), long);
    }
}
