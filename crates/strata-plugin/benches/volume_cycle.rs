//! One volume's life through the volume service: create, first mount,
//! unmount, remove. A plain local volume, a sized one (an ext4 image, mkfs
//! included), and one behind the plugin socket (`strata plugin serve`'s
//! server over a second store, driven by the plugin client).
//!
//! Run as root: `cargo bench -p strata-plugin --bench volume_cycle`.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_plugin::{Endpoint, PluginDriver, Server, Timeouts};
use strata_store::Layout;
use strata_store::meta::Db;
use strata_volume::served::Served;
use strata_volume::{
    Caller, CreateRequest, NoPlugins, PluginError, Plugins, VolumeDriver, Volumes,
};

fn service(root: &Path, plugins: Box<dyn Plugins>) -> Volumes {
    std::fs::create_dir_all(root).unwrap();
    let db = Rc::new(Db::open(&root.join("strata.db")).unwrap());
    Volumes::new(&Layout::new(root), db, plugins)
}

/// The one plugin, `bench`, at a socket.
struct OnePlugin(Rc<dyn VolumeDriver>);

impl Plugins for OnePlugin {
    fn find(&self, name: &str) -> Result<Option<Rc<dyn VolumeDriver>>, PluginError> {
        Ok((name == "bench").then(|| self.0.clone()))
    }
    fn scan(&self) -> Vec<String> {
        vec!["bench".into()]
    }
    fn places(&self) -> String {
        "the benchmark".into()
    }
}

fn cycle(v: &Volumes, driver: &str, options: &[(&str, &str)]) {
    let options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, x)| (k.to_string(), x.to_string()))
        .collect();
    v.create(&CreateRequest {
        name: Some("cycled".into()),
        driver: Some(driver.into()),
        labels: BTreeMap::new(),
        options,
    })
    .unwrap();
    v.mount("cycled", Caller::Container("c1")).unwrap();
    v.unmount("cycled", "c1").unwrap();
    v.remove("cycled").unwrap();
}

fn volume_cycle(c: &mut Criterion) {
    // On disk, as a real store is (tmpfs would flatter the fsyncs).
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let local = service(&dir.path().join("local"), Box::new(NoPlugins));
    let mut g = c.benchmark_group("volume_cycle");
    g.bench_function("plain", |b| b.iter(|| cycle(&local, "local", &[])));
    g.sample_size(20);
    g.bench_function("sized_20M", |b| {
        b.iter(|| cycle(&local, "local", &[("size", "20M")]))
    });

    let served_root = dir.path().join("served");
    let socket = dir.path().join("bench.sock");
    let server = Server::bind(&socket, move || {
        let v = service(&served_root, Box::new(NoPlugins));
        Ok::<_, std::io::Error>(Box::new(Served::new("bench", v)) as Box<dyn VolumeDriver>)
    })
    .unwrap()
    .spawn();
    let endpoint = Endpoint {
        name: "bench".into(),
        url: format!("unix://{}", socket.display()),
        address: strata_plugin::Address::Unix(socket.clone()),
    };
    let client = PluginDriver::new(endpoint, Timeouts::default()).unwrap();
    let through = service(
        &dir.path().join("client"),
        Box::new(OnePlugin(Rc::new(client))),
    );
    g.sample_size(100);
    g.bench_function("plugin_socket_plain", |b| {
        b.iter(|| cycle(&through, "bench", &[]))
    });
    g.finish();
    server.stop().unwrap();
}

criterion_group!(benches, volume_cycle);
criterion_main!(benches);
