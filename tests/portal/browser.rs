//! A headless Chromium driven through chromedriver (WebDriver), for the portal's browser
//! tests and benchmarks: start, sign in, open a page and wait until it has finished, resize,
//! screenshots, the browser console and axe-core. Nothing here asserts; every step returns a
//! `Result` so callers decide what a failure means.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where Debian's `chromium-driver` puts the driver (scripts/test installs it).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to reach a final state.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `body[data-state]` values a page ends in.
pub const FINAL_STATES: [&str; 3] = ["ready", "empty", "error"];

/// A chromedriver child process and one browser session on it; both end on drop.
pub struct Browser {
    pub client: Client,
    /// The directory downloads are saved to.
    pub downloads: TempDir,
    driver: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session on it.
    pub async fn start() -> Result<Self> {
        if !Path::new(CHROMEDRIVER).exists() {
            bail!(
                "{CHROMEDRIVER} is missing: run scripts/test, which installs chromium and \
                 chromium-driver, or `apt-get install chromium chromium-driver`"
            );
        }
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let mut guard = DriverGuard(Some(driver));
        wait_for_port(port, Duration::from_secs(20)).await?;

        let profile = tempfile::tempdir().context("a profile directory")?;
        let downloads = tempfile::tempdir().context("a download directory")?;
        let capabilities = capabilities(profile.path(), downloads.path());
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}/"))
            .await
            .context("open a WebDriver session")?;
        let session = client
            .session_id()
            .await?
            .ok_or_else(|| anyhow!("the WebDriver session has no id"))?;
        let browser = Self {
            client,
            downloads,
            driver: guard.0.take().expect("the driver is still owned here"),
            port,
            session,
            _profile: profile,
        };
        // Headless Chromium saves downloads only once told where.
        browser
            .cdp(
                "Browser.setDownloadBehavior",
                json!({"behavior": "allow", "downloadPath": browser.downloads.path()}),
            )
            .await?;
        Ok(browser)
    }

    /// Runs a DevTools protocol command through chromedriver and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        let command = Custom {
            path: "goog/cdp/execute",
            body: json!({"cmd": cmd, "params": params}),
        };
        self.client
            .issue_cmd(command)
            .await
            .with_context(|| format!("DevTools command {cmd}"))
    }

    /// Opens `base` (the portal's URL), signs in with `key` and waits until the first page
    /// has finished (or the sign-in form is back with an error). Returns the final state.
    pub async fn sign_in(&self, base: &str, key: &str) -> Result<String> {
        self.client.goto(base).await?;
        self.wait_for_state(&["signed-out"]).await?;
        let input = self.client.find(Locator::Id("api-key")).await?;
        input.clear().await?;
        input.send_keys(key).await?;
        self.client
            .find(Locator::Id("sign-in-submit"))
            .await?
            .click()
            .await?;
        // The check runs in the page: wait until it has left "loading" for good.
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let state = self.state().await?;
            if state == "signed-out" && self.sign_in_error_shown().await? {
                return Ok(state);
            }
            if FINAL_STATES.contains(&state.as_str()) {
                return Ok(state);
            }
            if Instant::now() > deadline {
                bail!("sign-in did not finish within {PAGE_TIMEOUT:?} (state {state})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn sign_in_error_shown(&self) -> Result<bool> {
        let shown = self
            .client
            .execute(
                "return !document.getElementById('sign-in-error').hidden;",
                vec![],
            )
            .await?;
        Ok(shown.as_bool().unwrap_or(false))
    }

    /// Navigates to `url` and waits until the page is ready, empty or failed; returns the
    /// time from the start of the navigation to that moment (the page's own clock).
    pub async fn open(&self, url: &str) -> Result<Duration> {
        self.client.goto(url).await?;
        let (_, elapsed) = self.wait_settled().await?;
        elapsed.ok_or_else(|| anyhow!("no navigation timing for {url}"))
    }

    /// Waits until the current page reaches a final state; returns it and the page's
    /// `performance.now()` at that moment (the time since the document's navigation started;
    /// after an in-page navigation, since the last full load).
    pub async fn wait_settled(&self) -> Result<(String, Option<Duration>)> {
        const SCRIPT: &str = r#"
            const done = arguments[arguments.length - 1];
            const finals = arguments[0];
            const settled = () => finals.includes(document.body.dataset.state);
            const answer = () => done([document.body.dataset.state, performance.now()]);
            if (settled()) { answer(); return; }
            const observer = new MutationObserver(() => {
                if (settled()) { observer.disconnect(); answer(); }
            });
            observer.observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
        "#;
        let started = Instant::now();
        loop {
            let answer = self
                .client
                .execute_async(SCRIPT, vec![json!(FINAL_STATES)])
                .await;
            match answer {
                Ok(value) => {
                    let state = value[0].as_str().unwrap_or_default().to_owned();
                    let millis = value[1].as_f64().unwrap_or_default();
                    return Ok((state, Some(Duration::from_secs_f64(millis / 1000.0))));
                }
                // A navigation while waiting ends the script: wait on the new document.
                Err(_) if started.elapsed() < PAGE_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => {
                    let state = self.state().await.unwrap_or_default();
                    return Err(anyhow!(err))
                        .with_context(|| format!("the page never settled (state {state:?})"));
                }
            }
        }
    }

    /// Polls until `body[data-state]` is one of `states`.
    pub async fn wait_for_state(&self, states: &[&str]) -> Result<String> {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let state = self.state().await?;
            if states.contains(&state.as_str()) {
                return Ok(state);
            }
            if Instant::now() > deadline {
                bail!("state {state:?} never became one of {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `location.search` equals `search` (after an in-page navigation).
    pub async fn wait_for_search(&self, search: &str) -> Result<()> {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let now = self.search().await?;
            if now == search {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the URL's query stayed {now:?}, not {search:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `document.body.dataset.state`.
    pub async fn state(&self) -> Result<String> {
        let state = self
            .client
            .execute("return document.body.dataset.state || '';", vec![])
            .await?;
        Ok(state.as_str().unwrap_or_default().to_owned())
    }

    /// `location.search` of the current page.
    pub async fn search(&self) -> Result<String> {
        let search = self
            .client
            .execute("return location.search;", vec![])
            .await?;
        Ok(search.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Makes the viewport `px` CSS pixels wide (900 high); below 600 px as a phone would
    /// (touch, the viewport meta tag honoured).
    pub async fn set_width(&self, px: u32) -> Result<()> {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": px, "height": 900, "deviceScaleFactor": 1, "mobile": px < 600}),
        )
        .await?;
        Ok(())
    }

    /// Saves a PNG of the whole page to `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(1280.0).ceil();
        let height = size["height"].as_f64().unwrap_or(900.0).ceil();
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| anyhow!("no screenshot data"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The browser console's errors (level SEVERE) since the last call; reading drains
    /// chromedriver's buffer.
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        let entries = self
            .client
            .issue_cmd(Custom {
                path: "se/log",
                body: json!({"type": "browser"}),
            })
            .await
            .context("read the browser log")?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Runs axe-core on the current page; returns its violations, each as
    /// `{id, impact, help, nodes: ["selector: summary"]}`.
    pub async fn axe_violations(&self) -> Result<Vec<Value>> {
        let loaded = self.eval("return typeof window.axe === 'object';").await?;
        if loaded != json!(true) {
            let source = std::fs::read_to_string(axe_path()).context("read axe.min.js")?;
            self.client
                .execute(&(source + "\n; return true;"), vec![])
                .await
                .context("inject axe-core")?;
        }
        const RUN: &str = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
                .then((r) => done(r.violations.map((v) => ({
                    id: v.id,
                    impact: v.impact,
                    help: v.help,
                    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
                }))))
                .catch((e) => done({ error: String(e) }));
        "#;
        let answer = self.client.execute_async(RUN, vec![]).await?;
        if let Some(error) = answer.get("error") {
            bail!("axe-core failed: {error}");
        }
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// Waits until a completed download (not a `.crdownload`) is in the download directory.
    pub async fn wait_for_download(&self, timeout: Duration) -> Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            let done: Vec<PathBuf> = std::fs::read_dir(self.downloads.path())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_none_or(|x| x != "crdownload" && x != "tmp")
                })
                .collect();
            if let [file] = done.as_slice() {
                return Ok(file.clone());
            }
            if done.len() > 1 {
                bail!("more than one download: {done:?}");
            }
            if Instant::now() > deadline {
                bail!("no download within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session (Chromium quits) and chromedriver.
    pub async fn close(self) -> Result<()> {
        // Drop does the work; closing through the client first lets it finish cleanly.
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous, so it also runs while a failed test unwinds: Chromium quits with the
        // session, then the driver goes.
        delete_session(self.port, &self.session);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Kills chromedriver if the session never started.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A chromedriver command beyond fantoccini's: POST `/session/{id}/<path>` with `body`.
#[derive(Debug)]
struct Custom {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Custom {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

fn capabilities(profile: &Path, downloads: &Path) -> fantoccini::wd::Capabilities {
    let options = json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            // The tests read formatted numbers back: one locale everywhere.
            "--lang=en-US",
            format!("--user-data-dir={}", profile.display()),
        ],
        "prefs": {
            "download.default_directory": downloads,
            "download.prompt_for_download": false,
            "intl.accept_languages": "en-US",
        },
    });
    let mut caps = fantoccini::wd::Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    caps
}

/// `target/screenshots` of this crate.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

fn axe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("portal/test-vendor/axe.min.js")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("chromedriver did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `DELETE /session/{id}` over a plain socket, ignoring failures (the session may be gone).
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
    }
}
