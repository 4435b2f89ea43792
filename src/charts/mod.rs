//! Charts as SVG strings, drawn with plotters' SVG backend: horizontal bars with
//! error bars and reference lines, heat maps, line charts and a forest plot of paired
//! differences. Text is left to the viewer's sans-serif font (no font file is read), and every
//! chart is plain SVG (`rect`, `line`, `polyline`, `circle`, `text`), so it opens anywhere.
//! A leaf library: the report, the cross-corpus matrix and the timeline draw with it.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

mod bars;
mod forest;
mod heatmap;
mod lines;
mod scatter;

pub use bars::bars;
pub use forest::forest;
pub use heatmap::heatmap;
pub use lines::lines;
pub use scatter::{scatter, SCATTER_LEGEND};

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

/// A chart that plotters could not draw.
#[derive(Debug, thiserror::Error)]
#[error("chart {chart}: {problem}")]
pub struct ChartError {
    pub chart: String,
    pub problem: String,
}

pub type Result<T, E = ChartError> = std::result::Result<T, E>;

fn chart_error(title: &str, e: Box<dyn std::error::Error>) -> ChartError {
    ChartError {
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

type Cartesian<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
