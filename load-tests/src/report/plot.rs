//! SVG plots (plotters): ACK latency per second over the run, and latency against percentile.

use std::path::Path;

use plotters::prelude::*;

use super::PhaseReport;
use crate::driver::PhaseResult;
use crate::histogram::SecondPoint;
use crate::LoadError;

const SIZE: (u32, u32) = (1000, 520);

fn plot_error(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Report(format!("{}: {e}", path.display()))
}

/// The label of x = -log10(1 - q) as a percentile: 0.3 → 50, 2 → 99, 3 → 99.9.
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Log-scale bounds covering `values` (ms), at least 0.1 to 10.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for v in values.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi == 0.0 {
        return (0.1, 10.0);
    }
    ((lo / 2.0).max(0.01), (hi * 2.0).max(lo * 10.0))
}

/// ACK latency per second (p50, p99, max) above, requests per second (sent, acked, errors,
/// shed) below, every phase on one time axis.
pub fn latency_over_time(path: &Path, phases: &[PhaseReport]) -> Result<(), LoadError> {
    let x_max = phases
        .iter()
        .flat_map(|p| p.timeline.last().map(|s| s.t_s + 1.0))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (SIZE.0, SIZE.1 + 260)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let (upper, lower) = root.split_vertically(SIZE.1);
    latency_panel(path, &upper, phases, x_max)?;
    rate_panel(path, &lower, phases, x_max)?;
    root.present().map_err(|e| plot_error(path, e))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Get = fn(&SecondPoint) -> f64;

fn latency_panel(
    path: &Path,
    area: &Area<'_>,
    phases: &[PhaseReport],
    x_max: f64,
) -> Result<(), LoadError> {
    let acked = |s: &&SecondPoint| s.acked > 0;
    let (y_lo, y_hi) = log_bounds(
        phases
            .iter()
            .flat_map(|p| p.timeline.iter().filter(acked))
            .flat_map(|s| [s.p50_ms, s.max_ms]),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(
            "ACK latency per second (from when each request was due)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_lo..y_hi).log_scale())
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .y_labels(8)
        .x_desc("seconds from the start of the run")
        .y_desc("ms (log)")
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let lines: [(&str, RGBColor, Get); 3] = [
        ("p50", BLUE, |s| s.p50_ms),
        ("p99", RGBColor(230, 140, 0), |s| s.p99_ms),
        ("max", RED, |s| s.max_ms),
    ];
    draw_lines(path, &mut chart, phases, &lines, |s| s.acked > 0, y_lo)
}

fn rate_panel(
    path: &Path,
    area: &Area<'_>,
    phases: &[PhaseReport],
    x_max: f64,
) -> Result<(), LoadError> {
    let y_max = phases
        .iter()
        .flat_map(|p| {
            p.timeline
                .iter()
                .map(|s| s.sent.max(s.acked + s.errors + s.shed))
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Requests per second (by the second they were due)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .y_desc("requests")
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let lines: [(&str, RGBColor, Get); 4] = [
        ("sent", RGBColor(120, 120, 120), |s| s.sent as f64),
        ("acked", RGBColor(0, 150, 0), |s| s.acked as f64),
        ("errors", RED, |s| s.errors as f64),
        ("shed", RGBColor(230, 140, 0), |s| s.shed as f64),
    ];
    draw_lines(path, &mut chart, phases, &lines, |_| true, 0.0)
}

/// One line a series (`lines`: label, colour, value of a second) for every phase, the seconds
/// `keep` accepts, values at least `floor` (a log axis has no 0); labelled once, in a legend.
fn draw_lines<'a, Y: Ranged<ValueType = f64>>(
    path: &Path,
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    phases: &[PhaseReport],
    lines: &[(&'static str, RGBColor, Get)],
    keep: impl Fn(&SecondPoint) -> bool,
    floor: f64,
) -> Result<(), LoadError> {
    for &(label, color, get) in lines {
        for (i, p) in phases.iter().enumerate() {
            let points = p
                .timeline
                .iter()
                .filter(|s| keep(s))
                .map(|s| (s.t_s + 0.5, get(s).max(floor)));
            let drawn = chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| plot_error(path, e))?;
            if i == 0 {
                drawn.label(label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))
}

/// Latency against percentile (x: 50, 90, 99, 99.9, 99.99 equally spaced) for each phase's
/// series.
pub fn percentiles(path: &Path, phases: &[PhaseResult]) -> Result<(), LoadError> {
    let mut curves = Vec::new();
    for p in phases {
        let series = [
            Some(&p.ack),
            p.completion.as_ref().map(|c| &c.series),
            p.views.as_ref().map(|v| &v.series),
        ];
        for s in series.into_iter().flatten() {
            let pts = s.percentile_curve();
            if !pts.is_empty() {
                curves.push((format!("{} {}", p.spec.name, s.kind.name()), pts));
            }
        }
    }
    let x_max = curves
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        .ceil();
    let (y_lo, y_hi) = log_bounds(curves.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency by percentile", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_lo..y_hi).log_scale())
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .x_desc("percentile")
        .y_desc("ms (log)")
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let palette = [
        BLUE,
        RED,
        RGBColor(0, 150, 0),
        RGBColor(230, 140, 0),
        MAGENTA,
        CYAN,
    ];
    for (i, (label, pts)) in curves.into_iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(
                pts.into_iter().map(|(x, y)| (x, y.max(y_lo))),
                color.stroke_width(2),
            ))
            .map_err(|e| plot_error(path, e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}
