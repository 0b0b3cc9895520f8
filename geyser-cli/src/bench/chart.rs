//! The benchmark's SVG charts (plotters): grouped bars of fps per mode and size, and line
//! panels of a measurement against one variable.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::Row;

const COLORS: [RGBColor; 7] = [
    RGBColor(66, 133, 244),
    RGBColor(52, 168, 83),
    RGBColor(0, 121, 107),
    RGBColor(234, 67, 53),
    RGBColor(171, 71, 188),
    RGBColor(251, 188, 5),
    RGBColor(154, 160, 166),
];

fn err(e: impl std::fmt::Display) -> geyser::Error {
    geyser::Error::Io(std::io::Error::other(e.to_string()))
}

/// A grouped bar chart of fps: one group per size, one bar per mode measured.
pub(super) fn bars(
    path: &Path,
    device: &str,
    sizes: &[String],
    modes: &[&str],
    rows: &[Row],
) -> geyser::Result<()> {
    let modes: Vec<&str> = modes
        .iter()
        .copied()
        .filter(|m| rows.iter().any(|r| r.mode == *m))
        .collect();
    // Bars per size group: the modes measured, plus one bar's gap.
    let width = modes.len() as f64 + 1.0;
    let max = rows.iter().map(|r| r.fps).fold(1.0, f64::max) * 1.45;
    let root = SVGBackend::new(path, (960, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let groups = sizes.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("geyser bench — frames/s on {device}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..groups * width, 0f64..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(sizes.len() * width as usize + 1)
        .x_label_formatter(&|x| {
            // Ticks fall on integers; each group of bars is centred on width·g + width/2.
            let g = (x / width).floor() as usize;
            if (x - (g as f64 * width + width / 2.0)).abs() < 0.25 {
                sizes.get(g).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("frames per second")
        .draw()
        .map_err(err)?;
    for (m, mode) in modes.iter().enumerate() {
        let color = COLORS[m % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = sizes
            .iter()
            .enumerate()
            .filter_map(|(g, size)| {
                let r = rows.iter().find(|r| &r.size == size && r.mode == *mode)?;
                let x = g as f64 * width + 0.5 + m as f64;
                Some(Rectangle::new([(x, 0.0), (x + 0.9, r.fps)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(*mode)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One panel: a measurement (`y`) against the variable, one line per series.
pub(super) struct Panel {
    /// What is plotted, with its unit.
    pub y: String,
    /// Series: name and (x, y) points (NaN y: not measured).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Panels side by side sharing the x variable (`x_desc`, log-scaled when `log_x`), e.g. fps,
/// GPU handoff and CPU per frame against the number of consumers.
pub(super) fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    log_x: bool,
    panels: &[Panel],
) -> geyser::Result<()> {
    let root = SVGBackend::new(path, (420 * panels.len() as u32, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(36);
    top.titled(title, ("sans-serif", 20)).map_err(err)?;
    for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
        let points = || {
            panel
                .series
                .iter()
                .flat_map(|(_, p)| p)
                .filter(|p| p.1.is_finite())
        };
        let x_min = points().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let y_max = points().map(|p| p.1).fold(0.0, f64::max) * 1.15;
        if !x_min.is_finite() || !x_max.is_finite() {
            continue;
        }
        let y_range = 0f64..y_max.max(1e-9);
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .caption(&panel.y, ("sans-serif", 15));
        if log_x {
            let mut chart = builder
                .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), y_range)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .x_label_formatter(&|x| {
                    format!("{x:.3}")
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_string()
                })
                .draw()
                .map_err(err)?;
            draw_lines(&mut chart, panel)?;
        } else {
            let pad = (x_max - x_min).max(1.0) * 0.05;
            let mut chart = builder
                .build_cartesian_2d(x_min - pad..x_max + pad, y_range)
                .map_err(err)?;
            chart.configure_mesh().x_desc(x_desc).draw().map_err(err)?;
            draw_lines(&mut chart, panel)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

fn draw_lines<'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    panel: &Panel,
) -> geyser::Result<()> {
    for (i, (name, pts)) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_panels_draw_every_measured_point_and_name_every_series() {
        let path = std::env::temp_dir().join(format!("geyser-chart-{}.svg", std::process::id()));
        let panels = [
            Panel {
                y: "frames/s".into(),
                series: vec![
                    (
                        "lossless".into(),
                        vec![(1.0, 900.0), (2.0, 850.0), (4.0, 700.0)],
                    ),
                    (
                        "lossy".into(),
                        vec![(1.0, 950.0), (2.0, 940.0), (4.0, 930.0)],
                    ),
                ],
            },
            Panel {
                y: "GPU handoff p50 (µs)".into(),
                // Not measured at 4: no point drawn for it.
                series: vec![(
                    "lossless".into(),
                    vec![(1.0, 20.0), (2.0, 25.0), (4.0, f64::NAN)],
                )],
            },
        ];
        lines(&path, "test chart", "consumers", true, &panels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            svg.matches("<circle").count(),
            3 + 3 + 2,
            "one dot per measured point"
        );
        for text in [
            "test chart",
            "frames/s",
            "GPU handoff p50",
            "lossless",
            "lossy",
            "consumers",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
