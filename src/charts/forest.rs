//! A forest plot of paired differences with their intervals.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::*;

/// A forest plot: one estimate with its interval per row, around a zero line.
pub fn forest(title: &str, axis: &str, rows: &[Interval]) -> Result<String> {
    let n = rows.len().max(1) as i32;
    let label_w = rows
        .iter()
        .map(|r| text_width(&shorten(&r.label, 64), 11.0))
        .max()
        .unwrap_or(60)
        .clamp(60, 380)
        + 12;
    let span = rows
        .iter()
        .flat_map(|r| [r.low.abs(), r.high.abs(), r.estimate.abs()])
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.15;
    let plot_w = 360;
    let (top, row_h) = (36, 26);
    let w = (label_w + plot_w + 40) as u32;
    let h = (top + n * row_h + 46) as u32;
    svg(title, w, h, |area| {
        title_text(area, title, w)?;
        let x0 = label_w;
        let (y0, y1) = (top, top + n * row_h);
        let xp = |v: f64| x0 + (((v + span) / (2.0 * span)) * plot_w as f64).round() as i32;
        // Ticks at nice steps in points of UA.
        let step = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
            .into_iter()
            .find(|s| span / s <= 4.0)
            .unwrap_or(0.5);
        let k = (span / step).floor() as i32;
        for t in -k..=k {
            let v = t as f64 * step;
            let x = xp(v);
            line(area, (x, y0), (x, y1), palette::GRID.stroke_width(1))?;
            text(
                area,
                &format!("{:+.1}", v * 100.0).replace("+0.0", "0"),
                (x, y1 + 5),
                font(10.0, &palette::INK, HPos::Center, VPos::Top),
            )?;
        }
        line(
            area,
            (xp(0.0), y0),
            (xp(0.0), y1),
            palette::INK.stroke_width(1),
        )?;
        line(
            area,
            (x0, y1),
            (x0 + plot_w, y1),
            palette::INK.stroke_width(1),
        )?;
        text(
            area,
            axis,
            (x0 + plot_w / 2, y1 + 22),
            font(11.0, &palette::INK, HPos::Center, VPos::Top),
        )?;
        for (i, r) in rows.iter().enumerate() {
            let yc = y0 + i as i32 * row_h + row_h / 2;
            let color = if r.low > 0.0 {
                palette::MALE
            } else if r.high < 0.0 {
                palette::LEAKY
            } else {
                palette::CHANCE
            };
            text(
                area,
                &shorten(&r.label, 64),
                (x0 - 8, yc),
                font(11.0, &palette::INK, HPos::Right, VPos::Center),
            )?;
            let (l, h) = (xp(r.low), xp(r.high));
            line(area, (l, yc), (h, yc), color.stroke_width(2))?;
            line(area, (l, yc - 5), (l, yc + 5), color.stroke_width(2))?;
            line(area, (h, yc - 5), (h, yc + 5), color.stroke_width(2))?;
            area.draw(&Circle::new((xp(r.estimate), yc), 4, color.filled()))?;
        }
        Ok(())
    })
}
