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
use krilla::geom::{PathBuilder, Point, Rect, Transform};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, KrillaGlyph};
use krilla::Document;

use super::markup::Block;
use super::shape::{Glyph, Shaper};
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

    /// The advance of `text` in font units (the fonts' kerning is slight).
    fn units(&self, text: &str) -> u32 {
        text.chars()
            .map(|c| {
                self.metrics
                    .glyph_index(c)
                    .and_then(|g| self.metrics.glyph_hor_advance(g))
                    .unwrap_or(0) as u32
            })
            .sum()
    }

    /// `units` at `size` pt, in mm.
    fn mm(&self, units: u32, size: f32) -> f32 {
        units as f32 * size / self.metrics.units_per_em() as f32 / MM
    }

    /// Width of `text` at `size` pt, in mm.
    fn width(&self, text: &str, size: f32) -> f32 {
        self.mm(self.units(text), size)
    }
}

struct Fonts {
    regular: Face,
    bold: Face,
}

/// A shaper of the letters' two faces, for one thread.
pub fn shaper() -> Shaper {
    Shaper::new(REGULAR, BOLD)
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
        glyphs: Vec<Glyph>,
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
/// a word only when the word alone is wider. Advances add up, so a line is
/// measured word by word (in font units, exactly as `width` measures the
/// whole line), not again from its start for every word.
fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let fits = |units: u32| face.mm(units, size) <= width;
    let space = face.units(" ");
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let wide = face.units(word);
        if !line.is_empty() && fits(used + space + wide) {
            line.push(' ');
            line.push_str(word);
            used += space + wide;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        used = 0;
        if fits(wide) {
            line.push_str(word);
            used = wide;
            continue;
        }
        let mut buf = [0u8; 4];
        for c in word.chars() {
            let w = face.units(c.encode_utf8(&mut buf));
            if !line.is_empty() && !fits(used + w) {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += w;
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
    shaper: &'a mut Shaper,
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
        self.text_at(x, y, size, bold, grey, text);
    }

    /// Text shaped now, on the worker thread; the writer only places glyphs.
    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, grey: bool, text: String) {
        let glyphs = self.shaper.shape(&text, bold);
        self.page().push(Op::Text {
            x,
            y,
            size,
            bold,
            grey,
            text,
            glyphs,
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
        self.text_at(x, cy, 7.0, false, true, caption.to_string());
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
        layout.text_at(
            ADDRESS_LEFT,
            field_top + 17.7 - 2.0,
            7.0,
            false,
            true,
            from.clone(),
        );
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
        layout.text_at(
            ADDRESS_LEFT,
            field_top + 17.7 + leading * (index + 1) as f32 - 1.0,
            10.0,
            false,
            false,
            line,
        );
    }
    let mut y = info_top;
    for block in blocks {
        if let Block::Info(label, value) = block {
            y += 4.5;
            layout.text_at(125.0, y, 8.0, false, true, label.clone());
            layout.text_at(155.0, y, 8.0, false, false, value.clone());
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
    shaper: &mut Shaper,
) -> Result<Vec<LaidOut>, LetterError> {
    let fonts = fonts();
    let mut layout = Layout {
        fonts,
        shaper,
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
    let mut pages = std::mem::take(&mut layout.pages);
    let total = pages.len();
    for (index, page) in pages.iter_mut().enumerate() {
        let text = format!("Seite {} von {total} · {who}", index + 1);
        let x = (WIDTH - fonts.regular.width(&text, 7.0)) / 2.0;
        page.push(Op::Text {
            x,
            y: 287.0,
            size: 7.0,
            bold: false,
            grey: true,
            glyphs: layout.shaper.shape(&text, false),
            text,
        });
    }
    Ok(pages.into_iter().map(LaidOut).collect())
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

/// The PDF being written, page by page in reading order.
pub struct Writer {
    document: Document,
    settings: PageSettings,
    /// Glyphs of the line being drawn, at krilla's scale (reused).
    scaled: Vec<KrillaGlyph>,
}

impl Writer {
    pub fn new(title: &str) -> Writer {
        let mut document = Document::new();
        document.set_metadata(
            krilla::metadata::Metadata::new()
                .title(title.to_string())
                .language("de-DE".to_string())
                .creator("homebase".to_string()),
        );
        Writer {
            document,
            settings: PageSettings::from_wh(WIDTH * MM, HEIGHT * MM).expect("A4 is a size"),
            scaled: Vec::new(),
        }
    }

    /// One page; `None`: a blank one, for duplex.
    pub fn page(&mut self, page: Option<&LaidOut>) {
        let fonts = fonts();
        let mut pdf_page = self.document.start_page_with(self.settings.clone());
        let mut surface = pdf_page.surface();
        for op in page.iter().flat_map(|p| p.0.iter()) {
            draw(&mut surface, fonts, op, &mut self.scaled);
        }
        surface.finish();
        pdf_page.finish();
    }

    pub fn finish(self) -> Result<Vec<u8>, LetterError> {
        self.document
            .finish()
            .map_err(|e| LetterError::Pdf(format!("{e:?}")))
    }
}

fn draw(
    surface: &mut krilla::surface::Surface,
    fonts: &Fonts,
    op: &Op,
    scaled: &mut Vec<KrillaGlyph>,
) {
    match op {
        Op::Text {
            x,
            y,
            size,
            bold,
            grey: is_grey,
            text,
            glyphs,
        } => {
            surface.set_fill(Some(if *is_grey { grey() } else { Fill::default() }));
            let face = if *bold { &fonts.bold } else { &fonts.regular };
            let per_em = f32::from(face.metrics.units_per_em());
            scaled.clear();
            scaled.extend(glyphs.iter().map(|g| g.to_krilla(per_em)));
            surface.draw_glyphs(
                Point::from_xy(x * MM, y * MM),
                scaled,
                face.font.clone(),
                text,
                *size,
                false,
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
            // In module units: whole-number coordinates are a third of the
            // bytes of millimetre ones, in the largest part of a page's
            // content (and its compression, most of the writer's time).
            let m = QR_MODULE * MM;
            surface.push_transform(&Transform::from_row(m, 0.0, 0.0, m, x * MM, y * MM));
            let mut path = PathBuilder::new();
            for (col, row, w, h) in qr_rects(*width, dark) {
                if let Some(rect) = Rect::from_xywh(col as f32, row as f32, w as f32, h as f32) {
                    path.push_rect(rect);
                }
            }
            if let Some(path) = path.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(Fill::default()));
                surface.draw_path(&path);
            }
            surface.pop();
        }
    }
}

/// The dark modules of a `width`-square symbol as rectangles (column, row,
/// width, height): each row's runs, and a run exactly below another
/// extends it downwards. Fewer, larger rectangles than modules.
fn qr_rects(width: usize, dark: &[bool]) -> Vec<(usize, usize, usize, usize)> {
    let mut done = Vec::new();
    let mut open: Vec<(usize, usize, usize, usize)> = Vec::new();
    for row in 0..width {
        let cells = &dark[row * width..(row + 1) * width];
        let mut below = Vec::new();
        let mut col = 0;
        while col < width {
            if !cells[col] {
                col += 1;
                continue;
            }
            let start = col;
            while col < width && cells[col] {
                col += 1;
            }
            let run = col - start;
            match open.iter().position(|&(c, _, w, _)| c == start && w == run) {
                Some(index) => {
                    let mut rect = open.swap_remove(index);
                    rect.3 += 1;
                    below.push(rect);
                }
                None => below.push((start, row, run, 1)),
            }
        }
        done.append(&mut open);
        open = below;
    }
    done.append(&mut open);
    done
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

    #[test]
    fn qr_rectangles_cover_exactly_the_dark_modules() {
        let (width, dark) =
            crate::apply::qr::modules("[Interface]\nPrivateKey = 0123456789abcdef\n").unwrap();
        let rects = qr_rects(width, &dark);
        let mut painted = vec![0u8; width * width];
        for (col, row, w, h) in &rects {
            for r in *row..row + h {
                for c in *col..col + w {
                    painted[r * width + c] += 1;
                }
            }
        }
        let expected: Vec<u8> = dark.iter().map(|d| u8::from(*d)).collect();
        assert_eq!(
            painted, expected,
            "a module missed, painted twice or wrongly"
        );
        let runs: usize = (0..width)
            .map(|r| {
                (0..width)
                    .filter(|&c| dark[r * width + c] && (c == 0 || !dark[r * width + c - 1]))
                    .count()
            })
            .sum();
        assert!(
            rects.len() < runs,
            "{} rectangles for {runs} runs",
            rects.len()
        );
    }
}
