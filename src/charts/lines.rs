//! Line charts (learning curves, reliability, timelines) and their shared axes.

use plotters::prelude::*;

use super::*;

/// Lines over x (epochs, or named positions), with horizontal references and a legend.
pub fn lines(c: &LineChart) -> Result<String> {
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x_lo, mut x_hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x_lo.is_finite() {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    if let Some(names) = &c.x_names {
        (x_lo, x_hi) = (-0.5, names.len() as f64 - 0.5);
    } else if x_hi - x_lo < 1.0 {
        x_hi = x_lo + 1.0;
    }
    let (y_lo, y_hi) = c.y_range.unwrap_or_else(|| {
        let ys = c
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(c.hlines.iter().map(|h| h.1))
            .filter(|y| y.is_finite());
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.08).max(1e-3);
        (
            (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY }),
            hi + pad,
        )
    });
    let mut items: Vec<(String, Mark)> = c
        .series
        .iter()
        .map(|s| (s.name.clone(), Mark::Line(s.color, s.dashed)))
        .collect();
    items.extend(
        c.hlines
            .iter()
            .map(|h| (h.0.clone(), Mark::Line(h.2, true))),
    );
    let legend_w = items
        .iter()
        .map(|i| text_width(&i.0, 11.0))
        .max()
        .unwrap_or(0)
        .clamp(60, 220)
        + 40;
    let (w, h) = (380 + legend_w as u32, 260u32);
    let percent_axis = c.percent;
    svg(&c.title, w, h, |root| {
        let (plot, side) = root.split_horizontally(380);
        let mut chart = cartesian(&plot, &c.title, 15.0, (x_lo, x_hi), (y_lo, y_hi))?;
        let names = c.x_names.clone();
        let x_fmt = move |x: &f64| match &names {
            Some(n) => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n.len() {
                    shorten(&n[i as usize], 10)
                } else {
                    String::new()
                }
            }
            None => {
                if (x - x.round()).abs() < 1e-6 {
                    format!("{}", x.round() as i64)
                } else {
                    String::new()
                }
            }
        };
        let y_fmt = move |y: &f64| {
            if percent_axis {
                format!("{:.0}%", y * 100.0)
            } else {
                format!("{y:.2}")
            }
        };
        let n_x = match &c.x_names {
            Some(n) => n.len() * 2 + 1,
            None => ((x_hi - x_lo) as usize + 1).min(12),
        };
        mesh(
            &mut chart,
            (n_x, 6),
            (&x_fmt, &y_fmt),
            (&c.x_axis, &c.y_axis),
        )?;
        for (_, y, color) in &c.hlines {
            chart.draw_series(DashedLineSeries::new(
                vec![(x_lo, *y), (x_hi, *y)],
                5,
                3,
                color.stroke_width(1),
            ))?;
        }
        for s in &c.series {
            let style = s.color.stroke_width(2);
            if s.dashed {
                chart.draw_series(DashedLineSeries::new(s.points.clone(), 6, 3, style))?;
            } else {
                chart.draw_series(LineSeries::new(s.points.clone(), style))?;
            }
            if s.dots || s.points.len() == 1 {
                chart.draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new(*p, 3, s.color.filled())),
                )?;
            }
        }
        legend(&side, &items, 8, 44)?;
        Ok(())
    })
}
