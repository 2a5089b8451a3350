//! `strata serve` for the Kubernetes tests: a real server on a free local
//! port, and stock kubectl pointed at it through `strata kubeconfig`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::Strata;
use super::server::ServerProcess;

pub const NODE: &str = "node1";

pub struct KubeServer {
    process: ServerProcess,
    pub address: String,
    pub kubeconfig: PathBuf,
    cache: PathBuf,
}

impl KubeServer {
    /// Starts `strata serve` for `store` as node `node1`; returns once
    /// kubectl gets an answer.
    pub fn start(store: &Strata) -> KubeServer {
        super::require("kubectl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let args = ["serve", "--address", &address, "--node-name", NODE];
        let process = ServerProcess::start(store, "serve", &args, || {
            std::net::TcpStream::connect(&address).is_ok()
        });
        let kubeconfig = store.path("kubeconfig");
        let config = store.ok(&["kubeconfig", "--address", &address]);
        std::fs::write(&kubeconfig, config).expect("writing the kubeconfig");
        KubeServer {
            process,
            address,
            kubeconfig,
            cache: store.path("kubectl-cache"),
        }
    }

    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        command
    }

    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.kubectl_command(args);
        match stdin {
            Some(input) => super::output_with_stdin(&mut command, input.as_bytes()),
            None => command.output().expect("running kubectl"),
        }
    }

    /// kubectl's stdout; panics with its stderr and the server log if it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.expect_ok(args, self.kubectl_output(args, None))
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> String {
        let args = ["apply", "-f", "-"];
        self.expect_ok(&args, self.kubectl_output(&args, Some(yaml)))
    }

    /// kubectl's stderr; panics if it succeeds.
    pub fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn expect_ok(&self, args: &[&str], out: Output) -> String {
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.process.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get KIND NAME -o jsonpath=PATH`.
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let template = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend(what);
        args.extend(["-o", &template]);
        self.kubectl(&args)
    }

    /// Waits (kubectl wait, 60 s) until `what` has `path` equal to `value`.
    pub fn wait_for(&self, what: &str, path: &str, value: &str) {
        let condition = format!("--for=jsonpath={path}={value}");
        self.kubectl(&["wait", &condition, what, "--timeout=60s"]);
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}

/// A seed manifest from examples/seeds, with its host folders moved into
/// the store's scratch folder.
pub fn seed(s: &Strata, name: &str) -> String {
    let path = super::repo_root().join("examples/seeds").join(name);
    let text = std::fs::read_to_string(&path).expect("seed manifest");
    text.replace("/var/tmp/strata-seeds", &s.path("seeds").to_string_lossy())
}

/// Polls `f` (every 100 ms, for up to 60 s) until it has an answer.
pub fn eventually<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(answer) = f() {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited 60 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
