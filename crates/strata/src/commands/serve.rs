//! `strata serve`: the Kubernetes-style storage API for kubectl, the
//! controllers behind it, and Strata's CSI driver they provision from.
//! `strata kubeconfig`: how kubectl reaches it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use strata_kube::controllers::kubelet::KubeletConfig;
use strata_kube::controllers::{self, Controllers, Drivers};
use strata_kube::registry::Registry;
use strata_kube::server::{Pki, ServerConfig};

use super::pods::StrataPods;
use crate::cli::{KubeconfigArgs, ServeArgs};
use crate::settings::Settings;

/// The control plane's folder in the store.
fn kube_dir(settings: &Settings) -> PathBuf {
    settings.root.join("kube")
}

fn pki(settings: &Settings) -> anyhow::Result<Pki> {
    Ok(Pki::ensure(&kube_dir(settings).join("pki"))?)
}

pub fn serve(settings: &Settings, a: &ServeArgs, config: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = kube_dir(settings);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let node = match &a.node_name {
        Some(name) => name.clone(),
        None => super::csi::hostname()?,
    };
    let csi_socket = dir.join("csi.sock");
    let csi = start_csi(settings, &csi_socket, &node)?;
    let store = strata_kube::SqliteStore::open(&dir.join("objects.db"))
        .with_context(|| format!("opening the API object store in {}", dir.display()))?;
    let registry = Registry::new(Arc::new(store))?;
    controllers::register_node(&registry, &node, strata_csi::server::TOPOLOGY_KEY)?;
    let drivers = Drivers {
        builtin_name: strata_csi::server::DRIVER_NAME.to_string(),
        builtin_endpoint: format!("unix://{}", csi_socket.display()),
    };
    let staging_root = dir.join("staging");
    let agent = KubeletConfig {
        node: node.clone(),
        root: dir.clone(),
        csi: drivers.clone(),
        staging_root: staging_root.clone(),
    };
    let pods = || StrataPods::new(settings.clone(), config.clone());
    let logs = super::pods::logs_hook(registry.clone(), pods());
    let running = Controllers::start(
        &registry,
        controllers::Config {
            drivers,
            staging_root,
            node_agent: Some((agent, Box::new(pods()))),
        },
    );
    let config = ServerConfig {
        address: a.address,
        socket: dir.join("api.sock"),
        pki: pki(settings)?,
        logs: Some(logs),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the API server's runtime")?;
    eprintln!(
        "serving the Kubernetes API on https://{} (strata kubeconfig prints how to reach it)",
        a.address
    );
    let served = runtime.block_on(strata_kube::server::serve(
        registry,
        config,
        strata_serve::terminated(),
    ));
    running.stop();
    let stopped = csi.stop();
    served?;
    stopped?;
    Ok(())
}

/// Strata's own CSI driver, in this process, for the provisioner.
fn start_csi(
    settings: &Settings,
    socket: &Path,
    node: &str,
) -> anyhow::Result<strata_csi::server::RunningServer> {
    let config = strata_csi::server::Config {
        socket: socket.to_path_buf(),
        node_id: node.to_string(),
        controller: true,
        node: true,
        attach_required: false,
        max_volumes_per_node: 0,
    };
    Ok(super::csi::bind_server(settings, config)?.spawn())
}

pub fn kubeconfig(
    settings: &Settings,
    a: &KubeconfigArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = pki(settings)?.kubeconfig(&format!("https://{}", a.address))?;
    out.write_all(config.as_bytes())?;
    Ok(())
}
