//! The report of a run: `results.json` (the verdict, op and fault counts, latency percentiles,
//! duration) and two PNG plots drawn with `plotters`' bitmap backend:
//!
//! - `latency.png` — each client op's latency (log scale) at its invoke time, coloured by
//!   outcome (ok green, fail red, info orange);
//! - `throughput.png` — acknowledged ops per second (1 s buckets by completion), total and per
//!   operation.
//!
//! Both shade the fault windows (ops with process −1, from invoke to complete), one colour per
//! fault kind. Text uses the DejaVu Sans font file (Debian `fonts-dejavu-core`) or the file
//! named by `JEPSEN_FONT`, found at run time; without one (or with `JEPSEN_FONT=none`) the plots
//! are drawn without text and `results.json` says so (`plots.text`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::{json, Value};

use crate::checker::Verdict;
use crate::history::{Op, Outcome};

const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];
const SIZE: (u32, u32) = (1400, 700);

/// Registers a font for plotters once; true if text can be drawn.
fn font() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let env = std::env::var("JEPSEN_FONT").ok();
        if env.as_deref() == Some("none") {
            return false;
        }
        for path in env.iter().map(String::as_str).chain(FONT_CANDIDATES) {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        tracing::warn!("no font file found (install fonts-dejavu-core or set JEPSEN_FONT): plots without text");
        false
    })
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
        Outcome::Installed => "installed",
        Outcome::Skipped => "skipped",
        Outcome::Indeterminate => "indeterminate",
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The numbers of `results.json` apart from the verdict.
pub fn summarize(ops: &[Op]) -> Value {
    let mut per_f: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut faults: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut fault_kinds: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for op in ops {
        let name = outcome_name(op.outcome);
        if op.is_fault() {
            *faults.entry(op.f.clone()).or_default().entry(name).or_insert(0) += 1;
            let kind = op.value.get("kind").and_then(Value::as_str).unwrap_or("-");
            *fault_kinds.entry(format!("{}/{kind}", op.f)).or_default().entry(name).or_insert(0) += 1;
        } else {
            *per_f.entry(op.f.clone()).or_default().entry(name).or_insert(0) += 1;
            if op.outcome == Outcome::Ok {
                latencies
                    .entry(op.f.clone())
                    .or_default()
                    .push(op.complete_ns.saturating_sub(op.invoke_ns) as f64 / 1e6);
            }
        }
    }
    let latency: BTreeMap<String, Value> = latencies
        .into_iter()
        .map(|(f, mut v)| {
            v.sort_by(f64::total_cmp);
            let r = |x: f64| (x * 100.0).round() / 100.0;
            (
                f,
                json!({ "ok_ops": v.len(), "p50": r(percentile(&v, 0.5)), "p99": r(percentile(&v, 0.99)),
                "max": r(v.last().copied().unwrap_or(0.0)) }),
            )
        })
        .collect();
    let duration_ns = ops.iter().map(|o| o.complete_ns).max().unwrap_or(0);
    let clients: u64 = ops.iter().filter(|o| !o.is_fault()).count() as u64;
    json!({
        "duration_s": (secs(duration_ns) * 1000.0).round() / 1000.0,
        "client_ops": clients,
        "ops": per_f,
        "faults": faults,
        "fault_kinds": fault_kinds,
        "latency_ms_ok": latency,
    })
}

/// Writes `results.json`, `latency.png` and `throughput.png` into `dir`. A plot that fails is
/// named in `results.json` (`plot_errors`) rather than failing the report.
pub fn write(dir: &Path, ops: &[Op], verdict: &Verdict) -> anyhow::Result<()> {
    let text = font();
    let mut plot_errors = Vec::new();
    if let Err(e) = latency_plot(&dir.join("latency.png"), ops, text) {
        plot_errors.push(format!("latency.png: {e:#}"));
    }
    if let Err(e) = throughput_plot(&dir.join("throughput.png"), ops, text) {
        plot_errors.push(format!("throughput.png: {e:#}"));
    }
    let mut results = summarize(ops);
    let m = results.as_object_mut().expect("object");
    m.insert("valid".into(), json!(verdict.valid));
    m.insert(
        "checks".into(),
        json!(verdict
            .checks
            .iter()
            .map(|c| json!({
                "name": c.name, "valid": c.valid, "skipped": c.skipped, "counts": c.counts,
                "counterexamples_total": c.counterexamples_total,
            }))
            .collect::<Vec<_>>()),
    );
    m.insert("verdict".into(), serde_json::to_value(verdict)?);
    m.insert(
        "plots".into(),
        json!({ "files": ["latency.png", "throughput.png"], "text": text, "errors": plot_errors }),
    );
    let out = serde_json::to_string_pretty(&results)?;
    std::fs::write(dir.join("results.json"), out).context("write results.json")?;
    Ok(())
}

fn fault_color(kind: &str) -> RGBColor {
    match kind {
        "kill" => RGBColor(230, 120, 120),
        "pause" => RGBColor(120, 150, 230),
        "partition" => RGBColor(230, 190, 90),
        "membership" => RGBColor(150, 210, 130),
        "object_store" | "object-store" => RGBColor(190, 130, 220),
        _ => RGBColor(170, 170, 170),
    }
}

/// Fault windows: (kind, from s, to s).
fn windows(ops: &[Op]) -> Vec<(String, f64, f64)> {
    ops.iter()
        .filter(|o| o.is_fault() && o.outcome != Outcome::Skipped)
        .map(|o| (o.f.clone(), secs(o.invoke_ns), secs(o.complete_ns.max(o.invoke_ns))))
        .collect()
}

fn end_s(ops: &[Op]) -> f64 {
    secs(ops.iter().map(|o| o.complete_ns).max().unwrap_or(0)).max(1.0)
}

type Chart<'a, Y> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

/// Shades the fault windows over the whole height of the chart, with one legend entry per kind.
fn shade<'a, Y>(chart: &mut Chart<'a, Y>, ops: &[Op], y: (Y::ValueType, Y::ValueType), text: bool) -> anyhow::Result<()>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    let mut seen = std::collections::BTreeSet::new();
    for (kind, from, to) in windows(ops) {
        let color = fault_color(&kind);
        let rect = Rectangle::new([(from, y.0.clone()), (to, y.1.clone())], color.mix(0.25).filled());
        let series = chart.draw_series(std::iter::once(rect)).map_err(|e| anyhow::anyhow!("{e}"))?;
        if text && seen.insert(kind.clone()) {
            series
                .label(format!("fault: {kind}"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.5).filled()));
        }
    }
    Ok(())
}

fn root<'a>(path: &'a Path) -> anyhow::Result<DrawingArea<BitMapBackend<'a>, Shift>> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(root)
}

fn latency_plot(path: &Path, ops: &[Op], text: bool) -> anyhow::Result<()> {
    let root = root(path)?;
    let points: Vec<(f64, f64, Outcome)> = ops
        .iter()
        .filter(|o| !o.is_fault())
        .map(|o| (secs(o.invoke_ns), (o.complete_ns.saturating_sub(o.invoke_ns) as f64 / 1e6).max(0.01), o.outcome))
        .collect();
    let max_ms = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let min_ms = (points.iter().map(|p| p.1).fold(f64::MAX, f64::min) / 2.0).clamp(0.01, max_ms / 10.0);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15).x_label_area_size(if text { 40 } else { 5 }).y_label_area_size(if text { 70 } else { 5 });
    if text {
        builder.caption("op latency by invoke time (log scale; shaded: faults)", ("sans-serif", 24));
    }
    let x = 0.0..end_s(ops);
    let y = (min_ms..max_ms).log_scale();
    let mut chart = builder.build_cartesian_2d(x, y).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A log axis draws its labels whatever the label count: without a font, no mesh at all.
    if text {
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    shade(&mut chart, ops, (min_ms, max_ms), text)?;
    for (outcome, color) in [
        (Outcome::Ok, RGBColor(40, 160, 60)),
        (Outcome::Info, RGBColor(240, 150, 20)),
        (Outcome::Fail, RGBColor(210, 40, 40)),
    ] {
        let pts = points.iter().filter(|p| p.2 == outcome).map(|p| Circle::new((p.0, p.1), 2, color.filled()));
        let series = chart.draw_series(pts).map_err(|e| anyhow::anyhow!("{e}"))?;
        if text {
            series.label(outcome_name(outcome)).legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
        }
    }
    finish(&mut chart, &root, text)
}

/// Draws the legend (when there is text) and writes the image.
fn finish<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
    text: bool,
) -> anyhow::Result<()> {
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn throughput_plot(path: &Path, ops: &[Op], text: bool) -> anyhow::Result<()> {
    let root = root(path)?;
    let end = end_s(ops);
    let buckets = end.ceil() as usize + 1;
    let mut series: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut total = vec![0u64; buckets];
    for o in ops.iter().filter(|o| !o.is_fault() && o.outcome == Outcome::Ok) {
        let b = (secs(o.complete_ns) as usize).min(buckets - 1);
        series.entry(o.f.clone()).or_insert_with(|| vec![0; buckets])[b] += 1;
        total[b] += 1;
    }
    let max = total.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15).x_label_area_size(if text { 40 } else { 5 }).y_label_area_size(if text { 70 } else { 5 });
    if text {
        builder.caption("acknowledged ops per second (shaded: faults)", ("sans-serif", 24));
    }
    let mut chart = builder.build_cartesian_2d(0.0..end, 0.0..max).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("time since start (s)").y_desc("ok ops/s");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    shade(&mut chart, ops, (0.0, max), text)?;
    let palette = [RGBColor(40, 90, 200), RGBColor(40, 160, 60), RGBColor(200, 100, 20), RGBColor(150, 60, 170)];
    let mut lines: Vec<(String, Vec<u64>, ShapeStyle)> = vec![("all".into(), total, BLACK.stroke_width(2))];
    for (i, (f, v)) in series.into_iter().enumerate() {
        lines.push((f, v, palette[i % palette.len()].stroke_width(1)));
    }
    for (name, v, style) in lines {
        let pts = v.iter().enumerate().map(|(i, n)| (i as f64 + 0.5, *n as f64));
        let s = chart.draw_series(LineSeries::new(pts, style)).map_err(|e| anyhow::anyhow!("{e}"))?;
        if text {
            s.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
        }
    }
    finish(&mut chart, &root, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, process: i64, f: &str, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            process,
            f: f.into(),
            node: Some(1),
            invoke_ns: t.0,
            complete_ns: t.1,
            outcome,
            value: Value::Null,
            result: Value::Null,
            error: None,
        }
    }

    #[test]
    fn writes_results_and_plots() {
        let mut ops = Vec::new();
        for i in 0..400u64 {
            let t = i * 20_000_000;
            let outcome = match i % 17 {
                0 => Outcome::Info,
                5 => Outcome::Fail,
                _ => Outcome::Ok,
            };
            ops.push(op(
                i,
                (i % 4) as i64,
                if i % 3 == 0 { "sync_append" } else { "write" },
                (t, t + 1_000_000 + i * 50_000),
                outcome,
            ));
        }
        ops.push(op(400, -1, "kill", (1_000_000_000, 2_500_000_000), Outcome::Installed));
        ops.push(op(401, -1, "partition", (4_000_000_000, 6_000_000_000), Outcome::Installed));
        ops.push(op(402, -1, "pause", (6_500_000_000, 6_600_000_000), Outcome::Skipped));
        let dir = tempfile::tempdir().unwrap();
        let verdict = crate::checker::unchecked("test");
        write(dir.path(), &ops, &verdict).unwrap();
        let r: Value = serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
        assert_eq!(r["valid"], false);
        assert_eq!(r["faults"]["kill"]["installed"], 1);
        assert_eq!(r["faults"]["pause"]["skipped"], 1);
        assert_eq!(r["fault_kinds"]["kill/-"]["installed"], 1);
        assert_eq!(
            r["ops"]["write"]["ok"].as_u64().unwrap() + r["ops"]["sync_append"]["ok"].as_u64().unwrap(),
            400 - 24 - 24
        );
        assert!(r["plots"]["errors"].as_array().unwrap().is_empty(), "{}", r["plots"]);
        for f in ["latency.png", "throughput.png"] {
            let png = std::fs::read(dir.path().join(f)).unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{f}");
        }
        if let Ok(out) = std::env::var("JEPSEN_REPORT_TEST_OUT") {
            for f in ["latency.png", "throughput.png", "results.json"] {
                std::fs::copy(dir.path().join(f), Path::new(&out).join(f)).unwrap();
            }
        }
    }
}
