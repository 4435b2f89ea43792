//! Scatter plots of 2-D embeddings.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::*;

/// A scatter plot (at most [`SCATTER_LEGEND`] groups are named in the legend).
pub fn scatter(c: &Scatter) -> Result<String> {
    let all = || {
        c.groups
            .iter()
            .flat_map(|g| g.filled.iter().chain(&g.hollow))
            .copied()
    };
    let span = |vals: Vec<f64>| {
        let (lo, hi) = vals
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return (-1.0, 1.0);
        }
        let pad = ((hi - lo) * 0.06).max(1e-6);
        (lo - pad, hi + pad)
    };
    let (x_lo, x_hi) = span(all().map(|p| p.0).collect());
    let (y_lo, y_hi) = span(all().map(|p| p.1).collect());
    let mut items: Vec<(String, Mark)> = c
        .groups
        .iter()
        .take(SCATTER_LEGEND)
        .map(|g| (shorten(&g.name, 24), Mark::Swatch(g.color)))
        .collect();
    if c.groups.len() > SCATTER_LEGEND {
        items.push((
            format!("… {} more", c.groups.len() - SCATTER_LEGEND),
            Mark::Swatch(palette::GRID),
        ));
    }
    let legend_w = items
        .iter()
        .map(|i| text_width(&i.0, 11.0))
        .chain(c.note.iter().map(|n| text_width(n, 10.0) - 20))
        .max()
        .unwrap_or(0)
        .clamp(60, 240)
        + 40;
    let plot_w = 360u32;
    let h = (300u32).max(60 + 18 * items.len() as u32 + 30);
    svg(&c.title, plot_w + legend_w as u32, h, |root| {
        let (plot, side) = root.split_horizontally(plot_w);
        let mut chart = cartesian(&plot, &c.title, 14.0, (x_lo, x_hi), (y_lo, y_hi))?;
        let fmt = |v: &f64| format!("{v:.1}");
        mesh(&mut chart, (6, 6), (&fmt, &fmt), (&c.x_axis, &c.y_axis))?;
        for g in &c.groups {
            chart.draw_series(
                g.hollow
                    .iter()
                    .map(|p| Circle::new(*p, 3, g.color.stroke_width(1))),
            )?;
            chart.draw_series(
                g.filled
                    .iter()
                    .map(|p| Circle::new(*p, 3, g.color.mix(0.85).filled())),
            )?;
        }
        legend(&side, &items, 8, 44)?;
        if let Some(note) = &c.note {
            text(
                &side,
                note,
                (8, 44 + 18 * items.len() as i32 + 6),
                font(10.0, &palette::INK, HPos::Left, VPos::Center),
            )?;
        }
        Ok(())
    })
}

/// Groups named in a scatter plot's legend.
pub const SCATTER_LEGEND: usize = 24;
