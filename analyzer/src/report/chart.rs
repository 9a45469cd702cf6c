//! Line charts as PNG, drawn in plain Rust: anti-aliased lines (coverage from each
//! pixel's distance to the segments), translucent bands for anomaly periods, a y axis
//! with nice ticks and time labels in a built-in 5×7 bitmap font (digits and the few
//! symbols the axes need), so nothing depends on system fonts. Titles and legends are
//! the caller's HTML around the image.
//!
//! `None` points break a line, and so do NaN and infinite values (they are never
//! drawn and never stretch the axis). A chart without a single finite value says
//! "NO DATA".

use hostscope_core::influx::TimeRange;

use super::time::{UtcOffset, DAY_MS};

/// Default size, px.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 200;

/// RGB.
pub type Rgb = [u8; 3];

/// CPU line colour.
pub const BLUE: Rgb = [37, 99, 235];
/// Memory line colour.
pub const ORANGE: Rgb = [234, 88, 12];
/// Anomaly band colour (drawn at [`BAND_ALPHA`]).
pub const RED: Rgb = [220, 38, 38];
/// Opacity of the anomaly bands.
pub const BAND_ALPHA: f32 = 0.22;

const BACKGROUND: Rgb = [255, 255, 255];
const GRID: Rgb = [229, 231, 235];
const AXIS: Rgb = [156, 163, 175];
const TEXT: Rgb = [75, 85, 99];
/// Half the line width, px.
const HALF_WIDTH: f32 = 1.0;
/// The narrowest band drawn, px, so a one-minute anomaly in a week still shows.
const MIN_BAND_PX: f32 = 2.0;

/// One line: `(unix ms, value)` points in time order.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub points: &'a [(i64, Option<f64>)],
    pub color: Rgb,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub width: u32,
    pub height: u32,
    /// The x axis.
    pub range: TimeRange,
    pub lines: Vec<Line<'a>>,
    /// Shaded periods `(start ms, end ms)`; clipped to the range.
    pub bands: Vec<(i64, i64)>,
    /// Fixed y bounds (e.g. 0 and 100 for percentages); `None`: from the data.
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    /// Appended to the y tick labels, e.g. `"%"`.
    pub y_suffix: &'static str,
    /// The time labels' offset from UTC.
    pub offset: UtcOffset,
}

/// The PNG could not be written (never expected: the output is memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a chart as PNG: {0}")]
pub struct ChartError(#[from] std::io::Error);

/// Draws `chart` and encodes it as an 8-bit RGB PNG.
pub fn render(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    let canvas = draw(chart);
    Ok(encode_png(canvas.width, canvas.height, &canvas.pixels)?)
}

// -- drawing ------------------------------------------------------------------------

struct Canvas {
    width: usize,
    height: usize,
    /// RGB, row by row.
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&BACKGROUND);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Mixes `color` into pixel (x, y) with opacity `alpha`; outside: nothing.
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        let i = (y as usize * self.width + x as usize) * 3;
        for (c, p) in color.iter().zip(&mut self.pixels[i..i + 3]) {
            *p = (f32::from(*p) * (1.0 - a) + f32::from(*c) * a).round() as u8;
        }
    }

    fn hline(&mut self, x0: i64, x1: i64, y: i64, color: Rgb) {
        for x in x0..x1 {
            self.blend(x, y, color, 1.0);
        }
    }

    fn vline(&mut self, x: i64, y0: i64, y1: i64, color: Rgb) {
        for y in y0..y1 {
            self.blend(x, y, color, 1.0);
        }
    }

    /// Text with its top-left corner at (x, y), `scale` px per font pixel.
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, color: Rgb) {
        for (n, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + n as i64 * GLYPH_ADVANCE * scale;
            for (r, bits) in rows.iter().enumerate() {
                for c in 0..5 {
                    if bits & (0x10 >> c) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.blend(
                                    gx + c * scale + dx,
                                    y + r as i64 * scale + dy,
                                    color,
                                    1.0,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The plot area in pixel edges: x in [left, right), y in [top, bottom).
#[derive(Debug, Clone, Copy)]
struct Area {
    left: f32,
    right: f32,
    top: f32,
    bottom: f32,
}

fn draw(chart: &Chart) -> Canvas {
    let (w, h) = (chart.width.max(64) as usize, chart.height.max(48) as usize);
    let mut canvas = Canvas::new(w, h);
    let range = chart.range;
    let span_ms = range.duration_ms().max(1) as f64;

    let finite = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter_map(|(t, v)| {
            v.filter(|v| v.is_finite() && (range.start_ms..=range.end_ms).contains(t))
        });
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut has_data = false;
    for v in finite {
        has_data = true;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let axis = YAxis::new(
        chart.y_min.or(has_data.then_some(lo)),
        chart.y_max.or(has_data.then_some(hi)),
    );
    let labels: Vec<String> = axis
        .ticks()
        .iter()
        .map(|v| format!("{}{}", axis.label(*v), chart.y_suffix))
        .collect();
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as i64;
    let area = Area {
        left: (widest * GLYPH_ADVANCE + 8) as f32,
        right: w as f32 - 12.0,
        top: 8.0,
        bottom: h as f32 - 18.0,
    };
    let x_of = |t: i64| {
        area.left + ((t - range.start_ms) as f64 / span_ms) as f32 * (area.right - area.left)
    };
    let y_of = |v: f64| {
        area.bottom - ((v - axis.lo) / (axis.hi - axis.lo)) as f32 * (area.bottom - area.top)
    };

    // Bands, under everything else.
    for &(s, e) in &chart.bands {
        let (s, e) = (s.max(range.start_ms), e.min(range.end_ms));
        if s > e {
            continue;
        }
        let (mut x0, mut x1) = (x_of(s), x_of(e));
        if x1 - x0 < MIN_BAND_PX {
            let mid = (x0 + x1) / 2.0;
            x0 = (mid - MIN_BAND_PX / 2.0).max(area.left);
            x1 = (mid + MIN_BAND_PX / 2.0).min(area.right);
        }
        for px in x0.floor() as i64..x1.ceil() as i64 {
            // The share of the pixel column inside the band: soft edges.
            let cover = (x1.min(px as f32 + 1.0) - x0.max(px as f32)).clamp(0.0, 1.0);
            for py in area.top as i64..area.bottom as i64 {
                canvas.blend(px, py, RED, BAND_ALPHA * cover);
            }
        }
    }

    // Grid and y labels.
    for (v, label) in axis.ticks().iter().zip(&labels) {
        let y = y_of(*v).round() as i64;
        canvas.hline(area.left as i64, area.right as i64, y, GRID);
        let tw = label.chars().count() as i64 * GLYPH_ADVANCE - 1;
        canvas.text(area.left as i64 - 5 - tw, y - 3, label, 1, TEXT);
    }

    // Time labels.
    let (step, daily) = time_step(range.duration_ms());
    let off = chart.offset.as_millis();
    let mut t = ((range.start_ms + off).div_euclid(step) + 1) * step - off;
    if (range.start_ms + off).rem_euclid(step) == 0 {
        t -= step;
    }
    while t <= range.end_ms {
        let x = x_of(t).round() as i64;
        canvas.vline(x, area.bottom as i64, area.bottom as i64 + 3, AXIS);
        let c = chart.offset.local(t);
        let label = if daily {
            format!("{:02}-{:02}", c.month, c.day)
        } else {
            c.hh_mm()
        };
        let tw = label.chars().count() as i64 * GLYPH_ADVANCE - 1;
        let lx = (x - tw / 2).clamp(0, w as i64 - tw);
        canvas.text(lx, area.bottom as i64 + 6, &label, 1, TEXT);
        t += step;
    }

    // Lines.
    let mut mask = vec![0f32; w * h];
    for line in &chart.lines {
        mask.iter_mut().for_each(|m| *m = 0.0);
        let mut prev: Option<(f32, f32)> = None;
        for &(t, v) in line.points {
            let p = v
                .filter(|v| v.is_finite() && t >= range.start_ms && t <= range.end_ms)
                .map(|v| (x_of(t), y_of(v.clamp(axis.lo, axis.hi))));
            match (prev, p) {
                (Some(a), Some(b)) => stroke(&mut mask, w, area, a, b),
                // A point alone (its neighbours empty) is a dot.
                (None, Some(b)) => stroke(&mut mask, w, area, b, b),
                _ => {}
            }
            prev = p;
        }
        for (i, m) in mask.iter().enumerate() {
            if *m > 0.0 {
                canvas.blend((i % w) as i64, (i / w) as i64, line.color, *m);
            }
        }
    }

    // Axis.
    canvas.hline(
        area.left as i64,
        area.right as i64,
        area.bottom as i64,
        AXIS,
    );
    if !has_data {
        let text = "NO DATA";
        let scale = 2;
        let tw = (text.len() as i64 * GLYPH_ADVANCE - 1) * scale;
        let cx = ((area.left + area.right) / 2.0) as i64;
        let cy = ((area.top + area.bottom) / 2.0) as i64;
        canvas.text(cx - tw / 2, cy - 7, text, scale, TEXT);
    }
    canvas
}

/// Adds the coverage of the segment a–b to `mask` (max, so joints do not darken),
/// within the plot area.
fn stroke(mask: &mut [f32], width: usize, area: Area, a: (f32, f32), b: (f32, f32)) {
    let reach = HALF_WIDTH + 1.0;
    let x0 = (a.0.min(b.0) - reach).floor().max(area.left) as i64;
    let x1 = (a.0.max(b.0) + reach).ceil().min(area.right) as i64;
    let y0 = (a.1.min(b.1) - reach).floor().max(area.top - 1.0) as i64;
    let y1 = (a.1.max(b.1) + reach).ceil().min(area.bottom + 1.0) as i64;
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for py in y0..y1 {
        for px in x0..x1 {
            let (cx, cy) = (px as f32 + 0.5, py as f32 + 0.5);
            let t = if len2 > 0.0 {
                (((cx - a.0) * dx + (cy - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (nx, ny) = (a.0 + t * dx - cx, a.1 + t * dy - cy);
            let cover = (HALF_WIDTH + 0.5 - (nx * nx + ny * ny).sqrt()).clamp(0.0, 1.0);
            if cover > 0.0 && px >= 0 && py >= 0 {
                if let Some(m) = mask.get_mut(py as usize * width + px as usize) {
                    *m = m.max(cover);
                }
            }
        }
    }
}

/// The y axis: bounds widened to whole ticks of a 1-2-2.5-5 step.
#[derive(Debug, Clone, Copy)]
struct YAxis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl YAxis {
    fn new(lo: Option<f64>, hi: Option<f64>) -> Self {
        let (mut lo, mut hi) = match (lo, hi) {
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() => (lo.min(hi), lo.max(hi)),
            (Some(v), _) | (_, Some(v)) if v.is_finite() => (v, v),
            _ => (0.0, 1.0),
        };
        if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= pad;
            hi += pad;
        }
        let step = nice_step((hi - lo) / 4.0);
        YAxis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            step,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n.clamp(1, 20))
            .map(|i| self.lo + i as f64 * self.step)
            .collect()
    }

    /// A tick value, with a k/M/G/T suffix for large numbers.
    fn label(&self, v: f64) -> String {
        let big = self.lo.abs().max(self.hi.abs());
        let (scale, suffix) = [
            (1e12, 1e12, "T"),
            (1e9, 1e9, "G"),
            (1e6, 1e6, "M"),
            (1e4, 1e3, "k"),
        ]
        .into_iter()
        .find(|(from, _, _)| big >= *from)
        .map_or((1.0, ""), |(_, scale, suffix)| (scale, suffix));
        let step = self.step / scale;
        let decimals = (0..=4)
            .find(|d| !is_fractional(step * 10f64.powi(*d)))
            .unwrap_or(4) as usize;
        let v = v / scale;
        let v = if v.abs() < step / 1e6 { 0.0 } else { v };
        format!("{v:.decimals$}{suffix}")
    }
}

fn is_fractional(x: f64) -> bool {
    (x - x.round()).abs() > 1e-9
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// The time-label step for a range: the smallest nice step giving at most 6 labels;
/// `true` when labels are dates (steps of a day or more).
fn time_step(span_ms: i64) -> (i64, bool) {
    const MIN: i64 = 60_000;
    const STEPS: [i64; 15] = [
        MIN,
        2 * MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        60 * MIN,
        120 * MIN,
        180 * MIN,
        360 * MIN,
        720 * MIN,
        DAY_MS,
        2 * DAY_MS,
        7 * DAY_MS,
        14 * DAY_MS,
    ];
    let step = STEPS
        .into_iter()
        .find(|s| span_ms / s < 6)
        .unwrap_or_else(|| (span_ms / 6 / DAY_MS + 1) * DAY_MS);
    (step, step >= DAY_MS)
}

// -- the font -----------------------------------------------------------------------

/// Font pixels from one glyph's left edge to the next one's.
const GLYPH_ADVANCE: i64 = 6;

/// A 5×7 glyph: seven rows, the high bit of the five the leftmost pixel. Characters
/// without a glyph are blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        _ => [0; 7],
    }
}

// -- PNG ----------------------------------------------------------------------------

/// An 8-bit RGB PNG of `rgb` (rows top to bottom, no filter, zlib-compressed).
fn encode_png(width: usize, height: usize, rgb: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let too_big = || std::io::Error::other("the image is too large");
    let mut raw = Vec::with_capacity((width * 3 + 1) * height);
    for row in rgb.chunks(width * 3) {
        raw.push(0); // filter type: none
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;

    let mut out = Vec::with_capacity(idat.len() + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&u32::try_from(width).map_err(|_| too_big())?.to_be_bytes());
    ihdr.extend_from_slice(&u32::try_from(height).map_err(|_| too_big())?.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr)?;
    chunk(&mut out, b"IDAT", &idat)?;
    chunk(&mut out, b"IEND", &[])?;
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> std::io::Result<()> {
    let len =
        u32::try_from(data.len()).map_err(|_| std::io::Error::other("a PNG chunk is too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(img: &(u32, u32, Vec<u8>), x: u32, y: u32) -> Rgb {
        let i = ((y * img.0 + x) * 3) as usize;
        [img.2[i], img.2[i + 1], img.2[i + 2]]
    }

    fn chart(points: &[(i64, Option<f64>)], bands: Vec<(i64, i64)>) -> Chart<'_> {
        Chart {
            width: WIDTH,
            height: HEIGHT,
            range: TimeRange::new(0, 24 * HOUR).unwrap(),
            lines: vec![Line {
                points,
                color: BLUE,
            }],
            bands,
            y_min: Some(0.0),
            y_max: Some(100.0),
            y_suffix: "%",
            offset: UtcOffset::UTC,
        }
    }

    /// The plot area of a 0–100 % chart (labels "100%" are 4 glyphs wide).
    fn area() -> Area {
        Area {
            left: (4 * GLYPH_ADVANCE + 8) as f32,
            right: WIDTH as f32 - 12.0,
            top: 8.0,
            bottom: HEIGHT as f32 - 18.0,
        }
    }

    #[test]
    fn draws_the_line_and_the_bands() {
        // Flat at 50 % with a band over hours 2–4.
        let points: Vec<_> = (0..=24).map(|h| (h * HOUR, Some(50.0))).collect();
        let png_bytes = render(&chart(&points, vec![(2 * HOUR, 4 * HOUR)])).unwrap();
        assert!(png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        let img = decode(&png_bytes);
        assert_eq!((img.0, img.1), (WIDTH, HEIGHT));
        let a = area();
        let y_line = (a.bottom + a.top) / 2.0;
        let x_mid = ((a.left + a.right) / 2.0) as u32;
        // The pixel row the line's centre falls in has the line colour.
        let on_line = (y_line.floor() as u32 - 1..=y_line.floor() as u32 + 1)
            .map(|y| pixel(&img, x_mid, y))
            .collect::<Vec<_>>();
        assert!(on_line.contains(&BLUE), "{on_line:?}");
        // Well above the line: background.
        assert_eq!(pixel(&img, x_mid, (a.top + 20.0) as u32), BACKGROUND);
        // Inside the band, away from the line and grid: reddish.
        let x_band = (a.left + 3.0 / 24.0 * (a.right - a.left)) as u32;
        let [r, g, b] = pixel(&img, x_band, (a.top + 20.0) as u32);
        assert!(
            r > 240 && g < 220 && b < 220 && r - g > 25,
            "{:?}",
            [r, g, b]
        );
        // Beside the band: not.
        let x_out = (a.left + 6.0 / 24.0 * (a.right - a.left)) as u32;
        assert_eq!(pixel(&img, x_out, (a.top + 20.0) as u32), BACKGROUND);
    }

    #[test]
    fn gaps_and_non_finite_values_break_the_line() {
        let mut points: Vec<_> = (0..=24).map(|h| (h * HOUR, Some(50.0))).collect();
        for p in &mut points[8..12] {
            p.1 = None;
        }
        points[16].1 = Some(f64::NAN);
        points[17].1 = Some(f64::INFINITY);
        points[18].1 = Some(f64::NEG_INFINITY);
        let mut c = chart(&points, vec![]);
        // Auto bounds: the infinities must not stretch the axis.
        c.y_min = None;
        c.y_max = None;
        let img = decode(&render(&c).unwrap());
        let a = area();
        let col = |h: f64| (a.left + (h / 24.0) as f32 * (a.right - a.left)) as u32;
        let has_line = |x: u32| (0..HEIGHT).any(|y| pixel(&img, x, y) == BLUE);
        assert!(has_line(col(4.5)));
        assert!(!has_line(col(9.5)), "a gap is drawn");
        assert!(!has_line(col(16.5)), "a NaN is drawn");
        assert!(has_line(col(20.5)));
    }

    #[test]
    fn empty_series_say_no_data() {
        for points in [vec![], vec![(HOUR, None), (2 * HOUR, Some(f64::NAN))]] {
            let mut c = chart(&points, vec![(HOUR, 2 * HOUR)]);
            c.y_min = None;
            c.y_max = None;
            let img = decode(&render(&c).unwrap());
            assert_eq!((img.0, img.1), (WIDTH, HEIGHT));
            // "NO DATA" in the middle: dark text pixels around the centre.
            let dark = (80..120)
                .flat_map(|y| (250..350).map(move |x| (x, y)))
                .filter(|&(x, y)| pixel(&img, x, y) == TEXT)
                .count();
            assert!(dark > 50, "{dark}");
        }
        // No lines at all, and a tiny canvas, do not panic either.
        let c = Chart {
            lines: vec![],
            width: 1,
            height: 1,
            ..chart(&[], vec![(5, 1)])
        };
        let img = decode(&render(&c).unwrap());
        assert_eq!((img.0, img.1), (64, 48));
    }

    #[test]
    fn nice_ticks_and_labels() {
        let a = YAxis::new(Some(0.0), Some(100.0));
        assert_eq!(a.ticks(), [0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(a.label(75.0), "75");
        let a = YAxis::new(Some(0.13), Some(0.91));
        assert_eq!(a.step, 0.2);
        assert_eq!(a.label(a.ticks()[1]), "0.2");
        let a = YAxis::new(Some(0.0), Some(1.0));
        assert_eq!(a.label(0.25), "0.25");
        let a = YAxis::new(Some(1.2e9), Some(3.9e9));
        assert_eq!(a.label(2e9), "2G");
        let a = YAxis::new(Some(0.0), Some(25_000.0));
        assert_eq!(a.label(10_000.0), "10k");
        let a = YAxis::new(Some(-3.0), Some(7.0));
        assert_eq!((a.lo, a.hi, a.step), (-5.0, 7.5, 2.5));
        assert_eq!(a.label(-5.0), "-5.0");
        let a = YAxis::new(Some(42.0), Some(42.0));
        assert!(a.lo < 42.0 && a.hi > 42.0);
        assert_eq!(time_step(24 * HOUR), (6 * HOUR, false));
        assert_eq!(time_step(HOUR), (15 * 60_000, false));
        assert_eq!(time_step(7 * DAY_MS), (2 * DAY_MS, true));
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }
}
