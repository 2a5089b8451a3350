//! Binding through the API, end to end (issue 7's benchmark).
//!
//! For each N: a fresh store under /var/tmp, the registry, the controllers
//! and the API server in this process, as `strata serve` runs them. N
//! hostPath PVs are created over the unix socket (not timed beyond their
//! rate), then N claims that fit them, timed from the first claim's POST
//! until a watch has seen every claim Bound. For N = 10,000, stock kubectl
//! then lists them over HTTPS, timed with hyperfine.
//!
//! Run: `cargo bench -p strata-kube --bench bind_api`; sizes with
//! `BIND_API_SIZES=1000,10000` (default 1000,10000,50000). Without `--bench`
//! (as `cargo test --benches` runs it) it binds 200 pairs as a smoke test.

use std::collections::HashSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_kube::SqliteStore;
use strata_kube::controllers::{Config, Controllers, Drivers};
use strata_kube::registry::Registry;
use strata_kube::server::{Pki, ServerConfig};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 50_000];
const SMOKE_SIZE: usize = 200;
/// Concurrent keep-alive connections the objects are created over, as a
/// few parallel clients (kubectl apply, an operator) would.
const CONNECTIONS: usize = 8;
/// The size whose claims kubectl lists, and the targets for it.
const KUBECTL_SIZE: usize = 10_000;
const TARGET_END_TO_END: Duration = Duration::from_secs(10);
const TARGET_KUBECTL: Duration = Duration::from_secs(1);
/// A run that takes longer than this has a bug, not a slow binder.
const GIVE_UP: Duration = Duration::from_secs(600);
const PVS: &str = "/api/v1/persistentvolumes";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

fn main() -> Result<()> {
    let sizes = sizes()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // As `strata serve` runs its server.
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Every run keeps its folder until the end: deleting a store right
    // before the next run's writes would slow them (the disk discards
    // online).
    let mut folders = Vec::new();
    let mut reports = Vec::new();
    for n in sizes {
        let folder = tempfile::Builder::new()
            .prefix("strata-kube-bind-api-")
            .tempdir_in("/var/tmp")?;
        reports.push(run(&runtime, folder.path(), n)?);
        folders.push(folder);
    }
    print_summary(&reports);
    Ok(())
}

/// The sizes to run: `BIND_API_SIZES`, else the defaults under `cargo
/// bench` and a smoke size otherwise.
fn sizes() -> Result<Vec<usize>> {
    if let Ok(raw) = std::env::var("BIND_API_SIZES") {
        return raw
            .split(',')
            .map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                format!("BIND_API_SIZES must be positive counts separated by commas, like 1000,10000; got {raw:?}").into()
            });
    }
    if std::env::args().any(|a| a == "--bench") {
        Ok(DEFAULT_SIZES.to_vec())
    } else {
        Ok(vec![SMOKE_SIZE])
    }
}

/// What one size measured.
struct Report {
    pairs: usize,
    pvs_created: Duration,
    pvs_available: Duration,
    claims_created: Duration,
    all_bound: Duration,
    rss: Memory,
}

/// One size: serve, load the PVs, time the claims, then kubectl.
fn run(runtime: &Runtime, folder: &Path, n: usize) -> Result<Report> {
    println!("== {n} PV/claim pairs (store in {})", folder.display());
    let server = Server::start(runtime, folder)?;
    let socket = server.socket.clone();
    let report = runtime
        .block_on(async { tokio::time::timeout(GIVE_UP, bind(&socket, folder, n)).await })
        .map_err(|_| format!("{n} pairs were not all bound after {GIVE_UP:?}"))??;
    print_report(&report);
    if n == KUBECTL_SIZE {
        time_kubectl(folder, &server, n)?;
    }
    server.stop(runtime)?;
    Ok(report)
}

/// The control plane in this process, as `strata serve` starts it.
struct Server {
    socket: PathBuf,
    address: String,
    pki: Pki,
    controllers: Controllers,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::result::Result<(), strata_kube::server::ServerError>>,
}

impl Server {
    fn start(runtime: &Runtime, folder: &Path) -> Result<Server> {
        let store = SqliteStore::open(&folder.join("objects.db"))?;
        let registry = Registry::new(Arc::new(store))?;
        // No claim here names a class, and there is no default class, so
        // nothing is provisioned and no CSI driver needs to run.
        let drivers = Drivers {
            builtin_name: "csi.strata.dev".into(),
            builtin_endpoint: format!("unix://{}", folder.join("csi.sock").display()),
        };
        let config = Config {
            drivers,
            staging_root: folder.join("staging"),
            node_agent: None,
        };
        let controllers = Controllers::start(&registry, config);
        let pki = Pki::ensure(&folder.join("pki"))?;
        let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let socket = folder.join("api.sock");
        let config = ServerConfig {
            address,
            socket: socket.clone(),
            pki: pki.clone(),
            logs: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let served = runtime.spawn(strata_kube::server::serve(registry, config, async {
            let _ = stopped.await;
        }));
        runtime.block_on(wait_for_socket(&socket))?;
        Ok(Server {
            socket,
            address: address.to_string(),
            pki,
            controllers,
            stop,
            served,
        })
    }

    fn stop(self, runtime: &Runtime) -> Result<()> {
        let _ = self.stop.send(());
        runtime.block_on(self.served)??;
        self.controllers.stop();
        Ok(())
    }
}

async fn wait_for_socket(socket: &Path) -> Result<()> {
    for _ in 0..200 {
        if UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!(
        "the API server did not answer on {} within 5 s",
        socket.display()
    )
    .into())
}

/// Loads N PVs, then times N claims until all are Bound.
async fn bind(socket: &Path, folder: &Path, n: usize) -> Result<Report> {
    let pvs: Vec<Bytes> = (0..n).map(|i| volume(folder, i)).collect();
    let claims: Vec<Bytes> = (0..n).map(claim).collect();

    let start = Instant::now();
    post_all(socket, PVS, pvs).await?;
    let pvs_created = start.elapsed();
    wait_for_phase(socket, PVS, "Available", n).await?;
    let pvs_available = start.elapsed();

    let start = Instant::now();
    let bound = tokio::spawn(wait_for_phase(socket.to_path_buf(), CLAIMS, "Bound", n));
    post_all(socket, CLAIMS, claims).await?;
    let claims_created = start.elapsed();
    bound.await??;
    let all_bound = start.elapsed();
    Ok(Report {
        pairs: n,
        pvs_created,
        pvs_available,
        claims_created,
        all_bound,
        rss: Memory::now()?,
    })
}

/// Sizes 1..10 Gi in turn, so matching has buckets to choose among.
fn volume(folder: &Path, i: usize) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": format!("pv-{i:05}")},
        "spec": {
            "capacity": {"storage": format!("{}Gi", i % 10 + 1)},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": folder.join("volumes").join(i.to_string())},
        },
    });
    Bytes::from(body.to_string())
}

/// Claim i asks for 500 MiB more than the size below volume i's, so the
/// smallest volume it fits is one of volume i's size, and every claim finds
/// one.
fn claim(i: usize) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": format!("claim-{i:05}"), "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": format!("{}Mi", (i % 10) * 1024 + 500)}},
        },
    });
    Bytes::from(body.to_string())
}

type Sender = SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection over the unix socket.
async fn connect(socket: &Path) -> Result<Sender> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // A broken connection shows as the failure of its next request.
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Response<Incoming>> {
    sender.ready().await?;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    Ok(sender.send_request(request).await?)
}

/// `response` if its status is `expected`, else an error naming the
/// request and quoting the server's answer.
async fn expect_status(
    response: Response<Incoming>,
    expected: StatusCode,
    what: &str,
) -> Result<Response<Incoming>> {
    let status = response.status();
    if status == expected {
        return Ok(response);
    }
    let body = response.into_body().collect().await?.to_bytes();
    Err(format!(
        "{what} answered {status}: {}",
        String::from_utf8_lossy(&body)
    )
    .into())
}

/// The whole answer, if its status is `expected`.
async fn read_answer(
    response: Response<Incoming>,
    expected: StatusCode,
    what: &str,
) -> Result<Bytes> {
    let response = expect_status(response, expected, what).await?;
    Ok(response.into_body().collect().await?.to_bytes())
}

/// POSTs every body to `path`, spread over `CONNECTIONS` connections.
async fn post_all(socket: &Path, path: &'static str, bodies: Vec<Bytes>) -> Result<()> {
    let bodies = Arc::new(bodies);
    let mut tasks = JoinSet::new();
    for first in 0..CONNECTIONS {
        let (socket, bodies) = (socket.to_path_buf(), bodies.clone());
        tasks.spawn(async move {
            let mut sender = connect(&socket).await?;
            for body in bodies.iter().skip(first).step_by(CONNECTIONS) {
                let response = send(&mut sender, Method::POST, path, body.clone()).await?;
                read_answer(response, StatusCode::CREATED, &format!("POST {path}")).await?;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// The parts of a listed or watched object this benchmark reads.
#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    metadata: Metadata,
    /// A Value, because in an ERROR event the object is a Status, whose
    /// `status` is a string.
    #[serde(default)]
    status: Value,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resource_version: String,
}

#[derive(Deserialize)]
struct List {
    metadata: Metadata,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    change: String,
    object: Item,
}

impl Item {
    fn phase(&self) -> Option<&str> {
        self.status.get("phase").and_then(Value::as_str)
    }
}

/// Returns once `count` objects under `path` are in `phase`, as a client
/// would learn it: a list, then a watch from the list's resourceVersion,
/// listing again if the watch ends early (as an informer does).
async fn wait_for_phase(
    socket: impl AsRef<Path>,
    path: &'static str,
    phase: &'static str,
    count: usize,
) -> Result<()> {
    let socket = socket.as_ref();
    loop {
        let list = list(socket, path).await?;
        let mut reached: HashSet<String> = list
            .items
            .into_iter()
            .filter(|item| item.phase() == Some(phase))
            .map(|item| item.metadata.name)
            .collect();
        if reached.len() >= count
            || watch_until(
                socket,
                path,
                &list.metadata.resource_version,
                phase,
                &mut reached,
                count,
            )
            .await?
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list(socket: &Path, path: &str) -> Result<List> {
    let mut sender = connect(socket).await?;
    let response = send(&mut sender, Method::GET, path, Bytes::new()).await?;
    let body = read_answer(response, StatusCode::OK, &format!("GET {path}")).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Follows changes after `revision`, keeping `reached` current; true once it
/// holds `count` names, false if the watch ended first.
async fn watch_until(
    socket: &Path,
    path: &str,
    revision: &str,
    phase: &str,
    reached: &mut HashSet<String>,
    count: usize,
) -> Result<bool> {
    let mut sender = connect(socket).await?;
    let url = format!("{path}?watch=true&resourceVersion={revision}");
    let response = send(&mut sender, Method::GET, &url, Bytes::new()).await?;
    let response = expect_status(response, StatusCode::OK, &format!("GET {url}")).await?;
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(length) = pending[start..].iter().position(|&b| b == b'\n') {
            let event: WatchEvent = serde_json::from_slice(&pending[start..start + length])?;
            start += length + 1;
            match event.change.as_str() {
                // Fell behind or expired: the caller lists again.
                "ERROR" => return Ok(false),
                "DELETED" => reached.remove(&event.object.metadata.name),
                _ if event.object.phase() == Some(phase) => {
                    reached.insert(event.object.metadata.name)
                }
                _ => reached.remove(&event.object.metadata.name),
            };
            if reached.len() >= count {
                return Ok(true);
            }
        }
        pending.drain(..start);
    }
    Ok(false)
}

/// Resident and peak memory of this process (server, controllers and the
/// benchmark's own client together).
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn now() -> Result<Memory> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .trim()
                        .strip_suffix(" kB")?
                        .parse()
                        .ok()
                })
                .ok_or_else(|| format!("no {name} in /proc/self/status"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rate(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_report(r: &Report) {
    println!(
        "  PVs: created in {:.2} s ({:.0}/s), all Available {:.2} s after the first POST",
        r.pvs_created.as_secs_f64(),
        rate(r.pairs, r.pvs_created),
        r.pvs_available.as_secs_f64(),
    );
    println!(
        "  claims: created in {:.2} s ({:.0}/s), all Bound {:.2} s after the first POST: {:.0} pairs/s",
        r.claims_created.as_secs_f64(),
        rate(r.pairs, r.claims_created),
        r.all_bound.as_secs_f64(),
        rate(r.pairs, r.all_bound),
    );
    if r.pairs == KUBECTL_SIZE {
        println!(
            "  target: {} pairs Bound in under {:?}: {}",
            r.pairs,
            TARGET_END_TO_END,
            verdict(r.all_bound < TARGET_END_TO_END)
        );
    }
    println!(
        "  process RSS after loading the pairs: {:.1} MiB (peak {:.1} MiB)",
        mib(r.rss.rss_kib),
        mib(r.rss.peak_kib)
    );
}

fn print_summary(reports: &[Report]) {
    println!(
        "\n| pairs | PV creates/s | claims created | all Bound (end to end) | pairs/s | RSS after | peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} | {:.0} | {:.2} s | {:.2} s | {:.0} | {:.1} MiB | {:.1} MiB |",
            r.pairs,
            rate(r.pairs, r.pvs_created),
            r.claims_created.as_secs_f64(),
            r.all_bound.as_secs_f64(),
            rate(r.pairs, r.all_bound),
            mib(r.rss.rss_kib),
            mib(r.rss.peak_kib),
        );
    }
}

/// Times stock kubectl listing the claims and volumes over HTTPS with
/// hyperfine, after checking once that it sees every claim Bound.
fn time_kubectl(folder: &Path, server: &Server, n: usize) -> Result<()> {
    for tool in ["kubectl", "hyperfine"] {
        let found = Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            println!("  kubectl timing skipped: {tool} is not installed");
            return Ok(());
        }
    }
    let kubeconfig = folder.join("kubeconfig");
    let config = server
        .pki
        .kubeconfig(&format!("https://{}", server.address))?;
    std::fs::write(&kubeconfig, config)?;
    let kubectl = format!(
        "kubectl --kubeconfig {} --cache-dir {}",
        kubeconfig.display(),
        folder.join("kubectl-cache").display()
    );
    check_kubectl_sees_all_bound(&kubectl, n)?;
    let results = folder.join("kubectl.json");
    let status = Command::new("hyperfine")
        .args(["-N", "--warmup", "2", "--runs", "10", "--export-json"])
        .arg(&results)
        .args(["-n", "kubectl get pvc", &format!("{kubectl} get pvc")])
        .args([
            "-n",
            "kubectl get pvc -o wide",
            &format!("{kubectl} get pvc -o wide"),
        ])
        .args(["-n", "kubectl get pv", &format!("{kubectl} get pv")])
        .status()?;
    if !status.success() {
        return Err(format!("hyperfine failed ({status}); its output is above").into());
    }
    print_timings(&results, n)
}

/// So the timed commands are known to list what they should.
fn check_kubectl_sees_all_bound(kubectl: &str, n: usize) -> Result<()> {
    let mut words = kubectl.split_whitespace();
    let listed = Command::new(words.next().unwrap_or("kubectl"))
        .args(words)
        .args(["get", "pvc", "--no-headers"])
        .output()?;
    let text = String::from_utf8_lossy(&listed.stdout);
    let bound = text
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some("Bound"))
        .count();
    if !listed.status.success() || bound != n {
        return Err(format!(
            "kubectl get pvc listed {bound} Bound claims, expected {n}: {}",
            String::from_utf8_lossy(&listed.stderr)
        )
        .into());
    }
    Ok(())
}

/// hyperfine's JSON export, the fields read from it.
#[derive(Deserialize)]
struct Timings {
    results: Vec<Timing>,
}

#[derive(Deserialize)]
struct Timing {
    command: String,
    median: f64,
    min: f64,
    max: f64,
}

fn print_timings(results: &Path, n: usize) -> Result<()> {
    let timings: Timings = serde_json::from_slice(&std::fs::read(results)?)?;
    for t in timings.results {
        print!(
            "  {} ({n} objects): median {:.0} ms (min {:.0}, max {:.0})",
            t.command,
            t.median * 1000.0,
            t.min * 1000.0,
            t.max * 1000.0,
        );
        // The target is for the plain listing of claims.
        if t.command == "kubectl get pvc" {
            let met = t.median < TARGET_KUBECTL.as_secs_f64();
            print!("; target under {TARGET_KUBECTL:?}: {}", verdict(met));
        }
        println!();
    }
    Ok(())
}
