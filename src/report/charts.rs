//! The report's charts as SVG strings, drawn with plotters' SVG backend: horizontal bars with
//! error bars and reference lines, heat maps, line charts and a forest plot of paired
//! differences. Text is left to the viewer's sans-serif font (no font file is read), and every
//! chart is plain SVG (`rect`, `line`, `polyline`, `circle`, `text`), so it opens anywhere.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ReportError, Result};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Palette (colour-blind safe-ish, print friendly).
pub mod palette {
    use plotters::style::RGBColor;
    pub const CLEAN: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
    pub const LEAKY: RGBColor = RGBColor(0xc4, 0x3c, 0x3c);
    pub const OTHER_TARGET: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
    pub const FEMALE: RGBColor = RGBColor(0x8c, 0x5f, 0xb4);
    pub const MALE: RGBColor = RGBColor(0x2e, 0x9a, 0x6b);
    pub const CHANCE: RGBColor = RGBColor(0x55, 0x55, 0x55);
    pub const HUMAN: RGBColor = RGBColor(0x9b, 0x2f, 0x8f);
    pub const WAV2VEC2: RGBColor = RGBColor(0x1a, 0x85, 0x3a);
    pub const WHISPER: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
    pub const CNN_BAND: RGBColor = RGBColor(0xf2, 0xb7, 0x4a);
    pub const TRAIN: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);
    pub const VAL: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
    pub const GRID: RGBColor = RGBColor(0xe3, 0xe3, 0xe3);
    pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
    /// Series colours for several lines in one chart.
    pub const SERIES: [RGBColor; 8] = [
        RGBColor(0x3b, 0x6e, 0xa8),
        RGBColor(0xd9, 0x6c, 0x1e),
        RGBColor(0x2e, 0x9a, 0x6b),
        RGBColor(0xc4, 0x3c, 0x3c),
        RGBColor(0x8c, 0x5f, 0xb4),
        RGBColor(0x8a, 0x6a, 0x3b),
        RGBColor(0xd1, 0x5f, 0xa8),
        RGBColor(0x6b, 0x6b, 0x6b),
    ];
}

/// The colour of group `i` of `n` in a categorical chart: the series palette for up to eight
/// groups, evenly spaced hues beyond.
pub fn categorical(i: usize, n: usize) -> RGBColor {
    if n <= palette::SERIES.len() {
        return palette::SERIES[i % palette::SERIES.len()];
    }
    // HSL (h, 0.55, 0.45) to RGB.
    let h = i as f64 / n as f64 * 6.0;
    let (s, l) = (0.55, 0.45);
    let c = (1.0 - (2.0 * l - 1.0f64).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let v = |u: f64| ((u + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(v(r), v(g), v(b))
}

/// One group of a scatter plot: filled and hollow points in one colour.
#[derive(Debug, Clone)]
pub struct PointGroup {
    pub name: String,
    pub color: RGBColor,
    pub filled: Vec<(f64, f64)>,
    pub hollow: Vec<(f64, f64)>,
}

/// Points in groups on two numeric axes, with a legend of the groups.
#[derive(Debug, Clone)]
pub struct Scatter {
    pub title: String,
    pub x_axis: String,
    pub y_axis: String,
    pub groups: Vec<PointGroup>,
    /// A line under the legend (e.g. what filled and hollow mean).
    pub note: Option<String>,
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A filled square (bars).
    Swatch(RGBColor),
    /// A line, dashed or not.
    Line(RGBColor, bool),
    /// A light band (a range of reference values).
    Band(RGBColor),
    /// A short vertical tick (chance level per bar).
    Tick(RGBColor),
}

/// A vertical reference across a bar chart: a line (`from == to`) or a band.
#[derive(Debug, Clone)]
pub struct Reference {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
}

/// One horizontal bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Half-length of the error bar (a standard deviation).
    pub err: Option<f64>,
    pub color: RGBColor,
    /// Chance level of this bar's task, drawn as a tick.
    pub chance: Option<f64>,
}

/// Horizontal bars on a 0–100% axis.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub axis: String,
    pub bars: Vec<Bar>,
    pub references: Vec<Reference>,
    pub legend: Vec<(String, Mark)>,
}

/// A grid of coloured cells with text.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// Colour intensity per cell, 0–1.
    pub intensity: Vec<Vec<f64>>,
    pub text: Vec<Vec<String>>,
    pub row_axis: String,
    pub col_axis: String,
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
    /// Draw a dot at every point.
    pub dots: bool,
}

/// Lines over a numeric or categorical x axis.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_axis: String,
    pub y_axis: String,
    pub series: Vec<Series>,
    /// Fixed y range; default: the data's, padded.
    pub y_range: Option<(f64, f64)>,
    /// Horizontal reference lines.
    pub hlines: Vec<(String, f64, RGBColor)>,
    /// Names of the x positions 0, 1, 2, … (a categorical axis).
    pub x_names: Option<Vec<String>>,
    /// Format y values as percentages.
    pub percent: bool,
}

/// One row of a forest plot: an estimate and its interval.
#[derive(Debug, Clone)]
pub struct Interval {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

fn chart_error(title: &str, e: Box<dyn std::error::Error>) -> ReportError {
    ReportError::Chart {
        chart: title.to_string(),
        problem: e.to_string(),
    }
}

/// Render into an SVG string of `w` × `h` pixels.
fn svg(title: &str, w: u32, h: u32, draw: impl FnOnce(&Area) -> DrawResult) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| chart_error(title, Box::new(e)))?;
        draw(&root).map_err(|e| chart_error(title, e))?;
        root.present()
            .map_err(|e| chart_error(title, Box::new(e)))?;
    }
    Ok(buf)
}

/// plotters writes font sizes at about 0.8 of the size asked for; sizes here are the pixels
/// wanted in the SVG.
const FONT_SCALE: f64 = 1.25;

fn font<'a>(size: f64, color: &'a RGBColor, h: HPos, v: VPos) -> TextStyle<'a> {
    ("sans-serif", size * FONT_SCALE)
        .into_font()
        .color(color)
        .pos(Pos::new(h, v))
}

fn text(area: &Area, s: &str, at: (i32, i32), style: TextStyle) -> DrawResult {
    area.draw(&Text::new(s.to_string(), at, style))?;
    Ok(())
}

fn line(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&PathElement::new(vec![a, b], style))?;
    Ok(())
}

fn dashed(area: &Area, a: (i32, i32), b: (i32, i32), style: ShapeStyle) -> DrawResult {
    area.draw(&DashedPathElement::new(vec![a, b], 5, 3, style))?;
    Ok(())
}

fn title_text(area: &Area, title: &str, w: u32) -> DrawResult {
    text(
        area,
        title,
        (w as i32 / 2, 8),
        font(15.0, &palette::INK, HPos::Center, VPos::Top),
    )
}

/// Approximate width in pixels of `s` at 11 px (for laying out labels).
fn text_width(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size * 0.56).ceil() as i32
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A legend column starting at (x, y).
fn legend(area: &Area, items: &[(String, Mark)], x: i32, y: i32) -> DrawResult {
    for (i, (label, mark)) in items.iter().enumerate() {
        let cy = y + i as i32 * 18;
        match *mark {
            Mark::Swatch(c) => {
                area.draw(&Rectangle::new([(x, cy - 5), (x + 14, cy + 5)], c.filled()))?
            }
            Mark::Band(c) => area.draw(&Rectangle::new(
                [(x, cy - 6), (x + 14, cy + 6)],
                c.mix(0.35).filled(),
            ))?,
            Mark::Line(c, false) => line(area, (x, cy), (x + 14, cy), c.stroke_width(2))?,
            Mark::Line(c, true) => dashed(area, (x, cy), (x + 16, cy), c.stroke_width(2))?,
            Mark::Tick(c) => line(area, (x + 7, cy - 6), (x + 7, cy + 6), c.stroke_width(2))?,
        }
        text(
            area,
            label,
            (x + 22, cy),
            font(11.0, &palette::INK, HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

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

type Cartesian<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled plot area on two numeric axes (the line and scatter charts').
fn cartesian<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    title_px: f64,
    x: (f64, f64),
    y: (f64, f64),
) -> std::result::Result<Cartesian<'a, 'b>, Box<dyn std::error::Error>> {
    Ok(ChartBuilder::on(area)
        .caption(
            title,
            ("sans-serif", title_px * FONT_SCALE)
                .into_font()
                .color(&palette::INK),
        )
        .margin(8)
        .margin_right(14)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?)
}

/// Grid, tick labels (`labels`: how many on x and y, formatted by `fmt`) and axis titles.
fn mesh(
    chart: &mut Cartesian<'_, '_>,
    labels: (usize, usize),
    fmt: (&dyn Fn(&f64) -> String, &dyn Fn(&f64) -> String),
    desc: (&str, &str),
) -> DrawResult {
    chart
        .configure_mesh()
        .x_labels(labels.0)
        .y_labels(labels.1)
        .x_label_formatter(fmt.0)
        .y_label_formatter(fmt.1)
        .x_desc(desc.0)
        .y_desc(desc.1)
        .light_line_style(WHITE)
        .bold_line_style(palette::GRID)
        .label_style(
            ("sans-serif", 10.0 * FONT_SCALE)
                .into_font()
                .color(&palette::INK),
        )
        .axis_desc_style(
            ("sans-serif", 11.0 * FONT_SCALE)
                .into_font()
                .color(&palette::INK),
        )
        .draw()?;
    Ok(())
}

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
