//! Driving a third-party volume plugin as a [`VolumeDriver`], with Docker's
//! client rules: lazy activation once, retries while the plugin cannot be
//! reached, per-call timeouts, `Err` under any status.
//!
//! The API is synchronous because its callers are: each driver owns a
//! small single-threaded runtime and blocks on it for every call.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_volume::driver::{DriverError, DriverResult, DriverVolume, Scope, VolumeDriver};
use tokio::runtime::Runtime;

use crate::discovery::{DiscoveryError, Endpoint, PluginDirs};
use crate::protocol::*;
use crate::tls::TlsError;
use crate::transport::{AttemptError, Transport};

/// Seconds (a float) that every call may take, overriding Docker's.
pub const TIMEOUT_ENV: &str = "STRATA_PLUGIN_TIMEOUT";
/// Seconds (a float) to keep trying to reach a plugin.
pub const RETRY_BUDGET_ENV: &str = "STRATA_PLUGIN_RETRY_BUDGET";

/// The longest wait between two connection attempts, as Docker.
const MAX_BACKOFF: Duration = Duration::from_secs(16);

/// How an error body is shown at most.
const MAX_SHOWN: usize = 512;

/// How long calls may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Create and Mount, which may provision storage.
    pub create_mount: Duration,
    /// Every other call, Activate included.
    pub other: Duration,
    /// How long to keep trying to connect before giving up.
    pub retry_budget: Duration,
}

impl Default for Timeouts {
    /// Docker's: 2 min, 1 min, 30 s.
    fn default() -> Self {
        Timeouts {
            create_mount: Duration::from_secs(120),
            other: Duration::from_secs(60),
            retry_budget: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// Docker's, unless `STRATA_PLUGIN_TIMEOUT` or
    /// `STRATA_PLUGIN_RETRY_BUDGET` say otherwise.
    pub fn from_env() -> Result<Self, RegistryError> {
        let mut timeouts = Timeouts::default();
        if let Some(timeout) = seconds_from_env(TIMEOUT_ENV)? {
            timeouts.create_mount = timeout;
            timeouts.other = timeout;
        }
        if let Some(budget) = seconds_from_env(RETRY_BUDGET_ENV)? {
            timeouts.retry_budget = budget;
        }
        Ok(timeouts)
    }

    fn for_call(&self, method: &str) -> Duration {
        if method == CREATE || method == MOUNT {
            self.create_mount
        } else {
            self.other
        }
    }
}

/// None when unset or empty, as for `STRATA_PLUGIN_DIRS`.
fn seconds_from_env(var: &'static str) -> Result<Option<Duration>, RegistryError> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty());
    value.map(|value| parse_seconds(var, value)).transpose()
}

fn parse_seconds(var: &'static str, value: String) -> Result<Duration, RegistryError> {
    let seconds: Option<f64> = value.trim().parse().ok();
    seconds
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| RegistryError::Env { var, value })
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("volume plugin {name} at {url}: {source}")]
    Tls {
        name: String,
        url: String,
        source: TlsError,
    },
    #[error("cannot start the volume plugin client: {0}")]
    Runtime(#[from] io::Error),
    #[error("{var} must be a number of seconds, like 2.5, not {value:?}")]
    Env { var: &'static str, value: String },
}

/// Finds plugins and makes drivers of them.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    dirs: PluginDirs,
    timeouts: Timeouts,
}

impl Registry {
    pub fn new(dirs: PluginDirs, timeouts: Timeouts) -> Self {
        Registry { dirs, timeouts }
    }

    /// Folders and timeouts from the environment (see [`PluginDirs::from_env`]
    /// and [`Timeouts::from_env`]).
    pub fn from_env() -> Result<Self, RegistryError> {
        Ok(Registry::new(PluginDirs::from_env(), Timeouts::from_env()?))
    }

    /// The plugin called `name` as a driver, or None when no socket or spec
    /// offers it. Nothing is sent to the plugin yet.
    pub fn find(&self, name: &str) -> Result<Option<PluginDriver>, RegistryError> {
        match self.dirs.find(name)? {
            Some(endpoint) => PluginDriver::new(endpoint, self.timeouts).map(Some),
            None => Ok(None),
        }
    }

    /// The names of every plugin found, sorted.
    pub fn scan(&self) -> Vec<String> {
        self.dirs.scan()
    }
}

/// Why a call failed, split as Docker's volume store splits it.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The plugin could not be asked: unreachable, silent, or it hung up.
    #[error("{0}")]
    Network(String),
    /// The plugin answered, with an error or with nonsense.
    #[error("{0}")]
    Plugin(String),
}

/// A volume plugin behind a socket or a URL.
pub struct PluginDriver {
    endpoint: Endpoint,
    timeouts: Timeouts,
    transport: Transport,
    runtime: Runtime,
    /// Set once `Plugin.Activate` succeeded; a failed activation is tried
    /// again on the next call, as Docker forgets a plugin that failed.
    activated: Cell<bool>,
}

impl PluginDriver {
    pub fn new(endpoint: Endpoint, timeouts: Timeouts) -> Result<Self, RegistryError> {
        let transport = Transport::new(&endpoint).map_err(|source| RegistryError::Tls {
            name: endpoint.name.clone(),
            url: endpoint.url.clone(),
            source,
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(PluginDriver {
            endpoint,
            timeouts,
            transport,
            runtime,
            activated: Cell::new(false),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn error(&self, call: &'static str, message: impl Display) -> DriverError {
        DriverError {
            driver: self.endpoint.name.clone(),
            call,
            message: message.to_string(),
        }
    }

    /// Activates the plugin unless done already. Failures are reported
    /// under `call`, the call the user made, as Docker does.
    fn activate(&self, call: &'static str) -> DriverResult<()> {
        if self.activated.get() {
            return Ok(());
        }
        // Docker sends no body at all here, and plugins expect that.
        let answer: ActivateResponse = match self.exchange(ACTIVATE, Bytes::new()) {
            Ok(answer) => answer,
            Err(Failure::Network(message)) => return Err(self.error(call, message)),
            Err(Failure::Plugin(message)) => {
                return Err(self.error(call, format!("{ACTIVATE} failed: {message}")));
            }
        };
        if !answer.implements.iter().any(|i| i == VOLUME_DRIVER) {
            let message = format!(
                "{ACTIVATE} says the plugin implements {:?}, not {VOLUME_DRIVER}; \
                 is {} the right plugin?",
                answer.implements, self.endpoint.name
            );
            return Err(self.error(call, message));
        }
        self.activated.set(true);
        Ok(())
    }

    /// Activates if needed, then makes one call.
    fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        request: &impl Serialize,
    ) -> DriverResult<T> {
        self.activate(method)?;
        self.exchange(method, encode(request))
            .map_err(|f| self.error(method, f))
    }

    fn exchange<T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: Bytes,
    ) -> Result<T, Failure> {
        let (status, answer) = self.runtime.block_on(self.post(method, body))?;
        decode(status, &answer).map_err(Failure::Plugin)
    }

    /// Posts until the plugin answers, the call times out, or the retry
    /// budget is spent. Backoff doubles from 1 s to 16 s, but never sleeps
    /// past the budget, so a short budget gives up on time.
    async fn post(
        &self,
        method: &'static str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let timeout = self.timeouts.for_call(method);
        let budget = self.timeouts.retry_budget;
        let start = Instant::now();
        let mut backoff = Duration::from_secs(1);
        loop {
            let attempt = self.transport.post(method, body.clone());
            let error = match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(AttemptError::Connect(error))) => error,
                Ok(Err(AttemptError::Failed(message))) => return Err(Failure::Network(message)),
                Err(_) => {
                    return Err(Failure::Network(format!(
                        "no answer within {}; the plugin may be stuck, see its logs",
                        seconds(timeout)
                    )));
                }
            };
            let remaining = budget.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                return Err(Failure::Network(format!(
                    "cannot reach the plugin at {} after {}: {}; is the plugin running?",
                    self.endpoint,
                    seconds(budget),
                    describe(&error)
                )));
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl VolumeDriver for PluginDriver {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn create(&self, name: &str, opts: &BTreeMap<String, String>) -> DriverResult<()> {
        // Docker sends null, not {}, when the user gave no options.
        let opts = (!opts.is_empty()).then(|| opts.clone());
        let request = CreateRequest {
            name: name.into(),
            opts,
        };
        self.call::<Empty>(CREATE, &request).map(drop)
    }

    fn remove(&self, name: &str) -> DriverResult<()> {
        self.call::<Empty>(REMOVE, &named(name)).map(drop)
    }

    fn mount(&self, name: &str, id: &str) -> DriverResult<PathBuf> {
        let answer: MountResponse = self.call(MOUNT, &mount_request(name, id))?;
        match answer.mountpoint {
            Some(path) if path.is_absolute() => Ok(path),
            other => Err(self.error(
                MOUNT,
                format!(
                    "the plugin answered Mountpoint {other:?}; it must answer the \
                     absolute host path where it mounted the volume"
                ),
            )),
        }
    }

    fn unmount(&self, name: &str, id: &str) -> DriverResult<()> {
        self.call::<Empty>(UNMOUNT, &mount_request(name, id))
            .map(drop)
    }

    fn path(&self, name: &str) -> DriverResult<Option<PathBuf>> {
        let answer: MountResponse = self.call(PATH, &named(name))?;
        Ok(answer.mountpoint.filter(|p| !p.as_os_str().is_empty()))
    }

    fn get(&self, name: &str) -> DriverResult<Option<DriverVolume>> {
        self.activate(GET)?;
        match self.exchange::<GetResponse>(GET, encode(&named(name))) {
            Ok(answer) => Ok(answer.volume.map(DriverVolume::from)),
            // Docker's volume store reads any answer but success as "not
            // in this driver"; only an unreachable plugin is an error.
            Err(Failure::Plugin(_)) => Ok(None),
            Err(failure) => Err(self.error(GET, failure)),
        }
    }

    fn list(&self) -> DriverResult<Vec<DriverVolume>> {
        let answer: ListResponse = self.call(LIST, &Empty {})?;
        Ok(answer.volumes.into_iter().map(DriverVolume::from).collect())
    }

    fn capabilities(&self) -> DriverResult<Scope> {
        // An optional endpoint: Docker reads a failure, a missing scope or
        // an unknown one as local.
        let answer = self.call::<CapabilitiesResponse>(CAPABILITIES, &Empty {});
        let scope = answer.ok().and_then(|a| a.capabilities);
        match scope.map(|c| c.scope.to_lowercase()).as_deref() {
            Some("global") => Ok(Scope::Global),
            _ => Ok(Scope::Local),
        }
    }
}

fn named(name: &str) -> NameRequest {
    NameRequest { name: name.into() }
}

fn mount_request(name: &str, id: &str) -> MountRequest {
    MountRequest {
        name: name.into(),
        id: id.into(),
    }
}

/// JSON plus the newline Go's encoder ends with, as plugins are used to.
fn encode(request: &impl Serialize) -> Bytes {
    let mut body = serde_json::to_vec(request).expect("requests hold only strings and string maps");
    body.push(b'\n');
    body.into()
}

/// An answer's `Err` wins under any status; then a non-200 status is an
/// error whose text is the body; then the body must be the expected JSON.
fn decode<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, String> {
    if let Ok(ErrorResponse { err }) = serde_json::from_slice(body)
        && !err.is_empty()
    {
        return Err(err);
    }
    if status != StatusCode::OK {
        return Err(match excerpt(body) {
            text if text.is_empty() => format!("the plugin answered {status} with an empty body"),
            text => format!("the plugin answered {status}: {text}"),
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the plugin answered with invalid JSON ({e}): {:?}",
            excerpt(body)
        )
    })
}

/// The start of a body, trimmed, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_SHOWN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into(),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// Short words for the usual ways a connection fails.
fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::NotFound => "the socket does not exist".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected: Result<&str, &str>) {
        let status = StatusCode::from_u16(status).unwrap();
        let got = decode::<MountResponse>(status, body.as_bytes());
        match expected {
            Ok(path) => assert_eq!(got.unwrap().mountpoint, Some(PathBuf::from(path))),
            Err(part) => {
                let err = got.expect_err(body);
                assert!(err.contains(part), "{status} {body:?}: {err}");
            }
        }
    }

    #[test]
    fn decoding_answers() {
        check(200, r#"{"Mountpoint":"/m"}"#, Ok("/m"));
        check(200, r#"{"Mountpoint":"/m","Err":""}"#, Ok("/m"));
        check(200, r#"{"Mountpoint":"/m","Err":"busy"}"#, Err("busy"));
        check(
            500,
            r#"{"Err":"size is required"}"#,
            Err("size is required"),
        );
        check(
            500,
            "disk on fire\n",
            Err("answered 500 Internal Server Error: disk on fire"),
        );
        check(404, "", Err("404 Not Found with an empty body"));
        check(500, "{}", Err("answered 500 Internal Server Error: {}"));
        check(200, "<html>", Err("invalid JSON"));
        check(200, "", Err("invalid JSON"));
    }

    #[test]
    fn long_bodies_are_cut() {
        let shown = excerpt("é".repeat(2000).as_bytes());
        assert_eq!(shown.chars().count(), MAX_SHOWN + 3);
    }

    #[test]
    fn seconds_in_env_values() {
        let parse =
            |value: &str| parse_seconds(TIMEOUT_ENV, value.into()).map_err(|e| e.to_string());
        assert_eq!(parse(" 2.5 "), Ok(Duration::from_millis(2500)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        for bad in [" ", "ten", "-1", "NaN"] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("STRATA_PLUGIN_TIMEOUT must be a number of seconds"),
                "{err}"
            );
        }
    }

    #[test]
    fn call_timeouts() {
        let t = Timeouts::default();
        assert_eq!(t.for_call(CREATE), Duration::from_secs(120));
        assert_eq!(t.for_call(MOUNT), Duration::from_secs(120));
        assert_eq!(t.for_call(GET), Duration::from_secs(60));
        assert_eq!(t.for_call(ACTIVATE), Duration::from_secs(60));
    }
}
