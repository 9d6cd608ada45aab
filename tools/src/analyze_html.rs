//! HTML rendering of an [`ActivationReport`]: the activation-sparsity report as one page.
//!
//! Guarantees of [`render`]'s output:
//! - one self-contained HTML5 document: inline CSS and inline SVG only, no script, no external
//!   stylesheet, font, image or link to any network address;
//! - every string taken from the report is HTML-escaped, so node and tensor names cannot inject
//!   markup;
//! - every number shown is formatted from the report, nothing is hard-coded;
//! - exactly one `<svg class="chart layer-chart">` with one bar per layer, and per layer (in report
//!   order, index `N`) one `<section id="layer-N">` holding one `<svg class="chart channel-chart">`
//!   with one bar per entry of `channel_zero_fraction`, however many channels there are;
//! - every bar, and nothing else, carries `data-zero-fraction` with the exact value it draws.

use crate::analyze::{ActivationReport, ConsumerReport, LayerReport};
use std::fmt::{self, Write};

/// Width of every chart's coordinate system, in CSS pixels.
const CHART_WIDTH: f64 = 800.0;

/// Layer names longer than this many characters are shortened in the layer chart (the full name
/// stays in the bar's tooltip and in the table).
const LABEL_CHARS: usize = 36;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#1a202c}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.summary dt{font-weight:600}dl.summary dd{margin:0}
table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border:1px solid #cbd5e0;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#edf2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
td ul{margin:0;padding-left:1em}
code{font-size:.95em;word-break:break-all}
.chart{max-width:100%;height:auto;display:block;margin:.5em 0}
.chart text{font-size:11px;fill:#2d3748}
.chart .axis{stroke:#718096;stroke-width:1}
.relu{fill:#2b6cb0}.other{fill:#dd6b20}.chan{fill:#4299e1}.dead{fill:#c53030}
.muted{color:#718096}
";

/// Renders the report as one self-contained HTML5 document (see the module docs for what the
/// output guarantees).
pub fn render(rep: &ActivationReport) -> String {
    let mut out = String::new();
    write_document(&mut out, rep).expect("writing to a String cannot fail");
    out
}

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe in text and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A fraction as a percentage with one decimal (`0.4375` → `43.8 %`); `—` when not finite.
fn pct(f: f64) -> String {
    if f.is_finite() {
        format!("{:.1} %", f * 100.0)
    } else {
        "—".to_string()
    }
}

/// A speedup as `2.31x`; `—` when absent or not finite.
fn speedup(s: Option<f64>) -> String {
    match s {
        Some(s) if s.is_finite() => format!("{s:.2}x"),
        _ => "—".to_string(),
    }
}

/// A magnitude with about three significant decimals, scientific when very large or small.
fn num(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// The bar length for a fraction: clamped to `[0, 1]`, zero when not finite.
fn bar_fraction(f: f64) -> f64 {
    if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// `P(|a| <= 0.01)` from the near-zero curve, if the curve has that threshold.
fn near_zero_at_001(l: &LayerReport) -> Option<f64> {
    l.near_zero.iter().find(|(t, _)| (t - 0.01).abs() < 1e-9).map(|&(_, f)| f)
}

fn shorten(s: &str) -> String {
    if s.chars().count() > LABEL_CHARS {
        let mut short: String = s.chars().take(LABEL_CHARS - 1).collect();
        short.push('…');
        short
    } else {
        s.to_string()
    }
}

fn write_document(out: &mut String, rep: &ActivationReport) -> fmt::Result {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")?;
    writeln!(out, "<title>Activation sparsity — {}</title>", escape(&rep.model))?;
    writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>")?;
    write_header(out, rep)?;
    write_layer_chart(out, rep)?;
    write_table(out, rep)?;
    for (i, l) in rep.layers.iter().enumerate() {
        write_layer_section(out, i, l)?;
    }
    writeln!(out, "</body>\n</html>")
}

fn write_header(out: &mut String, rep: &ActivationReport) -> fmt::Result {
    writeln!(out, "<h1>Activation sparsity</h1>\n<dl class=\"summary\">")?;
    writeln!(out, "<dt>Model</dt><dd><code>{}</code></dd>", escape(&rep.model))?;
    writeln!(out, "<dt>Calibration samples</dt><dd>{}</dd>", rep.samples)?;
    match &rep.target {
        Some(t) => writeln!(out, "<dt>Cost table</dt><dd>{}</dd>", escape(t))?,
        None => writeln!(out, "<dt>Cost table</dt><dd>no measured cost table for this machine</dd>")?,
    }
    writeln!(
        out,
        "<dt>Overall zero fraction</dt><dd>{} <span class=\"muted\">(all ReLU-family elements)</span></dd>",
        pct(rep.overall_zero_fraction)
    )?;
    writeln!(
        out,
        "<dt>Mean layer zero fraction</dt><dd>{} <span class=\"muted\">(mean over ReLU-family layers)</span></dd>",
        pct(rep.mean_layer_zero_fraction)
    )?;
    writeln!(out, "<dt>Layers</dt><dd>{}</dd>\n</dl>", rep.layers.len())
}

fn write_layer_chart(out: &mut String, rep: &ActivationReport) -> fmt::Result {
    const LEGEND_H: f64 = 24.0;
    const ROW_H: f64 = 20.0;
    const BAR_H: f64 = 14.0;
    const LABEL_W: f64 = 260.0;
    const PCT_W: f64 = 60.0;
    let bar_w = CHART_WIDTH - LABEL_W - PCT_W;
    let height = LEGEND_H + ROW_H * rep.layers.len() as f64 + 4.0;

    writeln!(out, "<h2>Zero fraction per layer</h2>")?;
    writeln!(
        out,
        "<svg class=\"chart layer-chart\" width=\"{CHART_WIDTH}\" height=\"{height}\" viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\" aria-label=\"zero fraction per layer\">"
    )?;
    writeln!(
        out,
        "<rect class=\"relu\" x=\"0\" y=\"4\" width=\"12\" height=\"12\"/><text x=\"18\" y=\"14\">ReLU family (exact zeros)</text>"
    )?;
    writeln!(
        out,
        "<rect class=\"other\" x=\"200\" y=\"4\" width=\"12\" height=\"12\"/><text x=\"218\" y=\"14\">other activation (exact zeros; not a ReLU)</text>"
    )?;
    for (i, l) in rep.layers.iter().enumerate() {
        let y = LEGEND_H + ROW_H * i as f64;
        let w = bar_w * bar_fraction(l.zero_fraction);
        let class = if l.relu_family { "relu" } else { "other" };
        let text_y = y + BAR_H - 3.0;
        writeln!(
            out,
            "<g><title>{} ({}): {} zero</title><text x=\"{:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar {class}\" x=\"{LABEL_W}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{BAR_H}\" data-zero-fraction=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{text_y:.1}\">{}</text></g>",
            escape(&l.node),
            escape(&l.op),
            pct(l.zero_fraction),
            LABEL_W - 6.0,
            escape(&shorten(&l.node)),
            l.zero_fraction,
            LABEL_W + w + 4.0,
            pct(l.zero_fraction),
        )?;
    }
    writeln!(out, "<line class=\"axis\" x1=\"{LABEL_W}\" y1=\"{LEGEND_H}\" x2=\"{LABEL_W}\" y2=\"{:.1}\"/>", height - 4.0)?;
    writeln!(out, "</svg>")
}

fn write_consumers(out: &mut String, consumers: &[ConsumerReport]) -> fmt::Result {
    if consumers.is_empty() {
        return write!(out, "<span class=\"muted\">—</span>");
    }
    write!(out, "<ul>")?;
    for c in consumers {
        write!(out, "<li><code>{}</code> ({}) {} · {}", escape(&c.node), escape(&c.op), escape(&c.kernel), speedup(c.predicted_speedup))?;
        if let Some(w) = c.window_zero_fraction {
            write!(out, " · all-zero windows {}", pct(w))?;
        }
        write!(out, "</li>")?;
    }
    write!(out, "</ul>")
}

fn write_table(out: &mut String, rep: &ActivationReport) -> fmt::Result {
    writeln!(out, "<h2>Layers</h2>\n<table>")?;
    writeln!(
        out,
        "<thead><tr><th>node</th><th>op</th><th>output tensor</th><th>shape</th><th>zero</th><th>≤ 0 (ReLU swap)</th>\
         <th>dead / channels</th><th>always active</th><th>|a| ≤ 0.01</th><th>predicted speedup</th>\
         <th>consumers (node, kernel, speedup, all-zero windows)</th></tr></thead>\n<tbody>"
    )?;
    for (i, l) in rep.layers.iter().enumerate() {
        let shape = l.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
        let near = near_zero_at_001(l).map_or_else(|| "—".to_string(), pct);
        write!(
            out,
            "<tr><td><a href=\"#layer-{i}\"><code>{}</code></a></td><td>{}</td><td><code>{}</code></td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>",
            escape(&l.node),
            escape(&l.op),
            escape(&l.output),
            shape,
            pct(l.zero_fraction),
            pct(l.relu_swap_zero_fraction),
            l.dead_channels.len(),
            l.channels,
            l.always_active_channels.len(),
            near,
            speedup(l.predicted_speedup),
        )?;
        write_consumers(out, &l.consumers)?;
        writeln!(out, "</td></tr>")?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_layer_section(out: &mut String, index: usize, l: &LayerReport) -> fmt::Result {
    const TOP: f64 = 28.0;
    const PLOT_H: f64 = 160.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 16.0;
    const BOTTOM: f64 = 20.0;
    let plot_w = CHART_WIDTH - LEFT - RIGHT;
    let height = TOP + PLOT_H + BOTTOM;
    let n = l.channel_zero_fraction.len();
    let slot = if n == 0 { plot_w } else { plot_w / n as f64 };
    let gap = if slot >= 4.0 { 1.0 } else { 0.0 };
    let mut dead = vec![false; n];
    for &c in &l.dead_channels {
        if let Some(d) = dead.get_mut(c) {
            *d = true;
        }
    }

    writeln!(out, "<section id=\"layer-{index}\">")?;
    writeln!(out, "<h2>Layer {index}: <code>{}</code> ({})</h2>", escape(&l.node), escape(&l.op))?;
    writeln!(
        out,
        "<p>Output <code>{}</code>, channel axis {}, {} channels: {} zero overall, {} dead, {} always active.</p>",
        escape(&l.output),
        l.channel_axis,
        l.channels,
        pct(l.zero_fraction),
        l.dead_channels.len(),
        l.always_active_channels.len()
    )?;
    writeln!(
        out,
        "<svg class=\"chart channel-chart\" width=\"{CHART_WIDTH}\" height=\"{height}\" viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\" aria-label=\"zero fraction per channel\">"
    )?;
    writeln!(
        out,
        "<rect class=\"chan\" x=\"{LEFT}\" y=\"6\" width=\"12\" height=\"12\"/><text x=\"{:.1}\" y=\"16\">zero fraction of the channel</text>\
         <rect class=\"dead\" x=\"{:.1}\" y=\"6\" width=\"12\" height=\"12\"/><text x=\"{:.1}\" y=\"16\">dead channel (always zero)</text>",
        LEFT + 18.0,
        LEFT + 220.0,
        LEFT + 238.0
    )?;
    for (c, &z) in l.channel_zero_fraction.iter().enumerate() {
        let h = PLOT_H * bar_fraction(z);
        let x = LEFT + slot * c as f64;
        let class = if dead[c] { "dead" } else { "chan" };
        write!(
            out,
            "<rect class=\"bar {class}\" x=\"{x:.3}\" y=\"{:.2}\" width=\"{:.3}\" height=\"{h:.2}\" data-zero-fraction=\"{z}\">\
             <title>channel {c}: {} zero",
            TOP + PLOT_H - h,
            slot - gap,
            pct(z)
        )?;
        if let Some(m) = l.channel_mean_abs.get(c) {
            write!(out, ", mean |a| {}", num(*m))?;
        }
        if let Some(m) = l.channel_max.get(c) {
            write!(out, ", max {}", num(*m))?;
        }
        writeln!(out, "</title></rect>")?;
    }
    let base = TOP + PLOT_H;
    writeln!(out, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\"/>")?;
    writeln!(out, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\"/>", LEFT + plot_w)?;
    writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">100 %</text>", LEFT - 4.0, TOP + 4.0)?;
    writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0 %</text>", LEFT - 4.0, base + 4.0)?;
    if n > 0 {
        writeln!(out, "<text x=\"{LEFT}\" y=\"{:.1}\">channel 0</text>", base + 14.0)?;
        writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">channel {}</text>", LEFT + plot_w, base + 14.0, n - 1)?;
    } else {
        writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no channels</text>", LEFT + plot_w / 2.0, TOP + PLOT_H / 2.0)?;
    }
    writeln!(out, "</svg>\n</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(node: &str, kernel: &str, window: Option<f64>, speedup: Option<f64>) -> ConsumerReport {
        ConsumerReport {
            node: node.to_string(),
            op: "Conv".to_string(),
            kernel: kernel.to_string(),
            macs: 1000,
            window_zero_fraction: window,
            predicted_speedup: speedup,
        }
    }

    fn layer(node: &str, relu_family: bool, channel_zero_fraction: Vec<f64>, dead_channels: Vec<usize>) -> LayerReport {
        let channels = channel_zero_fraction.len();
        let zero_fraction = channel_zero_fraction.iter().sum::<f64>() / channels.max(1) as f64;
        LayerReport {
            node: node.to_string(),
            op: if relu_family { "Relu" } else { "LeakyRelu" }.to_string(),
            output: format!("{node}_out"),
            relu_family,
            shape: vec![1, channels, 4, 4],
            zero_fraction,
            channel_axis: 1,
            channels,
            channel_mean_abs: vec![0.5; channels],
            channel_max: vec![2.0; channels],
            always_active_channels: channel_zero_fraction.iter().enumerate().filter(|(_, &z)| z == 0.0).map(|(c, _)| c).collect(),
            channel_zero_fraction,
            dead_channels,
            near_zero: vec![(1e-3, 0.2), (1e-2, 0.33), (0.1, 0.6)],
            relu_swap_zero_fraction: 0.5,
            consumers: vec![consumer("conv2", "window", Some(0.081), None), consumer("fc", "input-sparse", None, Some(2.3125))],
            predicted_speedup: Some(2.3125),
        }
    }

    fn report() -> ActivationReport {
        ActivationReport {
            model: "models/tiny <v2>.onnx".to_string(),
            samples: 16,
            target: None,
            overall_zero_fraction: 0.4,
            mean_layer_zero_fraction: 0.375,
            layers: vec![
                layer("relu<&\">1", true, vec![1.0, 0.25, 0.0, 0.5], vec![0]),
                layer("act2", false, vec![0.0, 0.125, 0.0], vec![]),
            ],
        }
    }

    #[test]
    fn one_layer_chart_and_one_channel_chart_per_layer() {
        let rep = report();
        let html = render(&rep);
        assert_eq!(html.matches("class=\"chart layer-chart\"").count(), 1);
        assert_eq!(html.matches("class=\"chart channel-chart\"").count(), rep.layers.len());
        for i in 0..rep.layers.len() {
            assert_eq!(html.matches(&format!("<section id=\"layer-{i}\">")).count(), 1);
        }
    }

    #[test]
    fn one_bar_per_layer_and_per_channel() {
        let rep = report();
        let html = render(&rep);
        let channels: usize = rep.layers.iter().map(|l| l.channel_zero_fraction.len()).sum();
        assert_eq!(html.matches("data-zero-fraction=").count(), rep.layers.len() + channels);
        assert_eq!(html.matches("class=\"bar dead\"").count(), 1);
        assert!(html.contains("data-zero-fraction=\"0.25\""));
    }

    #[test]
    fn wide_layers_draw_every_channel_within_the_chart() {
        let z: Vec<f64> = (0..2048).map(|c| (c % 7) as f64 / 6.0).collect();
        let rep = ActivationReport { layers: vec![layer("wide", true, z, vec![6])], ..report() };
        let html = render(&rep);
        assert_eq!(html.matches("data-zero-fraction=").count(), 1 + 2048);
        assert!(html.contains("channel 2047"));
    }

    #[test]
    fn report_strings_are_escaped() {
        let html = render(&report());
        assert!(html.contains("relu&lt;&amp;&quot;&gt;1"));
        assert!(!html.contains("<&\">"));
        assert!(html.contains("models/tiny &lt;v2&gt;.onnx"));
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn header_and_table_numbers_come_from_the_report() {
        let html = render(&report());
        assert!(html.contains("40.0 %"));
        assert!(html.contains("37.5 %"));
        assert!(html.contains("<dd>16</dd>"));
        assert!(html.contains("no measured cost table for this machine"));
        assert!(html.contains("33.0 %"), "near-zero fraction at t = 0.01");
        assert!(html.contains("2.31x"));
        assert!(html.contains("all-zero windows 8.1 %"), "window zero fraction");
        assert!(html.contains("1 / 4"), "dead / channels");
        let with_target = render(&ActivationReport { target: Some("cortex-m7".to_string()), ..report() });
        assert!(with_target.contains("cortex-m7"));
        assert!(!with_target.contains("no measured cost table"));
    }

    #[test]
    fn output_is_self_contained() {
        let html = render(&report());
        assert!(html.starts_with("<!DOCTYPE html>"));
        for forbidden in ["http://", "https://", "<script src", "<link", "@import", "url("] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
    }
}
