//! Horizontal bars with error bars and reference lines.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::*;

/// Horizontal bars (0–100%), with error bars, chance ticks, and reference lines or bands.
pub fn bars(c: &BarChart) -> Result<String> {
    let n = c.bars.len().max(1) as i32;
    let label_w = c
        .bars
        .iter()
        .map(|b| text_width(&shorten(&b.label, 48), 11.0))
        .max()
        .unwrap_or(60)
        .clamp(60, 300)
        + 12;
    let legend_w = if c.legend.is_empty() && c.references.is_empty() {
        0
    } else {
        let longest = c
            .legend
            .iter()
            .map(|l| text_width(&l.0, 11.0))
            .chain(c.references.iter().map(|r| text_width(&r.label, 11.0)))
            .max()
            .unwrap_or(0);
        longest.clamp(100, 260) + 40
    };
    let plot_w = 420;
    let row_h = 24;
    let top = 36;
    let w = (label_w + plot_w + 60 + legend_w) as u32;
    let legend_rows = (c.legend.len() + c.references.len()) as i32;
    let h = (top + (n * row_h).max(legend_rows * 18) + 44) as u32;
    svg(&c.title, w, h, |area| {
        title_text(area, &c.title, w)?;
        let x0 = label_w;
        let y0 = top;
        let y1 = top + n * row_h;
        let xp = |v: f64| x0 + (v.clamp(0.0, 1.0) * plot_w as f64).round() as i32;
        // Grid and axis.
        for t in 0..=10 {
            let v = t as f64 / 10.0;
            let x = xp(v);
            line(area, (x, y0), (x, y1), palette::GRID.stroke_width(1))?;
            text(
                area,
                &format!("{}%", t * 10),
                (x, y1 + 5),
                font(10.0, &palette::INK, HPos::Center, VPos::Top),
            )?;
        }
        line(
            area,
            (x0, y1),
            (x0 + plot_w, y1),
            palette::INK.stroke_width(1),
        )?;
        text(
            area,
            &c.axis,
            (x0 + plot_w / 2, y1 + 22),
            font(11.0, &palette::INK, HPos::Center, VPos::Top),
        )?;
        // References behind the bars.
        for r in &c.references {
            if (r.to - r.from).abs() > 1e-9 {
                area.draw(&Rectangle::new(
                    [(xp(r.from), y0), (xp(r.to), y1)],
                    r.color.mix(0.22).filled(),
                ))?;
            }
        }
        for (i, b) in c.bars.iter().enumerate() {
            let yt = y0 + i as i32 * row_h;
            let yc = yt + row_h / 2;
            area.draw(&Rectangle::new(
                [(x0, yt + 4), (xp(b.value).max(x0 + 1), yt + row_h - 4)],
                b.color.filled(),
            ))?;
            text(
                area,
                &shorten(&b.label, 48),
                (x0 - 8, yc),
                font(11.0, &palette::INK, HPos::Right, VPos::Center),
            )?;
            let mut end = xp(b.value);
            if let Some(e) = b.err.filter(|e| *e > 0.0) {
                let (l, r) = (xp(b.value - e), xp(b.value + e));
                line(area, (l, yc), (r, yc), palette::INK.stroke_width(1))?;
                line(area, (l, yc - 4), (l, yc + 4), palette::INK.stroke_width(1))?;
                line(area, (r, yc - 4), (r, yc + 4), palette::INK.stroke_width(1))?;
                end = end.max(r);
            }
            if let Some(ch) = b.chance {
                let x = xp(ch);
                line(
                    area,
                    (x, yt + 1),
                    (x, yt + row_h - 1),
                    palette::CHANCE.stroke_width(2),
                )?;
            }
            text(
                area,
                &percent(b.value),
                (end + 7, yc),
                font(10.0, &palette::INK, HPos::Left, VPos::Center),
            )?;
        }
        for r in &c.references {
            if (r.to - r.from).abs() <= 1e-9 {
                dashed(
                    area,
                    (xp(r.from), y0),
                    (xp(r.from), y1),
                    r.color.stroke_width(2),
                )?;
            }
        }
        if legend_w > 0 {
            let mut items = c.legend.clone();
            for r in &c.references {
                let mark = if (r.to - r.from).abs() > 1e-9 {
                    Mark::Band(r.color)
                } else {
                    Mark::Line(r.color, true)
                };
                items.push((r.label.clone(), mark));
            }
            legend(area, &items, x0 + plot_w + 40, y0 + 8)?;
        }
        Ok(())
    })
}
