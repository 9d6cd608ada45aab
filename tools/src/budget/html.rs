//! HTML rendering of a [`BudgetReport`]: the result of `sprig compress --budget` as one page.
//!
//! Guarantees of [`render`]'s output:
//! - one self-contained HTML5 document: inline CSS and inline SVG only (no `xmlns`: HTML does not
//!   need one), no script, no external stylesheet, font, image or link to any network address;
//! - every string taken from the report is HTML-escaped with [`escape`], so node names, paths,
//!   notes and reasons cannot inject markup;
//! - every number shown is formatted from the report, nothing is hard-coded; a value that is not
//!   finite is shown as `—` and never reaches an SVG coordinate or a `data-` attribute;
//! - exactly one `<svg class="chart chart-K">` per per-layer chart, K in [`LAYER_CHARTS`], whether
//!   or not any layer has a value for it. Each holds one bar per layer that has a finite value, in
//!   report order: `params` (kept weights, over the layers with weights, i.e. `params` or
//!   `params_dense` > 0), `bits` (`bits_per_weight`), `pruned` (`pruned_fraction`, layers with
//!   weights), `zeros` (`input_zero_fraction`), `recon` (`reconstruction_error`), `macs`
//!   (`mac_share`) and `latency` (`latency_share`). Every such bar, and nothing else, is a `<rect>`
//!   carrying `data-layer` (the node name) and `data-value` (Rust's `Display` of the value: the
//!   digits the JSON holds); a params bar also carries `data-dense` (`params_dense`);
//! - the error-vs-flash curve is one `<svg class="chart chart-curve">` when any frontier point or
//!   explored candidate has a finite error, and one `<p class="no-points">` otherwise. In it, one
//!   `<circle class="frontier …">` per such frontier point (report order) with `data-flash` and
//!   `data-error` (predicted), one `<circle class="explored …">` per such candidate (report order)
//!   with `data-candidate` (its index), `data-flash`, `data-error` (measured) and `data-feasible`;
//!   the chosen candidate's circle alone has the class `chosen`; one `<line>` with the class
//!   `budget-flash` and `data-flash` when the budget limits flash;
//! - the candidate table has one `<tr data-candidate="i">` per explored candidate, in report
//!   order, the chosen one alone with the class `chosen`.

use super::report::{BudgetReport, Candidate, FrontierPoint, LayerRow, Side};
use crate::analyze_html::escape;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// The per-layer charts, by the class suffix of their `<svg>` (`chart-params`, ...), in page order.
pub const LAYER_CHARTS: [&str; 7] = ["params", "bits", "pruned", "zeros", "recon", "macs", "latency"];

/// Width of a per-layer chart's coordinate system, in CSS pixels.
const BAR_CHART_W: f64 = 540.0;
const BAR_LABEL_W: f64 = 160.0;
const BAR_VALUE_W: f64 = 130.0;
const BAR_ROW_H: f64 = 18.0;
const BAR_H: f64 = 12.0;

/// Layer names longer than this many characters are shortened in the charts (the full name stays
/// in the bar's tooltip and in the table).
const LABEL_CHARS: usize = 24;

/// Width and plot height of the error-vs-flash chart's coordinate system, in CSS pixels.
const CURVE_W: f64 = 900.0;
const CURVE_PLOT_H: f64 = 300.0;

/// Frontier series colours cycle through this many CSS classes (`s0` ...).
const SERIES_CLASSES: usize = 6;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1120px;padding:0 1em;color:#1a202c}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.summary dt{font-weight:600}dl.summary dd{margin:0}
table{border-collapse:collapse;font-size:.85em;width:100%;margin:.5em 0}
th,td{border:1px solid #cbd5e0;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#edf2f7}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.budget,table.sides{width:auto;min-width:50%}
tr.chosen td{background:#fefcbf;font-weight:600}
code{font-size:.95em;word-break:break-all}
.status{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:700}
.status.met{background:#c6f6d5;color:#22543d}.status.not-met{background:#fed7d7;color:#822727}
.yes{color:#22543d}.no{color:#9b2c2c;font-weight:600}
.muted{color:#718096}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1em 2em}
figure{margin:0}figcaption{font-weight:600;font-size:.95em}
.chart{max-width:100%;height:auto;display:block;margin:.5em 0}
.chart text{font-size:11px;fill:#2d3748}
.chart .axis{stroke:#718096;stroke-width:1}.chart .grid{stroke:#e2e8f0;stroke-width:1}
.chart .dense{fill:#bee3f8}
.chart-params .bar{fill:#2b6cb0}.chart-bits .bar{fill:#805ad5}.chart-pruned .bar{fill:#c53030}
.chart-zeros .bar{fill:#38a169}.chart-recon .bar{fill:#dd6b20}.chart-macs .bar{fill:#319795}
.chart-latency .bar{fill:#d69e2e}
.chart-curve polyline{fill:none!important;stroke-width:2}
.chart-curve .frontier{stroke:none}
.chart-curve .s0{stroke:#2b6cb0;fill:#2b6cb0}.chart-curve .s1{stroke:#805ad5;fill:#805ad5}
.chart-curve .s2{stroke:#319795;fill:#319795}.chart-curve .s3{stroke:#d69e2e;fill:#d69e2e}
.chart-curve .s4{stroke:#b83280;fill:#b83280}.chart-curve .s5{stroke:#2f855a;fill:#2f855a}
.chart-curve .explored{stroke-width:1.5}
.chart-curve .feasible{fill:#38a169;stroke:#22543d}.chart-curve .infeasible{fill:#fff;stroke:#e53e3e}
.chart-curve .chosen{fill:#ecc94b;stroke:#1a202c;stroke-width:2.5}
.chart-curve .chosen-label{font-weight:700}
.chart-curve .budget{stroke:#c53030;stroke-width:1.5;stroke-dasharray:6 4}
.chart-curve .budget-label{fill:#c53030}
";

/// Renders the report as one self-contained HTML5 document (see the module docs for what the
/// output guarantees).
pub fn render(rep: &BudgetReport) -> String {
    let mut out = String::new();
    write_document(&mut out, rep).expect("writing to a String cannot fail");
    out
}

/// `v` when it is finite.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// Bytes as KiB with one decimal, the exact count in the tooltip (`1536` → `1.5 KiB`).
fn bytes(b: u64) -> String {
    format!("<span title=\"{b} bytes\">{:.1} KiB</span>", b as f64 / 1024.0)
}

/// A count with a k / M / G suffix and about three significant digits (`12345` → `12.3k`).
fn si(n: u64) -> String {
    let v = n as f64;
    if v < 999.5 {
        n.to_string()
    } else if v < 999.95e3 {
        format!("{:.1}k", v / 1e3)
    } else if v < 999.5e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// A count as [`si`], the exact count in the tooltip.
fn count(n: u64) -> String {
    format!("<span title=\"{n}\">{}</span>", si(n))
}

/// A fraction as a percentage with one decimal (`0.4375` → `43.8 %`); `—` when not finite.
fn pct(f: f64) -> String {
    if f.is_finite() {
        format!("{:.1} %", f * 100.0)
    } else {
        "—".to_string()
    }
}

/// A latency in µs with one decimal; `—` when not finite.
fn us(f: f64) -> String {
    if f.is_finite() {
        format!("{f:.1} µs")
    } else {
        "—".to_string()
    }
}

/// A magnitude with about three significant decimals, scientific when very large or small; `—`
/// when not finite.
fn num(v: f64) -> String {
    if !v.is_finite() {
        "—".to_string()
    } else if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

/// `f` of the value, or `—` when absent.
fn opt<T: Copy>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "—".to_string(), f)
}

/// The relative change from `before` to `after` (`−75.0 %`); `—` when `before` is zero or either
/// is not finite.
fn change(before: f64, after: f64) -> String {
    let r = after / before - 1.0;
    if before != 0.0 && r.is_finite() {
        format!("{:+.1} %", r * 100.0).replace('-', "−")
    } else {
        "—".to_string()
    }
}

/// `s` cut to [`LABEL_CHARS`] characters keeping its end: framework-generated layer names share
/// long prefixes and differ at the end.
fn shorten(s: &str) -> String {
    let n = s.chars().count();
    if n > LABEL_CHARS {
        let tail: String = s.chars().skip(n - (LABEL_CHARS - 1)).collect();
        format!("…{tail}")
    } else {
        s.to_string()
    }
}

/// An SVG coordinate: `v` when finite, else 0, so no `NaN` or `inf` ever reaches an attribute.
fn px(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// `v / full` clamped to `[0, 1]`; 0 when that is not finite.
fn fraction_of(v: f64, full: f64) -> f64 {
    let f = v / full;
    if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn has_weights(l: &LayerRow) -> bool {
    l.params > 0 || l.params_dense > 0
}

fn write_document(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")?;
    writeln!(out, "<title>Budget search — {}</title>", escape(&rep.model))?;
    writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>")?;
    write_header(out, rep)?;
    write_budget(out, rep)?;
    write_limits(out, rep)?;
    write_sides(out, rep)?;
    write_curve(out, rep)?;
    write_layer_charts(out, &rep.layers)?;
    write_layer_table(out, &rep.layers)?;
    write_candidate_table(out, rep)?;
    writeln!(out, "</body>\n</html>")
}

fn write_header(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    writeln!(out, "<h1>Budget search: <code>{}</code></h1>", escape(&rep.model))?;
    if rep.met {
        writeln!(out, "<p class=\"status met\">Budget met</p>")?;
    } else {
        writeln!(out, "<p class=\"status not-met\">Budget not met</p>")?;
    }
    writeln!(out, "<dl class=\"summary\">")?;
    writeln!(out, "<dt>Model</dt><dd><code>{}</code></dd>", escape(&rep.model))?;
    let written = if rep.met { "" } else { " <span class=\"muted\">(not written: budget not met)</span>" };
    writeln!(out, "<dt>Output</dt><dd><code>{}</code>{written}</dd>", escape(&rep.output))?;
    writeln!(out, "<dt>Target</dt><dd><code>{}</code></dd>", escape(&rep.target))?;
    writeln!(out, "<dt>Calibration samples</dt><dd>{}</dd>", rep.calib_samples)?;
    writeln!(out, "<dt>Measured on</dt><dd>{}</dd>", escape(&rep.eval_on))?;
    let chosen_text = match rep.chosen {
        Some(i) => format!("#{i}"),
        None => "none".to_string(),
    };
    writeln!(out, "<dt>Candidates explored</dt><dd>{} (chosen: {chosen_text})</dd>", rep.explored.len())?;
    writeln!(
        out,
        "<dt>Search time</dt><dd>{}</dd>\n</dl>",
        if rep.seconds.is_finite() { format!("{:.1} s", rep.seconds) } else { "—".to_string() }
    )
}

/// The chosen candidate, when `chosen` indexes `explored`.
fn chosen(rep: &BudgetReport) -> Option<&Candidate> {
    rep.chosen.and_then(|i| rep.explored.get(i))
}

fn write_budget(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    fn within(limit: Option<f64>, result: Option<f64>) -> &'static str {
        match (limit, result) {
            (Some(l), Some(r)) if l.is_finite() && r.is_finite() => {
                if r <= l {
                    "<td class=\"yes\">yes</td>"
                } else {
                    "<td class=\"no\">no</td>"
                }
            }
            _ => "<td>—</td>",
        }
    }
    let b = &rep.budget;
    let after = rep.after.as_ref();
    let error = chosen(rep).and_then(|c| c.measured_error);
    writeln!(out, "<h2>Budget</h2>\n<table class=\"budget\">")?;
    writeln!(out, "<thead><tr><th>figure</th><th>limit</th><th>result</th><th>within</th></tr></thead>\n<tbody>")?;
    let limit = |v: Option<String>| v.unwrap_or_else(|| "<span class=\"muted\">no limit</span>".to_string());
    let rows: [(&str, String, String, &str); 5] = [
        (
            "flash",
            limit(b.flash.map(bytes)),
            opt(after.map(|a| a.flash), bytes),
            within(b.flash.map(|v| v as f64), after.map(|a| a.flash as f64)),
        ),
        (
            ".sprig file",
            limit(b.file.map(bytes)),
            opt(after.map(|a| a.file_bytes), bytes),
            within(b.file.map(|v| v as f64), after.map(|a| a.file_bytes as f64)),
        ),
        ("RAM", limit(b.ram.map(bytes)), opt(after.map(|a| a.ram), bytes), within(b.ram.map(|v| v as f64), after.map(|a| a.ram as f64))),
        (
            "MACs",
            limit(b.macs.map(count)),
            opt(after.map(|a| a.macs), count),
            within(b.macs.map(|v| v as f64), after.map(|a| a.macs as f64)),
        ),
        ("relative output error (calibration data)", limit(b.max_error.map(num)), opt(error, num), within(b.max_error, error)),
    ];
    for (name, limit, result, ok) in rows {
        writeln!(out, "<tr><th>{name}</th><td class=\"num\">{limit}</td><td class=\"num\">{result}</td>{ok}</tr>")?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_parts(out: &mut String, parts: &[(String, u64)]) -> fmt::Result {
    if parts.is_empty() {
        return Ok(());
    }
    write!(out, "<ul>")?;
    for (what, b) in parts {
        write!(out, "<li>{}: {}</li>", escape(what), bytes(*b))?;
    }
    write!(out, "</ul>")
}

fn write_limits(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    let Some(l) = &rep.limits else {
        if !rep.met {
            writeln!(out, "<h2>Why the budget was not met</h2>\n<p class=\"muted\">The search recorded no limits.</p>")?;
        }
        return Ok(());
    };
    writeln!(out, "<h2>{}</h2>", if rep.met { "Smallest figures reached" } else { "Why the budget was not met" })?;
    writeln!(out, "<ul class=\"reasons\">")?;
    for r in &l.reasons {
        writeln!(out, "<li>{}</li>", escape(r))?;
    }
    writeln!(out, "</ul>\n<dl class=\"summary limits\">")?;
    write!(out, "<dt>Smallest flash</dt><dd>{}", bytes(l.min_flash))?;
    write_parts(out, &l.flash_parts)?;
    write!(out, "</dd>\n<dt>Smallest RAM</dt><dd>{}", bytes(l.min_ram))?;
    write_parts(out, &l.ram_parts)?;
    writeln!(out, "</dd>\n<dt>Smallest MACs</dt><dd>{}</dd>", count(l.min_macs))?;
    writeln!(out, "<dt>Smallest error within flash / RAM / MACs</dt><dd>{}</dd>\n</dl>", opt(l.min_error, num))
}

fn write_sides(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    /// One row: label, the figure as shown, and as a number for the change column (`None`: no
    /// change shown).
    type Figure = fn(&Side) -> (String, Option<f64>);
    let rows: [(&str, Figure); 13] = [
        (".sprig file", |s| (bytes(s.file_bytes), Some(s.file_bytes as f64))),
        ("flash", |s| (bytes(s.flash), Some(s.flash as f64))),
        ("RAM", |s| (bytes(s.ram), Some(s.ram as f64))),
        ("arena", |s| (bytes(s.arena), Some(s.arena as f64))),
        ("MACs", |s| (count(s.macs), Some(s.macs as f64))),
        ("weight parameters", |s| (count(s.params), Some(s.params as f64))),
        ("latency, predicted", |s| (opt(s.latency_us_predicted, us), None)),
        ("latency, measured (host)", |s| (us(s.latency_us_measured), Some(s.latency_us_measured))),
        ("accuracy", |s| (opt(s.accuracy, pct), None)),
        ("top-1 agreement with the ONNX model", |s| (pct(s.vs_onnx.top1_agreement), None)),
        ("relative error vs the ONNX model", |s| (num(s.vs_onnx.relative_error), None)),
        ("max |error| vs the ONNX model", |s| (num(s.vs_onnx.max_abs_error), None)),
        ("samples compared", |s| (s.vs_onnx.samples.to_string(), None)),
    ];
    writeln!(out, "<h2>Before and after</h2>")?;
    writeln!(out, "<p>Accuracy and fidelity measured on {}.</p>", escape(&rep.eval_on))?;
    if rep.after.is_none() {
        writeln!(out, "<p class=\"muted\">No configuration was chosen.</p>")?;
    }
    writeln!(
        out,
        "<table class=\"sides\">\n<thead><tr><th>figure</th><th>dense</th><th>compressed</th><th>change</th></tr></thead>\n<tbody>"
    )?;
    for (name, figure) in rows {
        let (before, b) = figure(&rep.before);
        let (after, delta) = match &rep.after {
            Some(a) => {
                let (text, v) = figure(a);
                (text, b.zip(v).map_or_else(|| "—".to_string(), |(b, a)| change(b, a)))
            }
            None => ("—".to_string(), "—".to_string()),
        };
        writeln!(
            out,
            "<tr><th>{name}</th><td class=\"num\">{before}</td><td class=\"num\">{after}</td><td class=\"num\">{delta}</td></tr>"
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// One bar of a per-layer chart.
struct Bar<'a> {
    layer: &'a str,
    /// `data-value`: Rust's `Display` of the value.
    data: String,
    value: f64,
    /// The dense model's value drawn behind the bar (params chart only).
    dense: Option<u64>,
    label: String,
}

/// One per-layer chart: its class suffix (one of [`LAYER_CHARTS`]), caption, the value at full
/// bar length and its label, and its bars.
struct BarChart<'a> {
    key: &'static str,
    caption: &'static str,
    full: f64,
    full_label: String,
    bars: Vec<Bar<'a>>,
}

fn real_bar(l: &LayerRow, value: f64, label: String) -> Bar<'_> {
    Bar { layer: &l.name, data: value.to_string(), value, dense: None, label }
}

/// The largest bar value (and dense value), or `fallback` when there is none above zero.
fn largest(bars: &[Bar], fallback: f64) -> f64 {
    let m = bars.iter().flat_map(|b| [b.value, b.dense.map_or(0.0, |d| d as f64)]).fold(0.0, f64::max);
    if m > 0.0 {
        m
    } else {
        fallback
    }
}

fn layer_charts(layers: &[LayerRow]) -> [BarChart<'_>; 7] {
    let params: Vec<Bar> = layers
        .iter()
        .filter(|l| has_weights(l))
        .map(|l| Bar {
            layer: &l.name,
            data: l.params.to_string(),
            value: l.params as f64,
            dense: Some(l.params_dense),
            label: format!("{} of {}", si(l.params), si(l.params_dense)),
        })
        .collect();
    let bits: Vec<Bar> = layers
        .iter()
        .filter_map(|l| {
            let b = finite(l.bits_per_weight)?;
            let label = match l.codebook_bits {
                Some(k) => format!("{b:.2} (codebook {k}-bit)"),
                None => format!("{b:.2}"),
            };
            Some(real_bar(l, b, label))
        })
        .collect();
    let pruned: Vec<Bar> = layers
        .iter()
        .filter(|l| has_weights(l) && l.pruned_fraction.is_finite())
        .map(|l| real_bar(l, l.pruned_fraction, pct(l.pruned_fraction)))
        .collect();
    let zeros: Vec<Bar> = layers.iter().filter_map(|l| finite(l.input_zero_fraction).map(|z| real_bar(l, z, pct(z)))).collect();
    let recon: Vec<Bar> = layers.iter().filter_map(|l| finite(l.reconstruction_error).map(|e| real_bar(l, e, num(e)))).collect();
    let macs: Vec<Bar> = layers
        .iter()
        .filter(|l| l.mac_share.is_finite())
        .map(|l| real_bar(l, l.mac_share, format!("{} ({})", pct(l.mac_share), si(l.macs))))
        .collect();
    let latency: Vec<Bar> = layers
        .iter()
        .filter(|l| l.latency_share.is_finite())
        .map(|l| real_bar(l, l.latency_share, format!("{} ({})", pct(l.latency_share), us(l.latency_us))))
        .collect();

    let params_full = largest(&params, 1.0);
    let bits_full = largest(&bits, 1.0);
    let recon_full = largest(&recon, 1.0);
    let macs_full = largest(&macs, 1.0);
    let latency_full = largest(&latency, 1.0);
    [
        BarChart {
            key: "params",
            caption: "Weight parameters: kept (dark) of the dense layer's (light)",
            full: params_full,
            full_label: si(params_full as u64),
            bars: params,
        },
        BarChart {
            key: "bits",
            caption: "Payload bits per weight",
            full: bits_full,
            full_label: format!("{bits_full:.2} bits"),
            bars: bits,
        },
        BarChart { key: "pruned", caption: "Output channels pruned", full: 1.0, full_label: pct(1.0), bars: pruned },
        BarChart {
            key: "zeros",
            caption: "Exact zeros in the layer's input (calibration data)",
            full: 1.0,
            full_label: pct(1.0),
            bars: zeros,
        },
        BarChart {
            key: "recon",
            caption: "Reconstruction error of the codebook fit (0 = dense refit, 1 = all zero)",
            full: recon_full,
            full_label: num(recon_full),
            bars: recon,
        },
        BarChart { key: "macs", caption: "Share of the model's MACs", full: macs_full, full_label: pct(macs_full), bars: macs },
        BarChart {
            key: "latency",
            caption: "Share of the measured operator time",
            full: latency_full,
            full_label: pct(latency_full),
            bars: latency,
        },
    ]
}

fn write_layer_charts(out: &mut String, layers: &[LayerRow]) -> fmt::Result {
    writeln!(out, "<h2>Per layer</h2>\n<div class=\"charts\">")?;
    for chart in layer_charts(layers) {
        write_bar_chart(out, &chart)?;
    }
    writeln!(out, "</div>")
}

fn write_bar_chart(out: &mut String, chart: &BarChart) -> fmt::Result {
    const TOP: f64 = 4.0;
    const AXIS_H: f64 = 18.0;
    let plot_w = BAR_CHART_W - BAR_LABEL_W - BAR_VALUE_W;
    let base = TOP + BAR_ROW_H * chart.bars.len().max(1) as f64;
    let height = base + AXIS_H;
    let key = chart.key;
    writeln!(out, "<figure>\n<figcaption>{}</figcaption>", escape(chart.caption))?;
    writeln!(
        out,
        "<svg class=\"chart chart-{key}\" width=\"{BAR_CHART_W}\" height=\"{height}\" viewBox=\"0 0 {BAR_CHART_W} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(chart.caption)
    )?;
    if chart.bars.is_empty() {
        writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" class=\"muted\">no layer has this value</text>", BAR_LABEL_W + 6.0, TOP + BAR_H)?;
    }
    for (i, b) in chart.bars.iter().enumerate() {
        let y = TOP + BAR_ROW_H * i as f64 + (BAR_ROW_H - BAR_H) / 2.0;
        let text_y = y + BAR_H - 2.0;
        let name = escape(b.layer);
        write!(out, "<g><text x=\"{:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\">{}</text>", BAR_LABEL_W - 6.0, escape(&shorten(b.layer)))?;
        if let Some(d) = b.dense {
            let w = plot_w * fraction_of(d as f64, chart.full);
            write!(out, "<rect class=\"dense\" x=\"{BAR_LABEL_W}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{BAR_H}\"/>", px(w))?;
        }
        let w = plot_w * fraction_of(b.value, chart.full);
        let dense = b.dense.map_or_else(String::new, |d| format!(" data-dense=\"{d}\""));
        write!(
            out,
            "<rect class=\"bar\" x=\"{BAR_LABEL_W}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{BAR_H}\" data-layer=\"{name}\" data-value=\"{}\"{dense}><title>{name}: {}</title></rect>",
            px(w),
            b.data,
            escape(&b.label),
        )?;
        writeln!(out, "<text x=\"{:.1}\" y=\"{text_y:.1}\">{}</text></g>", BAR_LABEL_W + plot_w + 6.0, escape(&b.label))?;
    }
    writeln!(out, "<line class=\"axis\" x1=\"{BAR_LABEL_W}\" y1=\"{TOP}\" x2=\"{BAR_LABEL_W}\" y2=\"{base:.1}\"/>")?;
    writeln!(out, "<line class=\"axis\" x1=\"{BAR_LABEL_W}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\"/>", BAR_LABEL_W + plot_w)?;
    writeln!(out, "<text x=\"{BAR_LABEL_W}\" y=\"{:.1}\" text-anchor=\"middle\">0</text>", base + 13.0)?;
    writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        BAR_LABEL_W + plot_w,
        base + 13.0,
        escape(&chart.full_label)
    )?;
    writeln!(out, "</svg>\n</figure>")
}

fn write_layer_table(out: &mut String, layers: &[LayerRow]) -> fmt::Result {
    writeln!(out, "<h2>Layers</h2>\n<table class=\"layers\">")?;
    writeln!(
        out,
        "<thead><tr><th>node</th><th>op</th><th>kernel</th><th>params kept</th><th>params dense</th><th>bits / weight</th>\
         <th>codebook bits</th><th>pruned</th><th>input zeros</th><th>reconstruction error</th><th>MACs</th><th>MAC share</th>\
         <th>latency</th><th>latency share</th><th>weight bytes</th></tr></thead>\n<tbody>"
    )?;
    for l in layers {
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&l.name),
            escape(&l.op),
            escape(&l.kernel),
            count(l.params),
            count(l.params_dense),
            opt(l.bits_per_weight, |b| if b.is_finite() { format!("{b:.2}") } else { "—".to_string() }),
            opt(l.codebook_bits, |k| k.to_string()),
            pct(l.pruned_fraction),
            opt(l.input_zero_fraction, pct),
            opt(l.reconstruction_error, num),
            count(l.macs),
            pct(l.mac_share),
            us(l.latency_us),
            pct(l.latency_share),
            bytes(l.weight_bytes),
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// The codebook bits of a candidate as `4 bit × 3, 8 bit × 1`, the per-layer list in the tooltip.
fn layer_bits(c: &Candidate) -> String {
    if c.layer_bits.is_empty() {
        return "<span class=\"muted\">none</span>".to_string();
    }
    let mut by_bits: BTreeMap<u8, usize> = BTreeMap::new();
    for (_, b) in &c.layer_bits {
        *by_bits.entry(*b).or_default() += 1;
    }
    let summary = by_bits.iter().map(|(b, n)| format!("{b} bit × {n}")).collect::<Vec<_>>().join(", ");
    let detail = c.layer_bits.iter().map(|(l, b)| format!("{}: {b}", escape(l))).collect::<Vec<_>>().join("&#10;");
    format!("<span title=\"{detail}\">{summary}</span>")
}

fn write_candidate_table(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    writeln!(out, "<h2>Candidates explored</h2>\n<table class=\"candidates\">")?;
    writeln!(
        out,
        "<thead><tr><th>#</th><th>MACs kept</th><th>codebook layers</th><th>flash</th><th>.sprig file</th><th>RAM</th><th>MACs</th><th>predicted error</th>\
         <th>measured error</th><th>top-1 agreement</th><th>feasible</th><th>note</th></tr></thead>\n<tbody>"
    )?;
    for (i, c) in rep.explored.iter().enumerate() {
        let class = if rep.chosen == Some(i) { " class=\"chosen\"" } else { "" };
        let feasible = if c.feasible { "<td class=\"yes\">yes</td>" } else { "<td class=\"no\">no</td>" };
        let mut note = c.note.as_deref().map_or_else(String::new, escape);
        if rep.chosen == Some(i) {
            note = if note.is_empty() { "chosen".to_string() } else { format!("chosen; {note}") };
        }
        writeln!(
            out,
            "<tr data-candidate=\"{i}\"{class}><td class=\"num\">{i}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{feasible}<td>{note}</td></tr>",
            pct(c.macs_kept),
            layer_bits(c),
            bytes(c.flash),
            if c.file > 0 { bytes(c.file) } else { "—".to_string() },
            bytes(c.ram),
            count(c.macs),
            num(c.predicted_error),
            opt(c.measured_error, num),
            opt(c.top1_agreement, pct),
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// A linear axis over `[lo, hi]` (`hi > lo`, both finite) with ticks every `step`.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// An axis covering `[lo, hi]` with about `ticks` round ticks, its ends on ticks, never below
    /// `floor`. A single value gets a range around it.
    fn new(lo: f64, hi: f64, ticks: f64, floor: f64) -> Axis {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi { (lo, hi) } else { (floor, floor + 1.0) };
        if hi - lo <= hi.abs() * 1e-9 {
            let pad = if hi != 0.0 { hi.abs() * 0.05 } else { 1.0 };
            lo -= pad;
            hi += pad;
        }
        lo = lo.max(floor);
        let step = nice_step((hi - lo) / ticks);
        let lo = ((lo / step).floor() * step).max(floor);
        let mut hi = (hi / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
        Axis { lo, hi, step }
    }

    /// Where `v` falls on the axis, in `[0, 1]`.
    fn at(&self, v: f64) -> f64 {
        fraction_of(v - self.lo, self.hi - self.lo)
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round().clamp(0.0, 50.0) as usize;
        (0..=n).map(|i| self.lo + self.step * i as f64).collect()
    }

    /// A tick value with as many decimals as the step needs.
    fn label(&self, v: f64) -> String {
        let decimals = if self.step >= 1.0 { 0 } else { (-self.step.log10().floor()).clamp(0.0, 9.0) as usize };
        format!("{v:.decimals$}")
    }
}

/// The step of 1, 2 or 5 times a power of ten nearest `raw` (1 when `raw` is not a positive
/// finite number).
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let e = raw.log10().floor() as i32;
    let f = raw / 10f64.powi(e);
    let m = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    if e >= 0 {
        m * 10f64.powi(e)
    } else {
        m / 10f64.powi(-e)
    }
}

fn kib(b: u64) -> f64 {
    b as f64 / 1024.0
}

fn write_curve(out: &mut String, rep: &BudgetReport) -> fmt::Result {
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 20.0;
    const LEGEND_ROW: f64 = 18.0;
    const LEGEND_ENTRY_W: f64 = 200.0;
    const BOTTOM: f64 = 44.0;

    writeln!(out, "<h2>Error vs flash</h2>")?;
    let frontier: Vec<&FrontierPoint> = rep.frontier.iter().filter(|p| p.predicted_error.is_finite()).collect();
    let explored: Vec<(usize, &Candidate, f64)> =
        rep.explored.iter().enumerate().filter_map(|(i, c)| finite(c.measured_error).map(|e| (i, c, e))).collect();
    let hidden =
        rep.frontier.len() - frontier.len() + rep.explored.iter().filter(|c| c.measured_error.is_some_and(|e| !e.is_finite())).count();
    if frontier.is_empty() && explored.is_empty() {
        return writeln!(
            out,
            "<p class=\"no-points\">No points: the search recorded no error-vs-flash curve and built no candidate with a finite measured error.</p>"
        );
    }

    let budget_flash = rep.budget.flash;
    let budget_error = finite(rep.budget.max_error);
    let flashes = frontier.iter().map(|p| p.flash).chain(explored.iter().map(|(_, c, _)| c.flash)).chain(budget_flash);
    let (lo, hi) = flashes.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| (lo.min(kib(b)), hi.max(kib(b))));
    let x = Axis::new(lo, hi, 8.0, 0.0);
    let errors = frontier.iter().map(|p| p.predicted_error).chain(explored.iter().map(|e| e.2)).chain(budget_error);
    let y = Axis::new(0.0, errors.fold(0.0, f64::max), 5.0, 0.0);

    // Frontier series: one per distinct `macs_kept`, in order of first appearance.
    let mut series: Vec<(u64, f64, Vec<&FrontierPoint>)> = Vec::new();
    for &p in &frontier {
        match series.iter_mut().find(|s| s.0 == p.macs_kept.to_bits()) {
            Some(s) => s.2.push(p),
            None => series.push((p.macs_kept.to_bits(), p.macs_kept, vec![p])),
        }
    }
    let mut legend: Vec<(String, String)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("<line class=\"s{}\" x1=\"0\" y1=\"-4\" x2=\"18\" y2=\"-4\" stroke-width=\"2\"/>", i % SERIES_CLASSES),
                format!("predicted, MACs kept {}", pct(s.1)),
            )
        })
        .collect();
    if explored.iter().any(|e| e.1.feasible) {
        legend.push(("<circle class=\"swatch feasible\" cx=\"9\" cy=\"-4\" r=\"4\"/>".to_string(), "measured, feasible".to_string()));
    }
    if explored.iter().any(|e| !e.1.feasible) {
        legend.push(("<circle class=\"swatch infeasible\" cx=\"9\" cy=\"-4\" r=\"4\"/>".to_string(), "measured, not feasible".to_string()));
    }
    let per_row = ((CURVE_W - LEFT) / LEGEND_ENTRY_W).floor().max(1.0) as usize;
    let top = 12.0 + LEGEND_ROW * legend.len().div_ceil(per_row) as f64;
    let plot_w = CURVE_W - LEFT - RIGHT;
    let base = top + CURVE_PLOT_H;
    let height = base + BOTTOM;
    let cx = |b: u64| px(LEFT + plot_w * x.at(kib(b)));
    let cy = |e: f64| px(base - CURVE_PLOT_H * y.at(e));

    writeln!(
        out,
        "<svg class=\"chart chart-curve\" width=\"{CURVE_W}\" height=\"{height}\" viewBox=\"0 0 {CURVE_W} {height}\" role=\"img\" aria-label=\"error versus flash\">"
    )?;
    for (i, (swatch, text)) in legend.iter().enumerate() {
        let lx = LEFT + LEGEND_ENTRY_W * (i % per_row) as f64;
        let ly = 14.0 + LEGEND_ROW * (i / per_row) as f64;
        writeln!(out, "<g transform=\"translate({lx:.1},{ly:.1})\">{swatch}<text x=\"24\" y=\"0\">{}</text></g>", escape(text))?;
    }
    for t in x.ticks() {
        let tx = px(LEFT + plot_w * x.at(t));
        writeln!(out, "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{top:.1}\" x2=\"{tx:.1}\" y2=\"{base:.1}\"/>")?;
        writeln!(out, "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", base + 14.0, x.label(t))?;
    }
    for t in y.ticks() {
        let ty = px(base - CURVE_PLOT_H * y.at(t));
        writeln!(out, "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\"/>", LEFT + plot_w)?;
        writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", LEFT - 6.0, ty + 4.0, y.label(t))?;
    }
    writeln!(out, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{top:.1}\" x2=\"{LEFT}\" y2=\"{base:.1}\"/>")?;
    writeln!(out, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\"/>", LEFT + plot_w)?;
    writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">flash (KiB)</text>", LEFT + plot_w / 2.0, base + 34.0)?;
    writeln!(
        out,
        "<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">error</text>",
        top + CURVE_PLOT_H / 2.0,
        top + CURVE_PLOT_H / 2.0
    )?;

    if let Some(b) = budget_flash {
        let bx = cx(b);
        writeln!(
            out,
            "<line class=\"budget budget-flash\" x1=\"{bx:.1}\" y1=\"{top:.1}\" x2=\"{bx:.1}\" y2=\"{base:.1}\" data-flash=\"{b}\"><title>flash budget: {b} bytes</title></line>"
        )?;
        writeln!(
            out,
            "<text class=\"budget-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">flash budget {:.1} KiB</text>",
            bx - 4.0,
            top + 12.0,
            kib(b)
        )?;
    }
    if let Some(e) = budget_error {
        let by = cy(e);
        writeln!(out, "<line class=\"budget budget-error\" x1=\"{LEFT}\" y1=\"{by:.1}\" x2=\"{:.1}\" y2=\"{by:.1}\"/>", LEFT + plot_w)?;
        writeln!(
            out,
            "<text class=\"budget-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">error budget {}</text>",
            LEFT + plot_w - 4.0,
            by - 4.0,
            num(e)
        )?;
    }

    for (i, (_, _, points)) in series.iter().enumerate() {
        let mut sorted = points.clone();
        sorted.sort_by_key(|p| p.flash);
        let coords = sorted.iter().map(|p| format!("{:.1},{:.1}", cx(p.flash), cy(p.predicted_error))).collect::<Vec<_>>().join(" ");
        writeln!(out, "<polyline class=\"s{}\" points=\"{coords}\"/>", i % SERIES_CLASSES)?;
    }
    for p in &frontier {
        let s = series.iter().position(|s| s.0 == p.macs_kept.to_bits()).unwrap_or(0) % SERIES_CLASSES;
        writeln!(
            out,
            "<circle class=\"frontier s{s}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" data-flash=\"{}\" data-error=\"{}\"><title>predicted {} at {:.1} KiB, MACs kept {}</title></circle>",
            cx(p.flash),
            cy(p.predicted_error),
            p.flash,
            p.predicted_error,
            num(p.predicted_error),
            kib(p.flash),
            pct(p.macs_kept)
        )?;
    }
    for &(i, c, e) in &explored {
        let feasible = if c.feasible { "feasible" } else { "infeasible" };
        let is_chosen = rep.chosen == Some(i);
        let (extra, r) = if is_chosen { (" chosen", 7.0) } else { ("", 4.0) };
        let note = c.note.as_deref().map_or_else(String::new, |n| format!(" ({})", escape(n)));
        writeln!(
            out,
            "<circle class=\"explored {feasible}{extra}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" data-candidate=\"{i}\" data-flash=\"{}\" data-error=\"{e}\" data-feasible=\"{}\">\
             <title>candidate #{i}: measured {} at {:.1} KiB, MACs kept {}, {feasible}{note}</title></circle>",
            cx(c.flash),
            cy(e),
            c.flash,
            c.feasible,
            num(e),
            kib(c.flash),
            pct(c.macs_kept),
        )?;
        if is_chosen {
            writeln!(
                out,
                "<text class=\"chosen-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">chosen #{i}</text>",
                cx(c.flash) - 10.0,
                cy(e) - 8.0
            )?;
        }
    }
    writeln!(out, "</svg>")?;
    write!(
        out,
        "<p class=\"muted\">Lines: the per-layer allocation's predicted error (sum of layer reconstruction errors), one line per pruning level. \
         Dots: the measured relative output error on the calibration data of each candidate built."
    )?;
    if hidden > 0 {
        write!(out, " {hidden} point(s) with a non-finite error are not drawn.")?;
    }
    writeln!(out, "</p>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::report::{Budget, Fidelity, Limits};

    fn layer(name: &str, op: &str, weights: bool) -> LayerRow {
        LayerRow {
            name: name.to_string(),
            op: op.to_string(),
            kernel: if weights { "codebook-4" } else { "elementwise" }.to_string(),
            params: if weights { 1200 } else { 0 },
            params_dense: if weights { 1600 } else { 0 },
            bits_per_weight: weights.then_some(4.25),
            codebook_bits: weights.then_some(4),
            pruned_fraction: if weights { 0.25 } else { 0.0 },
            input_zero_fraction: Some(0.5),
            reconstruction_error: weights.then_some(0.0125),
            macs: if weights { 48_000 } else { 1000 },
            mac_share: if weights { 0.48 } else { 0.01 },
            latency_us: 12.5,
            latency_share: 0.3,
            weight_bytes: if weights { 700 } else { 0 },
        }
    }

    fn side(flash: u64) -> Side {
        Side {
            file_bytes: flash - 4096,
            flash,
            ram: 20_480,
            arena: 16_384,
            macs: 100_000,
            params: 4000,
            latency_us_predicted: None,
            latency_us_measured: 41.5,
            accuracy: Some(0.975),
            vs_onnx: Fidelity { samples: 100, relative_error: 0.0, max_abs_error: 1e-6, top1_agreement: 1.0 },
        }
    }

    fn candidate(macs_kept: f64, flash: u64, measured: Option<f64>, feasible: bool) -> Candidate {
        Candidate {
            macs_kept,
            layer_bits: vec![("conv<&\">1".to_string(), 4), ("fc".to_string(), 8)],
            flash,
            file: flash - 4096,
            ram: 20_480,
            macs: (100_000.0 * macs_kept) as u64,
            predicted_error: 0.05,
            measured_error: measured,
            top1_agreement: measured.map(|_| 0.99),
            feasible,
            note: (!feasible).then(|| "flash > budget <limit>".to_string()),
        }
    }

    /// Met: four layers (one without weights, one with a NaN reconstruction error and no
    /// codebook), candidates on two pruning levels, the chosen one feasible.
    fn report() -> BudgetReport {
        let mut fc = layer("fc", "Dense", true);
        fc.reconstruction_error = Some(f64::NAN);
        fc.codebook_bits = None;
        fc.bits_per_weight = Some(32.0);
        fc.mac_share = 0.1;
        let mut conv2 = layer("conv2", "Conv", true);
        conv2.params = 800;
        conv2.input_zero_fraction = Some(0.0625);
        conv2.reconstruction_error = Some(0.2);
        BudgetReport {
            model: "models/tiny <v2>.onnx".to_string(),
            output: "out/tiny&small.sprig".to_string(),
            target: "thumbv7em-none-eabihf".to_string(),
            budget: Budget { flash: Some(64 * 1024), ram: Some(32 * 1024), macs: None, file: None, max_error: Some(0.05) },
            met: true,
            calib_samples: 64,
            eval_on: "eval data, 100 samples".to_string(),
            before: side(200_000),
            after: Some(Side { latency_us_predicted: Some(20.0), ..side(60_000) }),
            layers: vec![layer("conv<&\">1", "Conv", true), layer("relu/add", "Add", false), conv2, fc],
            explored: vec![
                candidate(1.0, 90_000, Some(0.01), false),
                candidate(1.0, 60_000, Some(0.03), true),
                candidate(0.75, 50_000, Some(0.04), true),
                candidate(0.5, 40_000, None, false),
            ],
            chosen: Some(1),
            frontier: vec![
                FrontierPoint { macs_kept: 1.0, flash: 90_000, predicted_error: 0.01 },
                FrontierPoint { macs_kept: 1.0, flash: 60_000, predicted_error: 0.02 },
                FrontierPoint { macs_kept: 0.75, flash: 50_000, predicted_error: 0.04 },
                FrontierPoint { macs_kept: 0.75, flash: 45_000, predicted_error: f64::NAN },
            ],
            limits: None,
            seconds: 12.25,
        }
    }

    fn not_met() -> BudgetReport {
        BudgetReport {
            met: false,
            after: None,
            chosen: None,
            frontier: vec![],
            explored: vec![candidate(0.5, 40_000, None, false)],
            limits: Some(Limits {
                min_flash: 40_000,
                flash_parts: vec![("weights of <conv1>".to_string(), 30_000), ("runtime code".to_string(), 10_000)],
                min_file: 0,
                min_ram: 20_480,
                ram_parts: vec![("arena".to_string(), 16_384)],
                min_macs: 50_000,
                min_error: None,
                reasons: vec!["flash: smallest 39.1 KiB > budget 32.0 KiB (weights & code)".to_string()],
            }),
            budget: Budget { flash: Some(32 * 1024), ..Budget::default() },
            ..report()
        }
    }

    /// The text of the chart `<svg class="chart chart-{key}">`, which must occur exactly once.
    fn chart<'a>(html: &'a str, key: &str) -> &'a str {
        let open = format!("<svg class=\"chart chart-{key}\"");
        assert_eq!(html.matches(&open).count(), 1, "{key}");
        let start = html.find(&open).unwrap();
        let end = start + html[start..].find("</svg>").unwrap();
        &html[start..end]
    }

    /// The value of attribute `name` in the tag starting at `tag`.
    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let tag = &tag[..tag.find('>').unwrap()];
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(&tag[start..start + tag[start..].find('"').unwrap()])
    }

    /// `(data-layer, data-value)` of every bar of a chart, in order.
    fn bars(html: &str, key: &str) -> Vec<(String, String)> {
        let svg = chart(html, key);
        svg.match_indices("<rect ")
            .filter_map(|(i, _)| Some((attr(&svg[i..], "data-layer")?.to_string(), attr(&svg[i..], "data-value")?.to_string())))
            .collect()
    }

    /// What each chart should hold, computed from the fields directly.
    fn expected(rep: &BudgetReport, key: &str) -> Vec<(String, String)> {
        let l = &rep.layers;
        let named = |f: &dyn Fn(&LayerRow) -> Option<String>| l.iter().filter_map(|l| Some((escape(&l.name), f(l)?))).collect();
        let real = |v: Option<f64>| v.filter(|v| v.is_finite()).map(|v| v.to_string());
        match key {
            "params" => named(&|l| (l.params_dense > 0 || l.params > 0).then(|| l.params.to_string())),
            "bits" => named(&|l| real(l.bits_per_weight)),
            "pruned" => named(&|l| (l.params_dense > 0 || l.params > 0).then(|| l.pruned_fraction.to_string())),
            "zeros" => named(&|l| real(l.input_zero_fraction)),
            "recon" => named(&|l| real(l.reconstruction_error)),
            "macs" => named(&|l| Some(l.mac_share.to_string())),
            "latency" => named(&|l| Some(l.latency_share.to_string())),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_chart_has_one_bar_per_layer_with_a_value_carrying_its_display() {
        for rep in [report(), not_met()] {
            let html = render(&rep);
            for key in LAYER_CHARTS {
                assert_eq!(bars(&html, key), expected(&rep, key), "{key}");
            }
            assert_eq!(html.matches("data-value=").count(), html.matches("<rect class=\"bar\"").count());
            assert_eq!(html.matches("<svg class=\"chart chart-").count(), LAYER_CHARTS.len() + usize::from(!rep.frontier.is_empty()));
        }
        let html = render(&report());
        let counts: Vec<usize> = LAYER_CHARTS.iter().map(|k| bars(&html, k).len()).collect();
        assert_eq!(counts, [3, 3, 3, 4, 2, 4, 4], "{LAYER_CHARTS:?}");
        assert!(chart(&html, "params").contains("data-value=\"800\" data-dense=\"1600\""));
        assert!(chart(&html, "recon").contains("data-value=\"0.0125\""));
        assert!(chart(&html, "zeros").contains("data-value=\"0.0625\""));
    }

    #[test]
    fn a_chart_without_values_is_still_drawn_and_says_so() {
        let rep = BudgetReport { layers: vec![layer("add", "Add", false)], ..report() };
        let html = render(&rep);
        for key in ["params", "bits", "pruned", "recon"] {
            assert!(bars(&html, key).is_empty(), "{key}");
            assert!(chart(&html, key).contains("no layer has this value"), "{key}");
        }
        assert_eq!(bars(&html, "macs").len(), 1);
    }

    #[test]
    fn report_strings_are_escaped() {
        for rep in [report(), not_met()] {
            let html = render(&rep);
            assert!(!html.contains("<&\">"), "raw name");
            assert!(!html.contains("<v2>") && !html.contains("<limit>") && !html.contains("<conv1>"));
            assert!(html.contains("data-layer=\"conv&lt;&amp;&quot;&gt;1\""));
            assert!(html.contains("models/tiny &lt;v2&gt;.onnx"));
        }
        assert!(render(&report()).contains("out/tiny&amp;small.sprig"));
    }

    #[test]
    fn output_is_self_contained() {
        for rep in [report(), not_met()] {
            let html = render(&rep);
            assert!(html.starts_with("<!DOCTYPE html>"));
            for forbidden in ["<script", "http://", "https://", "<link", "@import", "url(", "<img", "<iframe", "<object", "<embed"] {
                assert!(!html.contains(forbidden), "{forbidden}");
            }
            assert!(!html.split_whitespace().any(|w| w.starts_with("on") && w.contains('=')), "event handler attribute");
        }
    }

    #[test]
    fn non_finite_values_reach_no_attribute() {
        let mut rep = report();
        rep.layers[1].mac_share = f64::INFINITY;
        rep.layers[0].latency_share = f64::NAN;
        rep.explored[0].measured_error = Some(f64::NEG_INFINITY);
        rep.budget.max_error = Some(f64::NAN);
        rep.seconds = f64::NAN;
        let html = render(&rep);
        assert!(!html.contains("NaN") && !html.contains("inf\"") && !html.contains("inf,") && !html.contains("inf "), "{html}");
        assert_eq!(bars(&html, "macs").len(), 3);
        assert_eq!(bars(&html, "latency").len(), 3);
        assert!(html.contains("2 point(s) with a non-finite error are not drawn"));
    }

    #[test]
    fn a_file_budget_has_its_row_and_every_candidate_its_file() {
        let mut rep = report();
        rep.budget.file = Some(90_000);
        let html = render(&rep);
        let table =
            |class: &str| html.split(&format!("<table class=\"{class}\">")).nth(1).and_then(|t| t.split("</table>").next()).unwrap();
        let row = table("budget").split("<tr>").find(|r| r.contains(".sprig file")).expect("a .sprig file row");
        let file = rep.after.as_ref().unwrap().file_bytes;
        assert!(row.contains(&bytes(90_000)) && row.contains(&bytes(file)), "{row}");
        assert!(row.contains(if file <= 90_000 { "class=\"yes\"" } else { "class=\"no\"" }), "{row}");
        for (i, c) in rep.explored.iter().enumerate() {
            let r = table("candidates").split("<tr").find(|r| r.contains(&format!("data-candidate=\"{i}\""))).unwrap();
            assert!(r.contains(&bytes(c.file)), "candidate {i}: {r}");
        }
    }

    #[test]
    fn curve_marks_the_chosen_candidate_and_the_flash_budget() {
        let html = render(&report());
        let curve = chart(&html, "curve");
        assert_eq!(curve.matches("<circle class=\"frontier ").count(), 3, "NaN frontier point skipped");
        assert_eq!(curve.matches("<circle class=\"explored ").count(), 3, "candidate without measured error skipped");
        assert_eq!(curve.matches("<polyline ").count(), 2, "one line per macs_kept");
        assert_eq!(curve.matches(" chosen\"").count(), 1);
        let chosen = &curve[curve.find("<circle class=\"explored feasible chosen\"").unwrap()..];
        assert_eq!(attr(chosen, "data-candidate"), Some("1"));
        assert_eq!(attr(chosen, "data-flash"), Some("60000"));
        assert_eq!(attr(chosen, "data-error"), Some("0.03"));
        assert!(curve.contains("chosen #1"));
        assert!(curve.contains("data-feasible=\"false\""));
        assert!(curve.contains("class=\"budget budget-flash\"") && curve.contains("data-flash=\"65536\""));
        assert!(curve.contains("flash budget 64.0 KiB"));
        assert!(curve.contains("flash (KiB)"));
        assert!(curve.contains(">0.05<"), "error tick at the error budget");
        assert_eq!(html.matches("<tr data-candidate=").count(), 4);
        assert_eq!(html.matches("<tr data-candidate=\"1\" class=\"chosen\">").count(), 1);
        assert_eq!(html.matches("class=\"chosen\"").count(), 1);
    }

    #[test]
    fn an_empty_search_says_no_points_instead_of_a_chart() {
        let rep = BudgetReport { frontier: vec![], explored: vec![], chosen: None, ..report() };
        let html = render(&rep);
        assert!(!html.contains("<svg class=\"chart chart-curve\""));
        assert!(html.contains("<p class=\"no-points\">"));
        assert_eq!(html.matches("<tr data-candidate=").count(), 0);
        let one =
            BudgetReport { frontier: vec![FrontierPoint { macs_kept: 1.0, flash: 1000, predicted_error: 0.0 }], explored: vec![], ..rep };
        let html = render(&BudgetReport { budget: Budget::default(), ..one });
        assert_eq!(chart(&html, "curve").matches("<circle class=\"frontier ").count(), 1, "a single point still gets axes");
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn not_met_page_shows_the_limits() {
        let html = render(&not_met());
        assert!(html.contains("Budget not met"));
        assert!(html.contains("Why the budget was not met"));
        assert!(html.contains("flash: smallest 39.1 KiB &gt; budget 32.0 KiB (weights &amp; code)"));
        assert!(html.contains("weights of &lt;conv1&gt;: <span title=\"30000 bytes\">29.3 KiB</span>"));
        assert!(html.contains("<span title=\"40000 bytes\">39.1 KiB</span>"));
        assert!(html.contains("<span title=\"50000\">50.0k</span>"));
        assert!(html.contains("No configuration was chosen."));
        assert!(html.contains("<p class=\"no-points\">"));
        assert!(!html.contains("class=\"chosen\""));
        let met = render(&report());
        assert!(met.contains("Budget met") && !met.contains("not met"));
    }

    #[test]
    fn summary_figures_come_from_the_report() {
        let html = render(&report());
        assert!(html.contains("<span title=\"200000 bytes\">195.3 KiB</span>"));
        assert!(html.contains("<span title=\"60000 bytes\">58.6 KiB</span>"));
        assert!(html.contains("−70.0 %"), "flash change");
        assert!(html.contains("20.0 µs") && html.contains("41.5 µs"));
        assert!(html.contains("97.5 %"), "accuracy");
        assert!(html.contains("1.00e-6"), "max abs error");
        assert!(html.contains("eval data, 100 samples"));
        assert!(html.contains("thumbv7em-none-eabihf"));
        assert!(html.contains("12.2 s") || html.contains("12.3 s"));
        assert!(html.contains("<td class=\"yes\">yes</td>"));
        assert!(html.contains("4 bit × 1, 8 bit × 1"));
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(bytes(1536), "<span title=\"1536 bytes\">1.5 KiB</span>");
        assert_eq!(si(999), "999");
        assert_eq!(si(12_345), "12.3k");
        assert_eq!(si(2_500_000), "2.50M");
        assert_eq!(si(999_999), "1.00M");
        assert_eq!(si(3_000_000_000), "3.00G");
        assert_eq!(pct(0.4375), "43.8 %");
        assert_eq!(pct(f64::NAN), "—");
        assert_eq!(us(12.345), "12.3 µs");
        assert_eq!(change(200.0, 50.0), "−75.0 %");
        assert_eq!(change(0.0, 50.0), "—");
        assert_eq!(nice_step(0.013), 0.01);
        assert_eq!(nice_step(0.017), 0.02);
        assert_eq!(nice_step(4.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        let a = Axis::new(37.0, 88.0, 5.0, 0.0);
        assert_eq!((a.lo, a.hi, a.step), (30.0, 90.0, 10.0));
        let a = Axis::new(0.0, 0.043, 5.0, 0.0);
        assert_eq!(a.ticks().iter().map(|&t| a.label(t)).collect::<Vec<_>>(), ["0.00", "0.01", "0.02", "0.03", "0.04", "0.05"]);
        let a = Axis::new(5.0, 5.0, 5.0, 0.0);
        assert!(a.lo < 5.0 && a.hi > 5.0);
    }
}
