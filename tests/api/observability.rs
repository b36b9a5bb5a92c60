//! What deploy/ ships for operators, checked against the real binary: the
//! Prometheus rules (deploy/prometheus/rules.yml) and the Grafana dashboard
//! (deploy/grafana/dashboards/) query only metrics that a running
//! `serve --dev` exports, every alert links to a runbook entry of the
//! README, and a real Prometheus scrapes the service with the rules loaded.
//!
//! The metric names come from scraping the process after calls that make
//! every metric appear (the exporter renders a metric only once it has been
//! recorded): answers OK and in error, a replay, a server error, a shed RPC
//! and a locally rate-limited AWS call. Nothing here lists metric names by
//! hand.
//!
//! The Prometheus test needs the `prometheus` binary (Debian's package;
//! `.ci/install-prometheus`). Without it the test prints why and passes,
//! unless `ACCOUNT_LINK_TEST_REQUIRE_PROMETHEUS` is set (as `.ci/run` sets
//! it): then it fails.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use account_link_service::emulator::{Emulator, Fault, FaultKind, RunningEmulator};
use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_client::AccountLinkServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{SOURCE, TARGET, fresh_database_url, reason};
use crate::process::{connect_when_listening, free_port};

/// The repository's deploy/ directory.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// A `serve --dev` process of this test, killed when dropped.
struct Served {
    child: tokio::process::Child,
    metrics_addr: SocketAddr,
    client: AccountLinkServiceClient<Channel>,
    emulator: RunningEmulator,
}

/// Starts `serve --dev` against an emulator of this test, with one
/// in-flight RPC allowed (so that a second concurrent one is shed) and an
/// upstream budget of one call a second per acting account (so that a
/// second quick call on one account is refused locally).
async fn serve_dev() -> Served {
    let emulator = Emulator::new().spawn().await.unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args(["serve", "--dev"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--database-url", &fresh_database_url()])
        .args(["--aws-endpoint-url", &emulator.endpoint_url()])
        .args(["--aws-max-attempts", "1"])
        .args(["--max-in-flight", "1"])
        .args(["--upstream-rate-per-sec", "1", "--upstream-burst", "1"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = connect_when_listening(&mut child, port).await;
    Served {
        child,
        metrics_addr: ([127, 0, 0, 1], metrics_port).into(),
        client,
        emulator,
    }
}

fn list(account: &str) -> pb::ListAccountLinksRequest {
    pb::ListAccountLinksRequest {
        account_id: account.into(),
        ..Default::default()
    }
}

impl Served {
    /// Makes calls after which every metric of the service has a sample.
    /// Each AWS call is on an acting account of its own (the upstream
    /// budget is one call a second per account).
    async fn exercise(&mut self) {
        let client = &mut self.client;
        let emulator = self.emulator.emulator();
        let create = pb::CreateAccountLinkInvitationRequest {
            account_id: SOURCE.into(),
            target_account_id: TARGET.into(),
            client_token: "observability-1".into(),
        };
        // New, then replayed: OK answers, idempotency outcomes, an AWS call.
        client
            .create_account_link_invitation(create.clone())
            .await
            .unwrap();
        client.create_account_link_invitation(create).await.unwrap();
        // A caller error before any AWS call, and one AWS answers.
        let bad = client
            .get_account_link(pb::GetAccountLinkRequest {
                account_id: "333333333333".into(),
                link_id: "bad".into(),
                linked_account_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
        let missing = client
            .get_account_link(pb::GetAccountLinkRequest {
                account_id: "333333333333".into(),
                link_id: "link-doesnotexist1".into(),
                linked_account_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
        // A server error: AWS answers InternalServerException.
        emulator.inject_fault(Fault::new(FaultKind::InternalServerError, 1));
        let failed = client.list_account_links(list("444444444444")).await;
        assert_eq!(
            failed.unwrap_err().code(),
            Code::Unavailable,
            "InternalServerException"
        );
        // A shed RPC: one call is held at the emulator (the one in-flight
        // slot), the next is refused at once.
        emulator.inject_fault(Fault::new(FaultKind::Latency { millis: 3_000 }, 1));
        let calls = emulator.calls().len();
        let mut held_client = client.clone();
        let held =
            tokio::spawn(async move { held_client.list_account_links(list("666666666666")).await });
        while emulator.calls().len() == calls {
            tokio::task::yield_now().await;
        }
        let shed = client
            .list_account_links(list("777777777777"))
            .await
            .unwrap_err();
        assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
        held.await.unwrap().expect("the held call completes");
        // A locally rate-limited AWS call: the second within the second.
        let mut limited = None;
        for _ in 0..10 {
            if let Err(status) = client.list_account_links(list("555555555555")).await {
                limited = Some(status);
                break;
            }
        }
        let limited = limited.expect("a call over the budget of one a second is refused");
        assert_eq!(reason(&limited), "LOCAL_RATE_LIMITED", "{limited:?}");
    }

    /// The sample names of one scrape of `/metrics` (histograms as their
    /// `_bucket`, `_sum` and `_count` series).
    async fn exported_names(&self) -> BTreeSet<String> {
        let (status, body) = http_get(self.metrics_addr, "/metrics")
            .await
            .expect("metrics answer");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
            .collect()
    }

    /// Stops the process (SIGKILL; this test wants nothing from its drain).
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// One HTTP/1.1 GET of `path_and_query` on `addr`: the status and the body.
async fn http_get(addr: SocketAddr, path_and_query: &str) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::get(path_and_query)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The rules of rules.yml, read line by line. The file keeps to one shape
/// for this: `- record: name` / `- alert: Name`, then `expr:` either on one
/// line or as a `|` block indented below it, and `runbook_url:` on one line.
#[derive(Debug, Default)]
struct Rules {
    /// Every `expr`, in file order.
    exprs: Vec<String>,
    /// The names the recording rules define.
    recorded: BTreeSet<String>,
    /// Alert name -> its `runbook_url`.
    runbooks: Vec<(String, String)>,
    /// How many `- record:` and `- alert:` lines there are.
    rules: usize,
}

fn read_rules(text: &str) -> Rules {
    let mut rules = Rules::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut alert = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let value = |key: &str| {
            trimmed
                .strip_prefix(key)
                .map(|v| v.trim().trim_matches('"').to_owned())
        };
        if let Some(name) = value("- record:") {
            rules.recorded.insert(name);
            rules.rules += 1;
        } else if let Some(name) = value("- alert:") {
            alert = Some(name);
            rules.rules += 1;
        } else if let Some(url) = value("runbook_url:") {
            let name = alert.take().expect("runbook_url after its alert");
            rules.runbooks.push((name, url));
        } else if let Some(expr) = value("expr:") {
            if expr.starts_with('|') || expr.starts_with('>') {
                let indent = line.len() - trimmed.len();
                let mut block = Vec::new();
                while let Some(next) = lines.get(i + 1) {
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    block.push(next.trim());
                    i += 1;
                }
                rules.exprs.push(block.join("\n"));
            } else {
                rules.exprs.push(expr);
            }
        }
        i += 1;
    }
    rules
}

/// Every PromQL query of the dashboard JSON (`expr` of each panel target),
/// and the selectors of its `label_values(...)` template variables.
fn dashboard_queries(dashboard: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    fn walk(value: &serde_json::Value, exprs: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => exprs.push(s.clone()),
                        _ => walk(v, exprs),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .expect("a query variable has a query")
                .to_owned()
        })
        .collect();
    (exprs, variables)
}

/// PromQL words that are not metric names: aggregation operators, keywords
/// and constants (Prometheus docs, "Operators" and "Functions").
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
];

/// The metric names `expr` selects: identifiers that stand alone or before
/// `{` / `[`, leaving out function calls, the words of [`PROMQL_WORDS`],
/// label names (inside `{}` and the lists of `by`/`without`/`on`/...),
/// durations, numbers, strings and Grafana variables (`$x`, `${x}`).
/// Grafana's `label_values(selector, label)` yields the selector's names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // The index after the bracket that closes the one at `open`, skipping
    // quoted strings.
    let close = |open: usize| -> usize {
        let (up, down) = match chars[open] {
            '(' => ('(', ')'),
            '{' => ('{', '}'),
            _ => ('[', ']'),
        };
        let (mut depth, mut j) = (0, open);
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => {
                    let quote = chars[j];
                    j += 1;
                    while j < chars.len() && chars[j] != quote {
                        j += if chars[j] == '\\' { 2 } else { 1 };
                    }
                }
                c if c == up => depth += 1,
                c if c == down => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        chars.len()
    };
    let next_non_space = |from: usize| (from..chars.len()).find(|&j| !chars[j].is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let quote = c;
            i += 1;
            while i < chars.len() && chars[i] != quote {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' {
            i = close(i);
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = close(i);
            }
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let paren = next_non_space(i).filter(|&j| chars[j] == '(');
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                if let Some(open) = paren {
                    i = close(open); // a list of label names
                }
            } else if word == "label_values" {
                let open = paren.expect("label_values(");
                let end = close(open);
                // The selector ends at the last comma outside `{}`.
                let mut depth = 0;
                let mut selector_end = end - 1;
                for (j, c) in chars.iter().enumerate().take(end - 1).skip(open + 1) {
                    match c {
                        '{' | '(' => depth += 1,
                        '}' | ')' => depth -= 1,
                        ',' if depth == 0 => selector_end = j,
                        _ => {}
                    }
                }
                let selector: String = chars[open + 1..selector_end].iter().collect();
                names.extend(metric_names(&selector));
                i = end;
            } else if paren.is_none() && !PROMQL_WORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_metric_names_leave_out_functions_labels_and_durations() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (method, code) (rate(a_total{code!="OK", method=~"$method"}[$__rate_interval])) / ignoring (code) group_left b:c:rate5m offset 5m > bool 0.5"#
        ),
        ["a_total", "b:c:rate5m"]
    );
    assert_eq!(
        names("histogram_quantile(0.99, sum without (instance) (rate(x_bucket[5m]))) > 1e3"),
        ["x_bucket"]
    );
    assert_eq!(
        names(r#"up{job="account-link"} == 0 and on (instance) absent(y) or vector(1)"#),
        ["up", "y"]
    );
    assert_eq!(
        names(r#"label_values(z_total{job=~"$job", le="0.5"}, instance)"#),
        ["z_total"]
    );
    assert_eq!(names(r#"label_values(w{a="1", b="2"})"#), ["w"]);
    assert_eq!(names(r#"sum(rate(q[1m])) by (le)"#), ["q"]);
}

#[test]
fn every_alert_links_to_a_runbook_entry_of_the_readme() {
    let rules =
        read_rules(&std::fs::read_to_string(deploy_dir().join("prometheus/rules.yml")).unwrap());
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let runbook = readme
        .split_once("\n### Runbook\n")
        .expect("README has a Runbook section")
        .1;
    let runbook = runbook.split("\n## ").next().unwrap();
    let anchors: BTreeSet<&str> = runbook
        .split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(id, _)| id))
        .collect();
    let alerts = rules.rules - rules.recorded.len();
    assert!(alerts >= 9, "{rules:?}");
    assert_eq!(
        rules.runbooks.len(),
        alerts,
        "every alert has a runbook_url"
    );
    for (alert, url) in &rules.runbooks {
        let anchor = url
            .strip_prefix("README.md#")
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url} is not README.md#<anchor>"));
        assert!(
            anchors.contains(anchor),
            "{alert}: no <a id=\"{anchor}\"> under README's Runbook (there are {anchors:?})"
        );
    }
}

#[tokio::test]
async fn dashboard_and_rules_query_only_metrics_the_service_exports() {
    let rules =
        read_rules(&std::fs::read_to_string(deploy_dir().join("prometheus/rules.yml")).unwrap());
    assert_eq!(
        rules.exprs.len(),
        rules.rules,
        "one expr per rule read from rules.yml"
    );
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/dashboards/account-link.json"))
            .unwrap(),
    )
    .unwrap();
    let (panel_exprs, variables) = dashboard_queries(&dashboard);
    assert!(panel_exprs.len() >= 15, "{panel_exprs:?}");

    let mut app = serve_dev().await;
    app.exercise().await;
    let exported = app.exported_names().await;
    app.kill().await;

    let mut queried: BTreeSet<(String, String)> = BTreeSet::new();
    let sources = rules
        .exprs
        .iter()
        .map(|e| ("rules.yml", e))
        .chain(panel_exprs.iter().map(|e| ("dashboard", e)))
        .chain(variables.iter().map(|e| ("dashboard variable", e)));
    for (source, expr) in sources {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{source}: no metric in {expr}");
        queried.extend(names.into_iter().map(|n| (n, format!("{source}: {expr}"))));
    }
    // Known besides what the service exports: the recording rules' own
    // names, and `up`, which Prometheus writes for every scrape target.
    let unknown: Vec<&(String, String)> = queried
        .iter()
        .filter(|(name, _)| {
            !exported.contains(name) && !rules.recorded.contains(name) && name != "up"
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "queried but not exported: {unknown:#?}\nexported: {exported:#?}"
    );
    // Every family of the service is there to be checked against.
    for family in [
        "accountlink_rpc_requests_total",
        "accountlink_rpc_duration_seconds_bucket",
        "accountlink_upstream_requests_total",
        "accountlink_load_shed_total",
        "accountlink_upstream_rate_limited_total",
        "accountlink_health_serving",
        "accountlink_db_pool_connections",
    ] {
        assert!(
            exported.contains(family),
            "{family} not exported: {exported:#?}"
        );
    }
}

/// `s` percent-encoded for a URL query value (RFC 3986 unreserved kept).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `prometheus` binary on `PATH`, if any.
fn prometheus_binary() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("prometheus"))
        .find(|path| path.is_file())
}

/// A Prometheus process of this test on a loopback port, with its config
/// and storage in a temporary directory; killed, and the directory
/// removed, when dropped (a failing test included).
struct Prometheus {
    child: tokio::process::Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    /// Starts `binary` scraping `target` every second, with rules.yml loaded
    /// and evaluated every second.
    fn start(binary: &Path, target: SocketAddr) -> Self {
        let dir =
            std::env::temp_dir().join(format!("als-prometheus-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: account-link\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = deploy_dir().join("prometheus/rules.yml").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, addr, dir }
    }

    /// The `data` of a successful answer of the HTTP API at `path`, or why not.
    async fn api(&self, path: &str) -> Result<serde_json::Value, String> {
        let (status, body) = http_get(self.addr, path).await?;
        let answer: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || answer["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(answer["data"].clone())
    }

    /// Polls `probe` until it returns `Some`, for up to 60 s. Prometheus
    /// scrapes and evaluates on its own clock, in another process: there is
    /// nothing to wait on but its API, asked every 100 ms.
    async fn until<T>(&mut self, what: &str, mut probe: impl AsyncFnMut(&Self) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(done) = probe(self).await {
                return done;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "prometheus exited ({status}) waiting for {what}: {}",
                    self.log()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what} within 60 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Kills the process and waits for it; [`Drop`] removes the directory.
    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn prometheus_scrapes_serve_dev_and_evaluates_the_rules_and_the_dashboard() {
    let Some(binary) = prometheus_binary() else {
        let required = std::env::var_os("ACCOUNT_LINK_TEST_REQUIRE_PROMETHEUS").is_some();
        assert!(
            !required,
            "prometheus is not on PATH and ACCOUNT_LINK_TEST_REQUIRE_PROMETHEUS is set (run .ci/install-prometheus)"
        );
        eprintln!(
            "SKIPPED prometheus_scrapes_serve_dev_and_evaluates_the_rules_and_the_dashboard: \
             no prometheus on PATH (apt-get install prometheus, or .ci/install-prometheus; \
             ACCOUNT_LINK_TEST_REQUIRE_PROMETHEUS=1 makes this a failure)"
        );
        return;
    };
    let mut app = serve_dev().await;
    let mut prometheus = Prometheus::start(&binary, app.metrics_addr);
    prometheus
        .until("readiness", async |p| {
            http_get(p.addr, "/-/ready")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        })
        .await;
    app.exercise().await;

    // The target is up.
    let scrape_url = format!("http://{}/metrics", app.metrics_addr);
    prometheus
        .until("the target up", async |p| {
            let data = p.api("/api/v1/targets?state=active").await.ok()?;
            data["activeTargets"]
                .as_array()?
                .iter()
                .find(|t| t["scrapeUrl"] == scrape_url.as_str() && t["health"] == "up")
                .cloned()
        })
        .await;

    // The RPCs made are in its storage, labelled by method and code.
    let (created, seen_at) = prometheus
        .until("accountlink_rpc_requests_total", async |p| {
            let data = p
                .api("/api/v1/query?query=accountlink_rpc_requests_total")
                .await
                .ok()?;
            let series = data["result"].as_array()?;
            series
                .iter()
                .find(|s| {
                    s["metric"]["method"] == "CreateAccountLinkInvitation"
                        && s["metric"]["code"] == "OK"
                        && s["metric"]["job"] == "account-link"
                })
                .map(|s| {
                    let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                    (value, s["value"][0].as_f64().unwrap())
                })
        })
        .await;
    assert_eq!(created, 2.0, "a new create and its replay");

    // Every rule of rules.yml has been evaluated on that data (after the
    // instant it was seen at), without an error.
    let rules =
        read_rules(&std::fs::read_to_string(deploy_dir().join("prometheus/rules.yml")).unwrap());
    let after_data = |rule: &serde_json::Value| {
        rule["lastEvaluation"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|t| t.unix_timestamp_nanos() as f64 / 1e9 > seen_at)
    };
    let evaluated = prometheus
        .until("every rule evaluated on the data", async |p| {
            let data = p.api("/api/v1/rules").await.ok()?;
            let all: Vec<serde_json::Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            (all.len() == rules.rules && all.iter().all(after_data)).then_some(all)
        })
        .await;
    for rule in &evaluated {
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // Every dashboard query evaluates, with Grafana's variables as "all".
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/dashboards/account-link.json"))
            .unwrap(),
    )
    .unwrap();
    for expr in dashboard_queries(&dashboard).0 {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", ".*")
            .replace("$instance", ".*")
            .replace("$method", ".*");
        let answer = prometheus
            .api(&format!("/api/v1/query?query={}", url_encode(&promql)))
            .await;
        assert!(answer.is_ok(), "{promql}: {answer:?}");
    }
    prometheus.stop().await;
    app.kill().await;
}
