//! The budget report as a browser renders it: headless Chromium parses the page, every chart and
//! every bar matches the JSON report, and a screenshot of the page is not blank.
//!
//! [`check_report_in_chromium`] checks any report written as HTML + JSON (the synthetic ones here,
//! or one written by `sprig compress --budget --report R.html --json R.json`). It skips with a
//! printed message when no Chromium is found, unless `SPRIG_REQUIRE_CHROMIUM=1`.

use serde_json::Value;
use sprig_tools::budget::html::render;
use sprig_tools::budget::report::{Budget, BudgetReport, Candidate, Fidelity, FrontierPoint, LayerRow, Limits, Side};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest a Chromium run may take before it is killed and the test fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// Chromium runs one at a time: two at once on a small machine only make both slow.
static CHROMIUM: Mutex<()> = Mutex::new(());

/// The per-layer charts of the page: the class suffix of the `<svg>`, the `LayerRow` field each
/// bar shows, and whether only layers with weights (`params` or `params_dense` > 0) get a bar.
/// Every other layer gets a bar exactly when the field holds a number in the JSON.
const LAYER_CHARTS: [(&str, &str, bool); 7] = [
    ("params", "params", true),
    ("bits", "bits_per_weight", false),
    ("pruned", "pruned_fraction", true),
    ("zeros", "input_zero_fraction", false),
    ("recon", "reconstruction_error", false),
    ("macs", "mac_share", false),
    ("latency", "latency_share", false),
];

/// What [`check_report_in_chromium`] found, all of it already checked against the JSON.
#[derive(Debug)]
pub struct ChromiumCheck {
    /// Bars over all per-layer charts.
    pub bars: usize,
    /// Frontier points and explored candidates drawn on the error-vs-flash chart.
    pub curve_points: usize,
    /// Fraction of the screenshot's pixels that are not white.
    pub non_white: f64,
    /// Distinct saturated colours covering at least [`MIN_COLOUR_PIXELS`] pixels each.
    pub colours: usize,
}

/// A colour counts as drawn when it covers at least this many screenshot pixels.
pub const MIN_COLOUR_PIXELS: usize = 40;

/// Renders `html` in headless Chromium and checks it against `json` (a serialized
/// `BudgetReport`, read as plain JSON so the check does not share the library's types): every
/// chart present, one bar per layer with a value carrying that exact value, the curve's points,
/// the chosen candidate and the flash budget, the tables, and a screenshot that is not blank and
/// shows several colours. Panics listing every mismatch. `None` (with a printed reason) when no
/// Chromium is found and `SPRIG_REQUIRE_CHROMIUM` is not `1`.
pub fn check_report_in_chromium(html: &Path, json: &Path) -> Option<ChromiumCheck> {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var("SPRIG_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "SPRIG_REQUIRE_CHROMIUM=1 but no Chromium found (chromium, chromium-browser, google-chrome on PATH, or $SPRIG_CHROMIUM)"
        );
        eprintln!("skipping: no Chromium found (chromium, chromium-browser, google-chrome on PATH, or set SPRIG_CHROMIUM)");
        return None;
    };
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).expect("read the JSON report")).expect("parse the JSON report");
    let url = file_url(&html.canonicalize().expect("the HTML report exists"));
    let work = tempfile::tempdir().expect("tempdir");

    let dom_path = work.path().join("dom.html");
    let status = run_chromium(&chromium, &[OsString::from("--dump-dom")], &url, &work.path().join("profile-dom"), &dom_path);
    assert!(status.success(), "{} --dump-dom {url} failed: {status}", chromium.display());
    let dom = std::fs::read_to_string(&dom_path).expect("Chromium's DOM dump is UTF-8");
    let found = match check_dom(&dom, &report) {
        Ok(found) => found,
        Err(problems) => {
            panic!("the page Chromium rendered from {} disagrees with {}:\n- {}", html.display(), json.display(), problems.join("\n- "))
        }
    };

    let png = work.path().join("page.png");
    let args = [format!("--screenshot={}", png.display()), "--window-size=1200,4000".to_string(), "--hide-scrollbars".to_string()];
    let status = run_chromium(&chromium, &args.map(OsString::from), &url, &work.path().join("profile-shot"), &work.path().join("shot.out"));
    assert!(status.success(), "{} --screenshot {url} failed: {status}", chromium.display());
    let (non_white, colours) = screenshot_stats(&png);
    assert!(non_white >= 0.01, "screenshot is nearly blank: {:.3} % of pixels not white", non_white * 100.0);
    assert!(colours >= 4, "screenshot shows {colours} saturated colours (want the bar colours, at least 4)");
    Some(ChromiumCheck { bars: found.bars, curve_points: found.curve_points, non_white, colours })
}

/// `$SPRIG_CHROMIUM`, else the first of the usual Chromium names on `PATH`.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPRIG_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(is_executable(&p), "SPRIG_CHROMIUM={} is not an executable file", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// `file://` URL of an absolute path, every byte outside `[A-Za-z0-9/._~-]` percent-encoded.
fn file_url(p: &Path) -> String {
    let mut url = String::from("file://");
    for &b in p.to_string_lossy().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._~-".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile in `profile`, stdout to
/// `stdout` (stderr, full of harmless dbus / GPU noise, is dropped). Kills Chromium's whole process
/// group and panics after [`CHROMIUM_TIMEOUT`].
fn run_chromium(chromium: &Path, extra: &[OsString], url: &str, profile: &Path, stdout: &Path) -> ExitStatus {
    let _one_at_a_time = CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"])
        .args(["--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).expect("create Chromium's stdout file"))
        .stderr(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", chromium.display()));
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for Chromium") {
            return status;
        }
        if start.elapsed() > CHROMIUM_TIMEOUT {
            kill_group(&mut child);
            panic!("{} {url} did not finish within {CHROMIUM_TIMEOUT:?}; killed", chromium.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills `child` and every process in its group (Chromium's helpers).
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes no pointers; `-pid` names the process group `child` leads, which
        // `process_group(0)` created at spawn.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Fraction of non-white pixels, and the number of distinct saturated colours covering at least
/// [`MIN_COLOUR_PIXELS`] pixels each (text and table rules are grey; bars and points are not).
fn screenshot_stats(path: &Path) -> (f64, usize) {
    let file = File::open(path).unwrap_or_else(|e| panic!("Chromium wrote no screenshot at {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("screenshot is a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("screenshot size fits in memory")];
    let info = reader.next_frame(&mut buf).expect("decode the screenshot");
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    assert!(info.width >= 800 && info.height >= 800, "screenshot is {}x{}", info.width, info.height);
    let mut non_white = 0usize;
    let mut colours: HashMap<[u8; 3], usize> = HashMap::new();
    for px in pixels.chunks_exact(channels) {
        let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
        if rgb.iter().any(|&c| c < 245) {
            non_white += 1;
        }
        let (lo, hi) = (rgb.iter().min().copied().unwrap_or(0), rgb.iter().max().copied().unwrap_or(0));
        if hi - lo >= 64 {
            *colours.entry(rgb).or_default() += 1;
        }
    }
    let total = pixels.len() / channels;
    (non_white as f64 / total as f64, colours.values().filter(|&&n| n >= MIN_COLOUR_PIXELS).count())
}

/// An element of a parsed page: tag name, attributes (entities decoded), parent, own text.
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    parent: Option<usize>,
    text: String,
}

/// A serialized HTML document as a flat list of elements in document order. Enough for
/// Chromium's `--dump-dom` output and for `render`'s own output: comments and doctype skipped,
/// void and `/>`-closed elements have no children, `<style>` / `<script>` contents are raw text.
struct Dom {
    elements: Vec<Element>,
}

const VOID: [&str; 13] = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

impl Dom {
    fn parse(s: &str) -> Dom {
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            if let Some(comment) = rest.strip_prefix("<!--") {
                i += 4 + comment.find("-->").map_or(comment.len(), |e| e + 3);
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                i += rest.find('>').map_or(rest.len(), |e| e + 1);
            } else if let Some(close) = rest.strip_prefix("</") {
                let end = close.find('>').unwrap_or(close.len());
                let name = close[..end].trim().to_ascii_lowercase();
                if let Some(at) = open.iter().rposition(|&e| elements[e].name == name) {
                    open.truncate(at);
                }
                i += 2 + end + 1;
            } else if rest.starts_with('<') && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                let (element, self_closing, len) = parse_start_tag(rest, open.last().copied());
                i += len;
                let index = elements.len();
                let raw_text = element.name == "style" || element.name == "script";
                let void = self_closing || VOID.contains(&element.name.as_str());
                elements.push(element);
                if raw_text {
                    let close = format!("</{}", elements[index].name);
                    let end = s[i..].find(&close).unwrap_or(s.len() - i);
                    elements[index].text = s[i..i + end].to_string();
                    i += end;
                    open.push(index);
                } else if !void {
                    open.push(index);
                }
            } else {
                let first = rest.chars().next().map_or(1, char::len_utf8);
                let end = rest[first..].find('<').map_or(rest.len(), |e| e + first);
                if let Some(&top) = open.last() {
                    elements[top].text.push_str(&decode_entities(&rest[..end]));
                }
                i += end;
            }
        }
        Dom { elements }
    }

    fn attr(&self, e: usize, name: &str) -> Option<&str> {
        self.elements[e].attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn has_class(&self, e: usize, class: &str) -> bool {
        self.attr(e, "class").is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    }

    /// Whether `e` lies inside `ancestor`.
    fn inside(&self, mut e: usize, ancestor: usize) -> bool {
        while let Some(p) = self.elements[e].parent {
            if p == ancestor {
                return true;
            }
            e = p;
        }
        false
    }

    /// Elements named `name` with the class `class` (any, when empty), in document order.
    fn select(&self, name: &str, class: &str) -> Vec<usize> {
        (0..self.elements.len()).filter(|&e| self.elements[e].name == name && (class.is_empty() || self.has_class(e, class))).collect()
    }

    /// The text of `e` and everything inside it.
    fn text(&self, e: usize) -> String {
        let mut t = self.elements[e].text.clone();
        for d in (e + 1..self.elements.len()).filter(|&d| self.inside(d, e)) {
            t.push_str(&self.elements[d].text);
        }
        t
    }
}

/// Parses the start tag at the beginning of `s`: the element, whether it ends in `/>`, and the
/// tag's length in bytes.
fn parse_start_tag(s: &str, parent: Option<usize>) -> (Element, bool, usize) {
    let b = s.as_bytes();
    let is_name_end = |c: u8| c.is_ascii_whitespace() || c == b'>' || c == b'/' || c == b'=';
    let mut i = 1;
    while i < b.len() && !is_name_end(b[i]) {
        i += 1;
    }
    let name = s[1..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || (b[i] == b'/' && b.get(i + 1) != Some(&b'>'))) {
            i += 1;
        }
        if i >= b.len() {
            return (Element { name, attrs, parent, text: String::new() }, false, i);
        }
        if b[i] == b'>' {
            return (Element { name, attrs, parent, text: String::new() }, false, i + 1);
        }
        if s[i..].starts_with("/>") {
            return (Element { name, attrs, parent, text: String::new() }, true, i + 2);
        }
        let start = i;
        while i < b.len() && !is_name_end(b[i]) {
            i += 1;
        }
        let attr = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if let Some(&q) = b.get(i).filter(|&&q| q == b'"' || q == b'\'') {
                let end = s[i + 1..].find(q as char).map_or(b.len(), |e| i + 1 + e);
                value = decode_entities(&s[i + 1..end]);
                i = (end + 1).min(b.len());
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&s[start..i]);
            }
        }
        attrs.push((attr, value));
    }
}

/// `s` with the character references Chromium's serializer and `render` write replaced.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.char_indices().take(12).find(|&(_, c)| c == ';').map(|(i, _)| i) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether attribute text `attr` is the number `json` holds: an integer exactly; a float as Rust's
/// shortest round-trip `Display` of the same `f64`. serde_json's default float parser (without
/// `float_roundtrip`) may land an ULP away from the number its writer wrote, so the attribute is
/// also read with that parser: the same digits then give the same `f64`.
fn same_number(attr: &str, json: &Value) -> Result<(), String> {
    let Value::Number(n) = json else {
        return Err(format!("{attr:?} drawn for JSON {json}, which is not a number"));
    };
    if n.is_u64() || n.is_i64() {
        return if attr == n.to_string() { Ok(()) } else { Err(format!("{attr:?} != JSON {n}")) };
    }
    let j = n.as_f64().ok_or_else(|| format!("JSON {n} is not an f64"))?;
    let a: f64 = attr.parse().map_err(|e| format!("{attr:?} is not a number: {e}"))?;
    if format!("{a}") != attr {
        return Err(format!("{attr:?} is not Rust's Display of its value ({a})"));
    }
    if a == j || serde_json::from_str::<f64>(attr).ok() == Some(j) {
        Ok(())
    } else {
        Err(format!("{attr:?} != JSON {n}"))
    }
}

/// What [`check_dom`] counted.
struct DomFound {
    bars: usize,
    curve_points: usize,
}

fn is_number(v: &Value) -> bool {
    v.is_number()
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Checks a rendered page against the JSON report; every mismatch found, or the counts.
fn check_dom(page: &str, report: &Value) -> Result<DomFound, Vec<String>> {
    let dom = Dom::parse(page);
    let mut problems = Vec::new();
    let empty = Vec::new();
    let list = |key: &str| report[key].as_array().unwrap_or(&empty);
    let layers = list("layers");
    let explored = list("explored");
    let frontier = list("frontier");
    let chosen = report["chosen"].as_u64();

    for e in 0..dom.elements.len() {
        let el = &dom.elements[e];
        if ["script", "link", "img", "iframe", "object", "embed"].contains(&el.name.as_str()) {
            problems.push(format!("page has a <{}> element", el.name));
        }
        for (n, v) in &el.attrs {
            if n.starts_with("on") {
                problems.push(format!("<{}> has an event handler {n}", el.name));
            }
            let v = v.trim_start().to_ascii_lowercase();
            if (n == "href" || n == "src" || n.ends_with(":href")) && !v.starts_with('#') {
                problems.push(format!("<{}> links out: {n}={v}", el.name));
            }
        }
    }

    let mut bars = 0;
    let mut chart_svgs = Vec::new();
    for (key, field, weights_only) in LAYER_CHARTS {
        let svgs = dom.select("svg", &format!("chart-{key}"));
        let [svg] = svgs[..] else {
            problems.push(format!("{} <svg class=\"chart chart-{key}\"> on the page, want 1", svgs.len()));
            continue;
        };
        chart_svgs.push(svg);
        let drawn: Vec<usize> =
            dom.select("rect", "").into_iter().filter(|&r| dom.inside(r, svg) && dom.attr(r, "data-layer").is_some()).collect();
        let want: Vec<&Value> = layers
            .iter()
            .filter(|l| is_number(&l[field]) && (!weights_only || u64_of(&l["params"]) > 0 || u64_of(&l["params_dense"]) > 0))
            .collect();
        if drawn.len() != want.len() {
            problems.push(format!("chart-{key}: {} bars, want {} (layers with a {field})", drawn.len(), want.len()));
        }
        for (&r, l) in drawn.iter().zip(&want) {
            let name = l["name"].as_str().unwrap_or_default();
            if dom.attr(r, "data-layer") != Some(name) {
                problems.push(format!("chart-{key}: bar for {:?} where layer {name:?} is due", dom.attr(r, "data-layer")));
            }
            let value = dom.attr(r, "data-value").unwrap_or_default();
            if let Err(e) = same_number(value, &l[field]) {
                problems.push(format!("chart-{key}, layer {name:?}: data-value {e}"));
            }
            if key == "params" {
                if let Err(e) = same_number(dom.attr(r, "data-dense").unwrap_or_default(), &l["params_dense"]) {
                    problems.push(format!("chart-params, layer {name:?}: data-dense {e}"));
                }
            }
        }
        bars += drawn.len();
    }
    let valued = (0..dom.elements.len()).filter(|&e| dom.attr(e, "data-value").is_some()).collect::<Vec<_>>();
    if let Some(&stray) = valued.iter().find(|&&e| !chart_svgs.iter().any(|&svg| dom.inside(e, svg))) {
        problems.push(format!("a <{}> outside the per-layer charts carries data-value", dom.elements[stray].name));
    }

    let want_frontier: Vec<&Value> = frontier.iter().filter(|p| is_number(&p["predicted_error"])).collect();
    let want_explored: Vec<(usize, &Value)> = explored.iter().enumerate().filter(|(_, c)| is_number(&c["measured_error"])).collect();
    let curves = dom.select("svg", "chart-curve");
    let curve_points = want_frontier.len() + want_explored.len();
    if curve_points == 0 {
        if !curves.is_empty() || dom.select("p", "no-points").len() != 1 {
            problems.push(format!("nothing to plot: want no chart-curve ({} found) and one p.no-points", curves.len()));
        }
    } else if let [curve] = curves[..] {
        let circles = |class: &str| dom.select("circle", class).into_iter().filter(|&c| dom.inside(c, curve)).collect::<Vec<_>>();
        let drawn = circles("frontier");
        if drawn.len() != want_frontier.len() {
            problems.push(format!("chart-curve: {} frontier points, want {}", drawn.len(), want_frontier.len()));
        }
        for (&c, p) in drawn.iter().zip(&want_frontier) {
            for (attr, field) in [("data-flash", "flash"), ("data-error", "predicted_error")] {
                if let Err(e) = same_number(dom.attr(c, attr).unwrap_or_default(), &p[field]) {
                    problems.push(format!("chart-curve frontier point: {attr} {e}"));
                }
            }
        }
        let drawn = circles("explored");
        if drawn.len() != want_explored.len() {
            problems.push(format!("chart-curve: {} explored points, want {}", drawn.len(), want_explored.len()));
        }
        for (&c, &(i, cand)) in drawn.iter().zip(&want_explored) {
            if dom.attr(c, "data-candidate") != Some(i.to_string().as_str()) {
                problems.push(format!("chart-curve: point {:?} where candidate {i} is due", dom.attr(c, "data-candidate")));
            }
            for (attr, field) in [("data-flash", "flash"), ("data-error", "measured_error")] {
                if let Err(e) = same_number(dom.attr(c, attr).unwrap_or_default(), &cand[field]) {
                    problems.push(format!("chart-curve candidate {i}: {attr} {e}"));
                }
            }
            if dom.attr(c, "data-feasible") != Some(if cand["feasible"].as_bool() == Some(true) { "true" } else { "false" }) {
                problems.push(format!("chart-curve candidate {i}: data-feasible {:?}", dom.attr(c, "data-feasible")));
            }
        }
        let marked: Vec<Option<&str>> = (0..dom.elements.len())
            .filter(|&e| dom.inside(e, curve) && dom.has_class(e, "chosen"))
            .map(|e| dom.attr(e, "data-candidate"))
            .collect();
        let want_marked = match chosen {
            Some(i) if want_explored.iter().any(|&(j, _)| j as u64 == i) => vec![Some(i.to_string())],
            _ => vec![],
        };
        if marked != want_marked.iter().map(|m| m.as_deref()).collect::<Vec<_>>() {
            problems.push(format!("chart-curve: chosen marks {marked:?}, want {want_marked:?}"));
        }
        let budget: Vec<Option<&str>> =
            dom.select("line", "budget-flash").into_iter().filter(|&l| dom.inside(l, curve)).map(|l| dom.attr(l, "data-flash")).collect();
        match &report["budget"]["flash"] {
            Value::Number(n) if budget.len() == 1 => {
                if let Err(e) = same_number(budget[0].unwrap_or_default(), &Value::Number(n.clone())) {
                    problems.push(format!("chart-curve: flash budget line data-flash {e}"));
                }
            }
            Value::Number(_) => problems.push(format!("chart-curve: {} flash budget lines, want 1", budget.len())),
            _ if !budget.is_empty() => problems.push("chart-curve: a flash budget line without a flash budget".to_string()),
            _ => {}
        }
    } else {
        problems.push(format!("{} <svg class=\"chart chart-curve\">, want 1 ({curve_points} points to plot)", curves.len()));
    }

    let rows: Vec<usize> = dom.select("tr", "").into_iter().filter(|&r| dom.attr(r, "data-candidate").is_some()).collect();
    let indices: Vec<Option<&str>> = rows.iter().map(|&r| dom.attr(r, "data-candidate")).collect();
    let want_indices: Vec<String> = (0..explored.len()).map(|i| i.to_string()).collect();
    if indices != want_indices.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>() {
        problems.push(format!("candidate table rows {indices:?}, want {want_indices:?}"));
    }
    let chosen_rows: Vec<Option<&str>> =
        rows.iter().filter(|&&r| dom.has_class(r, "chosen")).map(|&r| dom.attr(r, "data-candidate")).collect();
    let want_chosen = chosen.filter(|&i| (i as usize) < explored.len()).map(|i| i.to_string());
    if chosen_rows != want_chosen.as_deref().into_iter().map(Some).collect::<Vec<_>>() {
        problems.push(format!("chosen candidate rows {chosen_rows:?}, want {want_chosen:?}"));
    }

    match dom.select("table", "layers")[..] {
        [table] => {
            let rows: Vec<usize> = dom
                .select("tr", "")
                .into_iter()
                .filter(|&r| dom.inside(r, table) && dom.select("td", "").iter().any(|&d| dom.elements[d].parent == Some(r)))
                .collect();
            let names: Vec<String> = rows
                .iter()
                .map(|&r| {
                    dom.select("td", "").into_iter().find(|&d| dom.elements[d].parent == Some(r)).map(|d| dom.text(d)).unwrap_or_default()
                })
                .collect();
            let want: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap_or_default()).collect();
            if names != want {
                problems.push(format!("layer table names {names:?}, want {want:?}"));
            }
        }
        ref found => problems.push(format!("{} table.layers, want 1", found.len())),
    }

    let met = report["met"].as_bool() == Some(true);
    let status = dom.select("p", "status");
    if status.len() != 1 || !dom.has_class(status[0], if met { "met" } else { "not-met" }) {
        problems.push(format!("want one p.status marked {}", if met { "met" } else { "not-met" }));
    }
    let model = report["model"].as_str().unwrap_or_default();
    if !dom.select("h1", "").iter().any(|&h| dom.text(h).contains(model)) {
        problems.push(format!("no <h1> names the model {model:?}"));
    }
    if let Some(reasons) = report["limits"]["reasons"].as_array() {
        let items: Vec<String> = dom.select("li", "").into_iter().map(|l| dom.text(l)).collect();
        for r in reasons.iter().filter_map(Value::as_str) {
            if !items.iter().any(|i| i == r) {
                problems.push(format!("limit reason {r:?} is not a list item"));
            }
        }
    }

    if problems.is_empty() {
        Ok(DomFound { bars, curve_points })
    } else {
        Err(problems)
    }
}

fn layer(name: &str, op: &str, params_dense: u64, kept: f64, bits: Option<u8>) -> LayerRow {
    let params = (params_dense as f64 * kept).round() as u64;
    let weights = params_dense > 0;
    LayerRow {
        name: name.to_string(),
        op: op.to_string(),
        kernel: match bits {
            Some(b) => format!("codebook{b}"),
            None if weights => "dense-f32".to_string(),
            None => "elementwise".to_string(),
        },
        params,
        params_dense,
        bits_per_weight: weights.then(|| bits.map_or(32.0, |b| b as f64 + 256.0 * 32.0 / params.max(1) as f64)),
        codebook_bits: bits,
        pruned_fraction: if weights { 1.0 - kept } else { 0.0 },
        input_zero_fraction: (op != "Conv" || name != "stem").then_some(0.4375 * kept),
        reconstruction_error: bits.map(|b| 1.0 / (1u64 << b) as f64 / 3.0),
        macs: params * 49,
        mac_share: 0.0,
        latency_us: 3.0 + params as f64 / 997.0,
        latency_share: 0.0,
        weight_bytes: bits.map_or(params * 4, |b| (params * b as u64).div_ceil(8) + 1024),
    }
}

/// A report with the shapes a real search produces: conv and dense layers with and without
/// codebooks, layers without weights, a layer name that needs escaping, a NaN and an infinite
/// value (both `null` in the JSON), shares that add up, two pruning levels on the frontier.
fn synthetic(met: bool) -> BudgetReport {
    let mut layers = vec![
        layer("stem", "Conv", 864, 1.0, None),
        layer("block1/conv<&\"'>", "Conv", 18_432, 0.75, Some(4)),
        layer("block1/relu", "Relu", 0, 1.0, None),
        layer("block2/conv", "Conv", 73_728, 0.5, Some(3)),
        layer("block2/add", "Add", 0, 1.0, None),
        layer("head/fc", "Dense", 10_240, 1.0, Some(6)),
        layer("softmax", "Softmax", 0, 1.0, None),
    ];
    let macs: u64 = layers.iter().map(|l| l.macs).sum();
    let time: f64 = layers.iter().map(|l| l.latency_us).sum();
    for l in &mut layers {
        l.mac_share = l.macs as f64 / macs as f64;
        l.latency_share = l.latency_us / time;
    }
    layers[3].reconstruction_error = Some(f64::NAN);
    layers[6].latency_share = f64::INFINITY;
    let explored: Vec<Candidate> = [1.0, 0.75, 0.5]
        .iter()
        .enumerate()
        .flat_map(|(p, &keep)| {
            (0..4).map(move |k| {
                let flash = (120_000.0 * keep) as u64 - k as u64 * 9_000 + 17;
                let error = 0.004 + 0.013 * k as f64 + 0.02 * (1.0 - keep) + p as f64 * 1e-17;
                let built = k != 3;
                let feasible = built && flash <= 80_000 && error <= 0.05;
                Candidate {
                    macs_kept: keep,
                    layer_bits: vec![("block1/conv<&\"'>".to_string(), 8 - k as u8), ("head/fc".to_string(), 6)],
                    flash,
                    file: flash - 10_000,
                    ram: 40_960,
                    macs: (macs as f64 * keep) as u64,
                    predicted_error: error * 0.8,
                    measured_error: built.then_some(error),
                    top1_agreement: built.then_some(1.0 - error),
                    feasible,
                    note: (!built)
                        .then(|| "not built: predicted error > 2 × budget".to_string())
                        .or((!feasible).then(|| "flash > budget".to_string())),
                }
            })
        })
        .collect();
    let frontier = explored
        .iter()
        .map(|c| FrontierPoint { macs_kept: c.macs_kept, flash: c.flash - 500, predicted_error: c.predicted_error })
        .collect();
    let side = |flash: u64, macs: u64, latency: f64| Side {
        file_bytes: flash - 8192,
        flash,
        ram: 40_960,
        arena: 32_768,
        macs,
        params: 103_264,
        latency_us_predicted: None,
        latency_us_measured: latency,
        accuracy: Some(0.9125),
        vs_onnx: Fidelity { samples: 80, relative_error: 0.0, max_abs_error: 2.5e-7, top1_agreement: 1.0 },
    };
    let chosen = explored.iter().position(|c| c.feasible);
    let mut rep = BudgetReport {
        model: "models/tiny <cnn> & co.onnx".to_string(),
        output: "out/tiny.sprig".to_string(),
        target: "thumbv7em-none-eabihf".to_string(),
        budget: Budget { flash: Some(80 * 1024), ram: Some(64 * 1024), macs: None, file: None, max_error: Some(0.05) },
        met,
        calib_samples: 64,
        eval_on: "eval data, 80 samples".to_string(),
        before: side(420_000, macs * 2, 310.0),
        after: chosen.map(|i| Side { latency_us_predicted: Some(150.5), ..side(explored[i].flash, explored[i].macs, 147.25) }),
        layers,
        chosen,
        explored,
        frontier,
        limits: None,
        seconds: 42.5,
    };
    if !met {
        rep.budget.flash = Some(16 * 1024);
        rep.chosen = None;
        rep.after = None;
        rep.frontier.clear();
        for c in &mut rep.explored {
            c.measured_error = None;
            c.feasible = false;
        }
        rep.limits = Some(Limits {
            min_flash: 31_000,
            flash_parts: vec![("weights of <block2/conv>".to_string(), 21_000), ("runtime code".to_string(), 10_000)],
            min_file: 0,
            min_ram: 40_960,
            ram_parts: vec![("arena".to_string(), 32_768), ("stack".to_string(), 8_192)],
            min_macs: 1_000_000,
            min_error: None,
            reasons: vec!["flash: the smallest configuration needs 30.3 KiB > budget 16.0 KiB (weights & runtime code)".to_string()],
        });
    }
    rep
}

/// Writes `rep` as `report.html` and `report.json` into `dir`.
fn write_report(dir: &Path, rep: &BudgetReport) -> (PathBuf, PathBuf) {
    let html = dir.join("report.html");
    let json = dir.join("report.json");
    std::fs::write(&html, render(rep)).unwrap();
    std::fs::write(&json, serde_json::to_string_pretty(rep).unwrap()).unwrap();
    (html, json)
}

#[test]
fn met_report_renders_in_chromium_as_the_json_says() {
    let dir = tempfile::tempdir().unwrap();
    let rep = synthetic(true);
    let (html, json) = write_report(dir.path(), &rep);
    let Some(found) = check_report_in_chromium(&html, &json) else { return };
    eprintln!("met report in Chromium: {found:?}");
    let with_bars = |f: fn(&LayerRow) -> bool| rep.layers.iter().filter(|l| f(l)).count();
    let bars = with_bars(|l| l.params_dense > 0) * 2
        + with_bars(|l| l.bits_per_weight.is_some())
        + with_bars(|l| l.input_zero_fraction.is_some())
        + with_bars(|l| l.reconstruction_error.is_some_and(f64::is_finite))
        + rep.layers.len()
        + with_bars(|l| l.latency_share.is_finite());
    assert_eq!(found.bars, bars);
    assert_eq!(found.curve_points, rep.frontier.len() + rep.explored.iter().filter(|c| c.measured_error.is_some()).count());
}

#[test]
fn not_met_report_renders_in_chromium_with_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let rep = synthetic(false);
    let (html, json) = write_report(dir.path(), &rep);
    let Some(found) = check_report_in_chromium(&html, &json) else { return };
    eprintln!("not-met report in Chromium: {found:?}");
    assert_eq!(found.curve_points, 0);
}

/// The DOM check itself, on `render`'s own output (no Chromium needed): it accepts the page and
/// catches a bar, a value, a chosen mark or a row that disagrees with the JSON.
#[test]
fn dom_check_catches_pages_that_disagree_with_the_json() {
    let rep = synthetic(true);
    let json: Value = serde_json::to_value(&rep).unwrap();
    let page = render(&rep);
    let found = check_dom(&page, &json).unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(found.bars > 20 && found.curve_points > 10, "{} bars, {} points", found.bars, found.curve_points);
    assert!(check_dom(&render(&synthetic(false)), &serde_json::to_value(synthetic(false)).unwrap()).is_ok());

    let mut other = json.clone();
    other["layers"][1]["mac_share"] = serde_json::json!(0.123);
    other["layers"][0]["params_dense"] = serde_json::json!(865);
    other["explored"][0]["measured_error"] = Value::Null;
    other["chosen"] = serde_json::json!(0);
    other["budget"]["flash"] = Value::Null;
    other["layers"][2]["name"] = serde_json::json!("renamed");
    let problems = check_dom(&page, &other).err().expect("mismatches found");
    for want in [
        "chart-macs, layer \"block1/conv<&\\\"'>\": data-value",
        "data-dense",
        "explored points",
        "chosen marks",
        "flash budget line",
        "chart-macs: bar for",
    ] {
        assert!(problems.iter().any(|p| p.contains(want)), "{want} not in {problems:#?}");
    }
    let one_decimal =
        page.replacen(&format!("data-value=\"{}\"", rep.layers[0].mac_share), &format!("data-value=\"{:.3}\"", rep.layers[0].mac_share), 1);
    assert!(check_dom(&one_decimal, &json).is_err(), "a value not in Rust's Display");
    let scripted = page.replacen("<body>", "<body><script>1</script>", 1);
    assert!(check_dom(&scripted, &json).is_err(), "a script");
}

#[test]
fn attributes_and_entities_parse_as_a_browser_serializes_them() {
    let dom = Dom::parse(
        "<!DOCTYPE html><p a=\"x &lt;&amp;&quot;&gt; y\" b='1' c=d e>t&#39;&#x41;&nbsp;<br>u</p><svg><rect x=\"1\"/><g></g></svg>",
    );
    let p = dom.select("p", "")[0];
    assert_eq!(dom.attr(p, "a"), Some("x <&\"> y"));
    assert_eq!(dom.attr(p, "b"), Some("1"));
    assert_eq!(dom.attr(p, "c"), Some("d"));
    assert_eq!(dom.attr(p, "e"), Some(""));
    assert_eq!(dom.text(p), "t'A\u{a0}u");
    let svg = dom.select("svg", "")[0];
    assert!(dom.inside(dom.select("g", "")[0], svg), "a /> element has no children");
    assert_eq!(file_url(Path::new("/tmp/a b/r#1.html")), "file:///tmp/a%20b/r%231.html");
    assert!(same_number("0.1", &serde_json::json!(0.1)).is_ok());
    assert!(same_number("0.10", &serde_json::json!(0.1)).is_err());
    assert!(same_number("12", &serde_json::json!(12)).is_ok());
    assert!(same_number("32", &serde_json::json!(32.0)).is_ok());
    assert!(same_number("NaN", &Value::Null).is_err());
}

#[test]
fn the_cli_report_of_a_real_search_renders_as_its_json_says() {
    let dir = tempfile::tempdir().unwrap();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let (html, json, out) = (dir.path().join("r.html"), dir.path().join("r.json"), dir.path().join("fit.sprig"));
    let status = Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(["compress", models.join("digits_cnn.onnx").to_str().unwrap(), "--calib"])
        .arg(models.join("digits_calib.npy"))
        .args(["--budget", "ram=13000", "-q", "-o"])
        .arg(&out)
        .arg("--report")
        .arg(&html)
        .arg("--json")
        .arg(&json)
        .arg("--eval")
        .arg(models.join("digits_eval.npy"))
        .arg("--labels")
        .arg(models.join("digits_eval_labels.npy"))
        .status()
        .expect("spawn sprig");
    assert!(status.success());
    let Some(found) = check_report_in_chromium(&html, &json) else { return };
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(found.bars >= report["layers"].as_array().unwrap().len(), "{found:?}");
    // At least the chosen candidate is on the curve (the check matched it to the JSON).
    assert!(found.curve_points >= 1, "{found:?}");
}
