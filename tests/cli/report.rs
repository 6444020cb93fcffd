//! The HTML reports in a real browser: headless Chromium (Debian's `chromium` package,
//! which `.ci/run` installs) opens `report.html` from disk, with no console message and a
//! screenshot that is not blank. Skipped, saying so, when Chromium is absent (except under
//! CI, where that is a failure, as for tshark).

use super::netdes;
use std::path::{Path, PathBuf};

/// `NETDES_CHROMIUM` if set (only that), else Debian's path.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETDES_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium's binary, or None after saying why the test is skipped.
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    match chromium() {
        Some(c) => Some(c),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: chromium is not installed (apt-get install chromium), and CI is set")
        }
        None => {
            eprintln!("skipping {test}: chromium is not installed (apt-get install chromium)");
            None
        }
    }
}

/// What the browser showed: the console lines it logged, and the screenshot's pixels.
struct Rendered {
    console: Vec<String>,
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

/// Renders `page` headless (a fresh profile, no network services) and screenshots it.
fn render(chromium: &Path, page: &Path, scratch: &Path, tag: &str) -> Rendered {
    let profile = scratch.join(format!("profile-{tag}"));
    let shot = scratch.join(format!("{tag}.png"));
    let _ = std::fs::remove_dir_all(&profile);
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Console messages (console.log/error, uncaught exceptions, failed loads) are logged
    // as "...:INFO:CONSOLE:LINE] "message", source: URL (LINE)".
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let file = std::fs::File::open(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot {} ({e}); chromium said: {stderr}",
            shot.display()
        )
    });
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    Rendered {
        console,
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

impl Rendered {
    fn ink(&self) -> f64 {
        let dark = self
            .rgb
            .iter()
            .filter(|p| p.iter().any(|&c| c < 200))
            .count();
        dark as f64 / (self.width * self.height) as f64
    }
    fn colors(&self) -> usize {
        let mut c: Vec<[u8; 3]> = self.rgb.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    }
}

fn assert_looks_like_a_report(r: &Rendered, what: &str) {
    assert!(
        r.console.is_empty(),
        "{what}: console messages: {:#?}",
        r.console
    );
    assert_eq!((r.width, r.height), (1000, 1800), "{what}");
    let ink = r.ink();
    // Text, axes and coloured lines: a blank page has 0, a page of solid colour 1.
    assert!(
        ink > 0.02 && ink < 0.6,
        "{what}: {:.1}% of the pixels are dark",
        ink * 100.0
    );
    assert!(r.colors() > 50, "{what}: only {} colours", r.colors());
}

/// Every reference in the page stays inside it: no scripts, no external styles, images or
/// fonts, and links only to the files beside it.
fn assert_self_contained(html: &str) {
    assert!(!html.contains("<script"), "a report has no script");
    for attr in ["src=", "@import", "url("] {
        assert!(
            !html.contains(attr),
            "the report references something: {attr}"
        );
    }
    for (i, _) in html.match_indices("href=\"") {
        let target = &html[i + 6..];
        assert!(
            !target.starts_with("http") && !target.starts_with("//"),
            "external link: {}",
            &target[..target.len().min(60)]
        );
    }
}

#[test]
fn run_and_sweep_reports_render_in_headless_chromium() {
    let scratch = std::env::temp_dir().join(format!("netdes-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // A run report: written next to its data, whatever the browser says.
    let run_dir = scratch.join("run");
    let o = netdes()
        .arg("run")
        .arg(root.join("scenarios/examples/dumbbell.ron"))
        .args([
            "--set",
            "duration=2s",
            "--seed",
            "3",
            "--report",
            "--quiet",
            "--out",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert_self_contained(&html);
    for needle in [
        "Throughput per flow",
        "Congestion window per TCP connection",
        "Smoothed RTT per TCP connection",
        "Queue occupancy per link direction",
        "seed <b>3</b>",
        "netdes run",
        "duration: &quot;2s&quot;", // the scenario text after --set
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    assert!(html.matches("<svg").count() >= 5);
    for f in ["tcp-series.csv", "flow-series.csv", "link-series.csv"] {
        assert!(run_dir.join(f).exists(), "{f}");
    }

    // A sweep report.
    let sweep_dir = scratch.join("sweep");
    let o = netdes()
        .arg("sweep")
        .arg(root.join("scenarios/sweeps/bulk-loss.ron"))
        .args(["--quiet", "--out"])
        .arg(&sweep_dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sweep_html = std::fs::read_to_string(sweep_dir.join("report.html")).unwrap();
    assert_self_contained(&sweep_html);
    for needle in [
        "goodput_bps vs loss, one line per cc",
        "goodput_bps vs cc, one line per loss",
        "95% confidence intervals",
    ] {
        assert!(sweep_html.contains(needle), "sweep report lacks {needle}");
    }

    let Some(chromium) = chromium_or_skip("run_and_sweep_reports_render_in_headless_chromium")
    else {
        let _ = std::fs::remove_dir_all(&scratch);
        return;
    };
    // The console check sees errors: a page with one is caught.
    let bad = scratch.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('seen');</script></body></html>",
    )
    .unwrap();
    let r = render(&chromium, &bad, &scratch, "bad");
    assert!(
        r.console.iter().any(|l| l.contains("seen")),
        "console not captured: {:?}",
        r.console
    );
    // A blank page is caught.
    let blank = scratch.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    assert!(render(&chromium, &blank, &scratch, "blank").ink() < 0.001);

    let r = render(&chromium, &run_dir.join("report.html"), &scratch, "run");
    assert_looks_like_a_report(&r, "run report");
    let r = render(&chromium, &sweep_dir.join("report.html"), &scratch, "sweep");
    assert_looks_like_a_report(&r, "sweep report");
    let _ = std::fs::remove_dir_all(&scratch);
}
