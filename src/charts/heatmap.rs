//! Heat maps (confusion matrices, the cross-corpus matrix).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::*;

/// A white → dark blue ramp (three stops, like matplotlib's "Blues").
fn blend(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 3] = [
        (247.0, 251.0, 255.0),
        (107.0, 174.0, 214.0),
        (8.0, 48.0, 107.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let (i, f) = if t >= 1.0 { (1, t - 1.0) } else { (0, t) };
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let c = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

/// A heat map: one coloured cell per (row, column) with its text.
pub fn heatmap(hm: &Heatmap) -> Result<String> {
    let label_w = hm
        .rows
        .iter()
        .map(|r| text_width(r, 11.0))
        .max()
        .unwrap_or(40)
        .clamp(40, 160)
        + 34;
    let cell_w = hm
        .cols
        .iter()
        .map(|c| text_width(c, 10.0) + 8)
        .max()
        .unwrap_or(40)
        .clamp(44, 90);
    let cell_h = 26;
    let top = 40;
    let (nr, nc) = (hm.rows.len() as i32, hm.cols.len() as i32);
    let w = (label_w + nc * cell_w + 20).max(260) as u32;
    let h = (top + nr * cell_h + 48) as u32;
    svg(&hm.title, w, h, |area| {
        title_text(area, &hm.title, w)?;
        let (x0, y0) = (label_w, top);
        for (i, row) in hm.intensity.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (x, y) = (x0 + j as i32 * cell_w, y0 + i as i32 * cell_h);
                area.draw(&Rectangle::new(
                    [(x, y), (x + cell_w - 1, y + cell_h - 1)],
                    blend(*v).filled(),
                ))?;
                let ink = if *v > 0.55 { WHITE } else { palette::INK };
                let s = hm
                    .text
                    .get(i)
                    .and_then(|r| r.get(j))
                    .cloned()
                    .unwrap_or_default();
                text(
                    area,
                    &s,
                    (x + cell_w / 2, y + cell_h / 2),
                    font(10.0, &ink, HPos::Center, VPos::Center),
                )?;
            }
        }
        for (i, r) in hm.rows.iter().enumerate() {
            text(
                area,
                r,
                (x0 - 6, y0 + i as i32 * cell_h + cell_h / 2),
                font(11.0, &palette::INK, HPos::Right, VPos::Center),
            )?;
        }
        for (j, c) in hm.cols.iter().enumerate() {
            text(
                area,
                &shorten(c, 12),
                (x0 + j as i32 * cell_w + cell_w / 2, y0 + nr * cell_h + 4),
                font(10.0, &palette::INK, HPos::Center, VPos::Top),
            )?;
        }
        text(
            area,
            &hm.col_axis,
            (x0 + nc * cell_w / 2, y0 + nr * cell_h + 24),
            font(11.0, &palette::INK, HPos::Center, VPos::Top),
        )?;
        text(
            area,
            &hm.row_axis,
            (12, y0 + nr * cell_h / 2),
            font(11.0, &palette::INK, HPos::Center, VPos::Center)
                .transform(FontTransform::Rotate270),
        )?;
        Ok(())
    })
}
