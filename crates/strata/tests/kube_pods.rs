//! Pods end to end: stock kubectl against a real `strata serve`, whose node
//! agent runs them on real runc with their volumes, reports their status,
//! events and logs, restarts them as their policy says, and cleans up
//! after them (mounts, folders, containers) when they are deleted.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Strata;
use common::archive::busybox_rootfs;
use common::kube::{KubeServer, eventually, seed};

/// A store with the host's busybox as image `name` (its shell runs every
/// applet, `shuf` and `sleep` among them).
fn with_image(s: &Strata, name: &str) {
    let tar = s.path("busybox.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    s.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), name]);
}

/// A running server for a store with busybox as `alpine` and `busybox`.
fn cluster(s: &Strata) -> KubeServer {
    with_image(s, "busybox");
    s.ok(&["tag", "busybox", "alpine"]);
    KubeServer::start(s)
}

/// A pod of one busybox container running `script`.
fn pod(name: &str, policy: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, {script:?}]\n"
    )
}

/// The reasons of the events about `pod`, oldest first.
fn event_reasons(k: &KubeServer, pod: &str) -> Vec<String> {
    let template = "{range .items[*]}{.involvedObject.name} {.reason}{\"\\n\"}{end}";
    k.kubectl(&["get", "events", "-o", &format!("jsonpath={template}")])
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{pod} ")).map(String::from))
        .collect()
}

/// Deletes a pod and checks that the node agent let it go with nothing
/// left behind: no container, no folder, no mount.
fn delete_and_check_cleanup(s: &Strata, k: &KubeServer, pod: &str) {
    let uid = k.jsonpath(&["pod", pod], "{.metadata.uid}");
    k.kubectl(&["delete", "pod", pod, "--timeout=60s"]);
    let gone = k.kubectl_fails(&["get", "pod", pod], None);
    assert!(gone.contains("NotFound"), "{gone}");
    assert_eq!(s.ok(&["ps", "-a", "-q"]), "", "containers left behind");
    let folder = pod_folder(s, &uid);
    assert!(!folder.exists(), "{} is left behind", folder.display());
    assert!(
        mounts_below(&s.root).is_empty(),
        "mounts left: {:?}",
        mounts_below(&s.root)
    );
}

/// Where the node agent keeps a pod's volumes.
fn pod_folder(s: &Strata, uid: &str) -> PathBuf {
    s.root.join("kube/pods").join(uid)
}

fn mounts_below(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().into_owned();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(String::from)
        .collect()
}

#[test]
fn seed_pod_writes_a_number_that_outlives_it() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&seed(&s, "random-number-generator.yaml"));
    let pod = "pod/random-number-generator";
    k.wait_for(pod, "{.status.phase}", "Succeeded");
    let number_file = s.path("seeds/data/number.out");
    let number = std::fs::read_to_string(&number_file).expect("the number on the host");
    let value: u32 = number.trim().parse().expect("a number");
    assert!(value <= 100, "{value}");
    let state = "{.status.containerStatuses[0].state.terminated.reason}";
    assert_eq!(k.jsonpath(&[pod], state), "Completed");
    assert_eq!(
        k.jsonpath(&[pod], "{.status.containerStatuses[0].containerID}")
            .len(),
        "strata://".len() + 64
    );
    let ready = "{.status.conditions[?(@.type==\"Ready\")].reason}";
    assert_eq!(k.jsonpath(&[pod], ready), "PodCompleted");
    delete_and_check_cleanup(&s, &k, "random-number-generator");
    assert_eq!(std::fs::read_to_string(&number_file).unwrap(), number);
    let reasons = event_reasons(&k, "random-number-generator");
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event: {reasons:?}"
        );
    }
}

#[test]
fn logs_show_what_containers_wrote() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&pod(
        "talker",
        "Never",
        "echo to stdout; echo to stderr >&2",
    ));
    k.wait_for("pod/talker", "{.status.phase}", "Succeeded");
    let logs = k.kubectl(&["logs", "talker"]);
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort();
    assert_eq!(lines, ["to stderr", "to stdout"]);
    let two = "apiVersion: v1\nkind: Pod\nmetadata: {name: two}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: busybox, command: [echo, from a]}\n  - {name: b, image: busybox, command: [echo, from b]}\n";
    k.apply(two);
    k.wait_for("pod/two", "{.status.phase}", "Succeeded");
    assert_eq!(k.kubectl(&["logs", "two", "-c", "b"]), "from b\n");
    let refused = k.kubectl_fails(
        &["get", "--raw", "/api/v1/namespaces/default/pods/two/log"],
        None,
    );
    assert!(
        refused.contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{refused}"
    );
    let refused = k.kubectl_fails(&["logs", "two", "-c", "c"], None);
    assert!(
        refused.contains("container c is not valid for pod two"),
        "{refused}"
    );
}

#[test]
fn empty_dirs_live_and_die_with_their_pod() {
    let s = Strata::new();
    let k = cluster(&s);
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: scratch}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, 'echo kept > /cache/f; echo fast > /fast/f; sleep 3600']\n    volumeMounts:\n    - {name: cache, mountPath: /cache}\n    - {name: fast, mountPath: /fast}\n  volumes:\n  - {name: cache, emptyDir: {}}\n  - {name: fast, emptyDir: {medium: Memory, sizeLimit: 1Mi}}\n";
    k.apply(yaml);
    k.wait_for("pod/scratch", "{.status.phase}", "Running");
    let uid = k.jsonpath(&["pod", "scratch"], "{.metadata.uid}");
    let volumes = pod_folder(&s, &uid).join("volumes/empty-dir");
    let kept = eventually("the container's file", || {
        std::fs::read_to_string(volumes.join("cache/f")).ok()
    });
    assert_eq!(kept, "kept\n");
    assert_eq!(
        std::fs::read_to_string(volumes.join("fast/f")).unwrap(),
        "fast\n"
    );
    let fast = volumes.join("fast").canonicalize().unwrap();
    assert_eq!(
        mounts_below(&fast),
        [fast.to_string_lossy()],
        "the memory emptyDir is a tmpfs"
    );
    let ready = "{.status.conditions[?(@.type==\"Ready\")].status}";
    assert_eq!(k.jsonpath(&["pod", "scratch"], ready), "True");
    delete_and_check_cleanup(&s, &k, "scratch");
    assert!(event_reasons(&k, "scratch").iter().any(|r| r == "Killing"));
}

#[test]
fn init_containers_run_first_and_in_order() {
    let s = Strata::new();
    let k = cluster(&s);
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: staged}\nspec:\n  restartPolicy: Never\n  initContainers:\n  - {name: one, image: busybox, command: [sh, -c, 'echo one >> /w/log'], volumeMounts: [{name: w, mountPath: /w}]}\n  - {name: two, image: busybox, command: [sh, -c, 'echo two >> /w/log'], volumeMounts: [{name: w, mountPath: /w}]}\n  containers:\n  - {name: main, image: busybox, command: [cat, /w/log], volumeMounts: [{name: w, mountPath: /w}]}\n  volumes: [{name: w, emptyDir: {}}]\n";
    k.apply(yaml);
    k.wait_for("pod/staged", "{.status.phase}", "Succeeded");
    assert_eq!(k.kubectl(&["logs", "staged", "-c", "main"]), "one\ntwo\n");
    let reasons = "{.status.initContainerStatuses[*].state.terminated.reason}";
    assert_eq!(
        k.jsonpath(&["pod", "staged"], reasons),
        "Completed Completed"
    );
    let initialized = "{.status.conditions[?(@.type==\"Initialized\")].status}";
    assert_eq!(k.jsonpath(&["pod", "staged"], initialized), "True");
    delete_and_check_cleanup(&s, &k, "staged");
}

#[test]
fn a_missing_host_folder_keeps_the_pod_pending() {
    let s = Strata::new();
    let k = cluster(&s);
    let missing = s.path("not-there");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: waiting}}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes:\n  - name: data\n    hostPath: {{path: {}, type: Directory}}\n",
        missing.display()
    );
    k.apply(&yaml);
    let expected = format!(
        "MountVolume.SetUp failed for volume \"data\" : hostPath type check failed: {} is not a directory",
        missing.display()
    );
    let described = eventually("a FailedMount event", || {
        let d = k.kubectl(&["describe", "pod", "waiting"]);
        d.contains("FailedMount").then_some(d)
    });
    assert!(described.contains(&expected), "{described}");
    assert_eq!(
        k.jsonpath(&["pod", "waiting"], "{.status.phase}"),
        "Pending"
    );
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    assert_eq!(
        k.jsonpath(&["pod", "waiting"], waiting),
        "ContainerCreating"
    );
    assert!(!missing.exists(), "type Directory must not make the folder");
    delete_and_check_cleanup(&s, &k, "waiting");
}

#[test]
fn a_claim_carries_data_from_one_pod_to_the_next() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&seed(&s, "pv-vol1.yaml"));
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    let with_claim = |name: &str, mount: &str, script: &str| {
        format!(
            "{}    volumeMounts: [{{name: data, mountPath: /data{mount}}}]\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: myclaim}}}}]\n",
            pod(name, "Never", script)
        )
    };
    k.apply(&with_claim(
        "writer",
        ", subPath: app",
        "echo saved > /data/msg",
    ));
    k.wait_for("pod/writer", "{.status.phase}", "Succeeded");
    // The subPath was made inside the volume, on the host.
    let on_host = s.path("seeds/pv-vol1/app/msg");
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), "saved\n");
    delete_and_check_cleanup(&s, &k, "writer");
    k.apply(&with_claim(
        "reader",
        ", readOnly: true",
        "cat /data/app/msg; touch /data/x || echo read-only",
    ));
    k.wait_for("pod/reader", "{.status.phase}", "Succeeded");
    assert_eq!(
        k.kubectl(&["logs", "reader"])
            .lines()
            .filter(|l| !l.contains("touch"))
            .collect::<Vec<_>>(),
        ["saved", "read-only"]
    );
    delete_and_check_cleanup(&s, &k, "reader");
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), "saved\n");
}

#[test]
fn a_provisioned_claim_is_published_through_csi_while_a_pod_uses_it() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&seed(&s, "google-storage.yaml"));
    k.wait_for("pvc/data-claim", "{.status.phase}", "Bound");
    let with_claim = |name: &str, script: &str| {
        format!(
            "{}    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data-claim}}}}]\n",
            pod(name, "Always", script)
        )
    };
    k.apply(&with_claim(
        "csi-writer",
        "echo through-csi > /data/f; sleep 3600",
    ));
    k.wait_for("pod/csi-writer", "{.status.phase}", "Running");
    let uid = k.jsonpath(&["pod", "csi-writer"], "{.metadata.uid}");
    let pv = k.jsonpath(&["pvc", "data-claim"], "{.spec.volumeName}");
    let target = pod_folder(&s, &uid)
        .join("volumes/csi")
        .join(&pv)
        .join("mount");
    let written = eventually("the file in the published volume", || {
        std::fs::read_to_string(target.join("f")).ok()
    });
    assert_eq!(written, "through-csi\n");
    delete_and_check_cleanup(&s, &k, "csi-writer");
    k.apply(&with_claim("csi-reader", "cat /data/f; sleep 3600"));
    k.wait_for("pod/csi-reader", "{.status.phase}", "Running");
    let logs = eventually("the reader's output", || {
        Some(k.kubectl(&["logs", "csi-reader"])).filter(|l| !l.is_empty())
    });
    assert_eq!(logs, "through-csi\n");
    delete_and_check_cleanup(&s, &k, "csi-reader");
}

#[test]
fn on_failure_restarts_a_failing_container_with_back_off() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&pod("crasher", "OnFailure", "echo attempt; exit 3"));
    let restarts = "{.status.containerStatuses[0].restartCount}";
    eventually("a restart", || {
        let count: u32 = k
            .jsonpath(&["pod", "crasher"], restarts)
            .parse()
            .unwrap_or(0);
        (count > 0).then_some(count)
    });
    let last = "{.status.containerStatuses[0].lastState.terminated.exitCode}";
    assert_eq!(k.jsonpath(&["pod", "crasher"], last), "3");
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    k.wait_for("pod/crasher", waiting, "CrashLoopBackOff");
    assert_eq!(
        k.jsonpath(&["pod", "crasher"], "{.status.phase}"),
        "Running"
    );
    assert!(event_reasons(&k, "crasher").iter().any(|r| r == "BackOff"));
    // The last attempt's output, as upstream shows a crash-looping container's.
    assert_eq!(k.kubectl(&["logs", "crasher"]), "attempt\n");
    delete_and_check_cleanup(&s, &k, "crasher");
}

#[test]
fn an_image_missing_from_the_store_is_never_pulled() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(
        &pod("nowhere", "Always", "true").replace("image: busybox", "image: example.com/absent:1"),
    );
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    k.wait_for("pod/nowhere", waiting, "ErrImageNeverPull");
    assert_eq!(
        k.jsonpath(&["pod", "nowhere"], "{.status.phase}"),
        "Pending"
    );
    let message = k.jsonpath(
        &["pod", "nowhere"],
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert_eq!(
        message,
        "Container image \"example.com/absent:1\" is not present with pull policy of Never"
    );
    delete_and_check_cleanup(&s, &k, "nowhere");
}

#[test]
fn a_restarted_server_adopts_running_pods() {
    let s = Strata::new();
    let k = cluster(&s);
    k.apply(&pod("steady", "Always", "sleep 3600"));
    k.wait_for("pod/steady", "{.status.phase}", "Running");
    let id = k.jsonpath(
        &["pod", "steady"],
        "{.status.containerStatuses[0].containerID}",
    );
    drop(k);
    let k = KubeServer::start(&s);
    // The same container, not a restart.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        k.jsonpath(
            &["pod", "steady"],
            "{.status.containerStatuses[0].containerID}"
        ),
        id
    );
    assert_eq!(
        k.jsonpath(
            &["pod", "steady"],
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );
    assert_eq!(k.jsonpath(&["pod", "steady"], "{.status.phase}"), "Running");
    delete_and_check_cleanup(&s, &k, "steady");
}

#[test]
fn a_force_deleted_pod_is_still_stopped_and_cleaned_up() {
    let s = Strata::new();
    let k = cluster(&s);
    let yaml = format!(
        "{}    volumeMounts: [{{name: scratch, mountPath: /scratch}}]\n  volumes: [{{name: scratch, emptyDir: {{medium: Memory}}}}]\n",
        pod("orphan", "Always", "sleep 3600")
    );
    k.apply(&yaml);
    k.wait_for("pod/orphan", "{.status.phase}", "Running");
    let uid = k.jsonpath(&["pod", "orphan"], "{.metadata.uid}");
    k.kubectl(&["delete", "pod", "orphan", "--grace-period=0", "--force"]);
    eventually("the container to go", || {
        s.ok(&["ps", "-a", "-q"]).is_empty().then_some(())
    });
    eventually("the pod's folder to go", || {
        (!pod_folder(&s, &uid).exists()).then_some(())
    });
    assert!(
        mounts_below(&s.root).is_empty(),
        "mounts left: {:?}",
        mounts_below(&s.root)
    );
}

#[test]
fn an_image_volume_in_use_grows_its_filesystem_on_the_node() {
    let s = Strata::new();
    let k = cluster(&s);
    // xfs grows while mounted (ext4 online growth needs CAP_SYS_RESOURCE,
    // which this host's root lacks).
    let class = seed(&s, "google-storage.yaml")
        .replace("type: dir", "type: image\n  fs: xfs")
        .replace(
            "reclaimPolicy: Delete",
            "reclaimPolicy: Delete\nallowVolumeExpansion: true",
        )
        .replace("storage: 500Mi", "storage: 320Mi");
    k.apply(&class);
    k.wait_for("pvc/data-claim", "{.status.phase}", "Bound");
    let user = format!(
        "{}    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data-claim}}}}]\n",
        pod("user", "Always", "sleep 3600")
    );
    k.apply(&user);
    k.wait_for("pod/user", "{.status.phase}", "Running");
    let uid = k.jsonpath(&["pod", "user"], "{.metadata.uid}");
    let pv = k.jsonpath(&["pvc", "data-claim"], "{.spec.volumeName}");
    let mount = pod_folder(&s, &uid)
        .join("volumes/csi")
        .join(&pv)
        .join("mount");
    // The filesystem's size in MiB, as the pod sees it.
    let size = || {
        let out = common::tool("df", &["-m", "--output=size", mount.to_str().unwrap()]);
        out.lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap()
    };
    assert!(size() < 400, "{} MiB before growing", size());
    k.kubectl(&[
        "patch",
        "pvc",
        "data-claim",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"640Mi"}}}}"#,
    ]);
    k.wait_for("pvc/data-claim", "{.status.capacity.storage}", "640Mi");
    let events = k.kubectl(&["describe", "pvc", "data-claim"]);
    assert!(events.contains("FileSystemResizeSuccessful"), "{events}");
    assert!(size() > 500, "{} MiB after growing", size());
    delete_and_check_cleanup(&s, &k, "user");
}
