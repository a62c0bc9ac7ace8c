//! Text shaped into glyphs once per worker thread, not once per line.
//!
//! krilla's `draw_text` parses the font and compiles a shaping plan for
//! every call; for 1,200 letters of ~60 lines that was most of the run. A
//! `Shaper` keeps both (one per thread: the faces borrow the embedded
//! font bytes and are cheap to make) and remembers the glyphs of lines it
//! has shaped, since most lines of a letter are the same for everybody.

use std::collections::HashMap;

use krilla::text::{GlyphId, KrillaGlyph};
use rustybuzz::{Direction, Script, ShapePlan, UnicodeBuffer};

/// One glyph of a shaped line, compact (a letter run holds millions):
/// advances and offsets in font units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glyph {
    id: u16,
    start: u32,
    end: u32,
    x_advance: i32,
    x_offset: i32,
    y_offset: i32,
}

impl Glyph {
    /// The glyph as krilla draws it: advances and offsets per em.
    pub fn to_krilla(self, units_per_em: f32) -> KrillaGlyph {
        KrillaGlyph::new(
            GlyphId::new(u32::from(self.id)),
            self.x_advance as f32 / units_per_em,
            self.x_offset as f32 / units_per_em,
            self.y_offset as f32 / units_per_em,
            0.0,
            self.start as usize..self.end as usize,
            None,
        )
    }
}

struct Face {
    face: rustybuzz::Face<'static>,
    /// Shaping plans by direction and script (Latin, mostly).
    plans: Vec<(Direction, Option<Script>, ShapePlan)>,
}

impl Face {
    fn new(bytes: &'static [u8]) -> Face {
        Face {
            face: rustybuzz::Face::from_slice(bytes, 0).expect("the embedded font parses"),
            plans: Vec::new(),
        }
    }

    fn shape(&mut self, text: &str) -> Vec<Glyph> {
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        // Text of common characters only (digits, punctuation) has no script.
        let script = Some(buffer.script()).filter(|s| *s != rustybuzz::script::UNKNOWN);
        let direction = buffer.direction();
        let index = match self
            .plans
            .iter()
            .position(|(d, s, _)| *d == direction && *s == script)
        {
            Some(index) => index,
            None => {
                let plan = ShapePlan::new(&self.face, direction, script, None, &[]);
                self.plans.push((direction, script, plan));
                self.plans.len() - 1
            }
        };
        let shaped = rustybuzz::shape_with_plan(&self.face, &self.plans[index].2, buffer);
        let infos = shaped.glyph_infos();
        // A glyph stands for the text from its cluster up to the next
        // cluster that starts after it (whichever the direction).
        let mut starts: Vec<u32> = infos.iter().map(|i| i.cluster).collect();
        starts.sort_unstable();
        starts.dedup();
        let end_of = |start: u32| {
            let next = starts.partition_point(|s| *s <= start);
            starts.get(next).copied().unwrap_or(text.len() as u32)
        };
        infos
            .iter()
            .zip(shaped.glyph_positions())
            .map(|(info, position)| Glyph {
                id: info.glyph_id as u16,
                start: info.cluster,
                end: end_of(info.cluster),
                x_advance: position.x_advance,
                x_offset: position.x_offset,
                y_offset: position.y_offset,
            })
            .collect()
    }
}

/// Shapes lines in the regular and the bold face; one per thread.
pub struct Shaper {
    regular: Face,
    bold: Face,
    known: HashMap<(bool, String), Vec<Glyph>>,
}

/// Lines longer than this are rarely repeated (names, addresses in
/// sentences): shaped, not remembered.
const REMEMBERED_LEN: usize = 120;
/// Enough for every line of the shipped letter; beyond it nothing new is kept.
const REMEMBERED_LINES: usize = 4096;

impl Shaper {
    pub fn new(regular: &'static [u8], bold: &'static [u8]) -> Shaper {
        Shaper {
            regular: Face::new(regular),
            bold: Face::new(bold),
            known: HashMap::new(),
        }
    }

    pub fn shape(&mut self, text: &str, bold: bool) -> Vec<Glyph> {
        let key = (bold, text.to_string());
        if let Some(glyphs) = self.known.get(&key) {
            return glyphs.clone();
        }
        let face = if bold {
            &mut self.bold
        } else {
            &mut self.regular
        };
        let glyphs = face.shape(text);
        if text.len() <= REMEMBERED_LEN && self.known.len() < REMEMBERED_LINES {
            self.known.insert(key, glyphs.clone());
        }
        glyphs
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_character_is_covered_once_and_a_repeat_is_the_same() {
        let mut shaper = super::super::pdf::shaper();
        // Precomposed and combining marks, Turkish and Polish letters.
        for text in [
            "Ayşe Łukasiewicz",
            "Jürgen Weiß",
            "Zoe\u{0308} Ğ",
            "",
            "AV To",
        ] {
            let glyphs = shaper.shape(text, false);
            let mut covered = 0;
            let mut ranges: Vec<(u32, u32)> = glyphs.iter().map(|g| (g.start, g.end)).collect();
            ranges.dedup();
            for (start, end) in ranges {
                assert!(start < end, "{text}: an empty cluster");
                assert!(text.is_char_boundary(start as usize), "{text}");
                covered += end - start;
            }
            assert_eq!(covered as usize, text.len(), "{text}");
            assert!(glyphs.iter().all(|g| g.id != 0), "{text}: a missing glyph");
            assert_eq!(shaper.shape(text, false), glyphs);
        }
        // The bold face is another font: other advances.
        assert_ne!(
            shaper.shape("Willkommen", true),
            shaper.shape("Willkommen", false)
        );
    }
}
