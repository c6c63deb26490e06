//! A real browser for the console's tests: headless Chromium driven over
//! WebDriver (`chromedriver`, started per test on a free port), axe-core
//! run on a page, and screenshots at 1280x800 under `target/console/`.
//!
//! Where `chromedriver` is missing, [`Browser::start`] answers `None` and
//! the test says it skipped, unless `GATEHOUSE_REQUIRE_BROWSER=1` (set by
//! `.ci/run`), where a missing browser fails the test.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// axe-core, vendored from its npm package (MPL-2.0, `tests/vendor/`).
const AXE: &str = include_str!("../vendor/axe-4.14.1.min.js");

/// A headless Chromium session and its driver.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    shots: PathBuf,
}

impl Drop for Browser {
    /// Ends the driver and the browsers it started: they share its process
    /// group, so no Chromium outlives its test.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// What the page's axe-core run found serious or critical: rule id, impact
/// and the first element's selector.
pub type Violations = Vec<(String, String, String)>;

impl Browser {
    /// A browser for `test`, or `None` (printed) where none is installed
    /// and none is required.
    pub async fn start(test: &str) -> Option<Browser> {
        let required = std::env::var("GATEHOUSE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let (Some(driver), Some(chromium)) = (
            find(&["chromedriver", "chromium.chromedriver"]),
            find(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            assert!(
                !required,
                "{test}: GATEHOUSE_REQUIRE_BROWSER=1 but chromedriver or chromium is not on PATH"
            );
            eprintln!("{test}: skipped: no chromedriver and chromium on PATH (apt install chromium chromium-driver)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--no-first-run", "--disable-extensions"],
            }),
        );
        let mut client = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let Some(client) = client else {
            let _ = driver.kill();
            panic!("{test}: chromedriver did not answer on {url}");
        };
        // The window includes the browser's own bars: size it so that
        // the page itself (what the screenshots show) is 1280x800.
        client.set_window_size(1280, 800).await.unwrap();
        let inner = client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let (w, h) = (
            inner[0].as_u64().unwrap_or(1280),
            inner[1].as_u64().unwrap_or(800),
        );
        let grow =
            |want: u32, got: u64| want + want.saturating_sub(u32::try_from(got).unwrap_or(want));
        client
            .set_window_size(grow(1280, w), grow(800, h))
            .await
            .unwrap();
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/console")
            .join(test);
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            client,
            driver,
            shots,
        })
    }

    /// Opens `url` and waits for the page to be interactive; returns the
    /// milliseconds from navigation start to DOMContentLoaded's end.
    pub async fn open(&self, url: &str) -> f64 {
        self.client.goto(url).await.unwrap();
        self.interactive().await
    }

    /// Waits for the document to be ready; returns its time to interactive.
    pub async fn interactive(&self) -> f64 {
        // Generous: under a loaded CI a page may wait seconds for the read
        // models to reach the visitor's last write.
        for _ in 0..1200 {
            let v = self
                .client
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0];\
                     return document.readyState === 'complete' && n ? n.domContentLoadedEventEnd : null;",
                    vec![],
                )
                .await
                .unwrap();
            if let Some(ms) = v.as_f64() {
                return ms;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the page never became interactive");
    }

    /// Bytes this page transferred (HTML, CSS and scripts) and whether any
    /// request went to another origin.
    pub async fn weight(&self) -> (u64, Vec<String>) {
        let v = self
            .client
            .execute(
                "const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];\
                 const bytes = all.reduce((s, e) => s + (e.encodedBodySize || 0), 0);\
                 const foreign = all.map(e => e.name).filter(n => new URL(n).origin !== location.origin);\
                 return [bytes, foreign];",
                vec![],
            )
            .await
            .unwrap();
        let foreign = v[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        (v[0].as_u64().unwrap_or(0), foreign)
    }

    /// Runs axe-core on the page; the serious and critical violations.
    pub async fn axe(&self) -> Violations {
        self.client
            .execute(&format!("{AXE}\nreturn true;"), vec![])
            .await
            .unwrap();
        let v: Value = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => [v.id, v.impact, (v.nodes[0] && v.nodes[0].target.join(' ')) || ''])));",
                vec![],
            )
            .await
            .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t[0].as_str().unwrap_or_default().to_owned(),
                    t[1].as_str().unwrap_or_default().to_owned(),
                    t[2].as_str().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(_, impact, _)| impact == "serious" || impact == "critical")
            .collect()
    }

    /// Writes a screenshot of the page as `<name>.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Types `text` into the field labelled by id `id`.
    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.client.find(Locator::Id(id)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Clicks the element `css` and waits for the next page (a document
    /// that is not this one, ready).
    pub async fn click(&self, css: &str) {
        self.client
            .execute("window.__gatehouseLeft = true; return true;", vec![])
            .await
            .unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
        for _ in 0..1200 {
            let left = self
                .client
                .execute("return window.__gatehouseLeft === true;", vec![])
                .await
                .unwrap_or(serde_json::Value::Bool(true));
            if left == serde_json::Value::Bool(false) {
                self.interactive().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} led to no new page");
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }
}
