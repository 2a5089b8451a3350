//! `strata build` end to end, through real runc: the seeds' two apps
//! sharing cached layers, the cache rules (content, not mtimes; used and
//! unused build args; comments), failures that leave no image, multi-stage
//! builds, the context from stdin, ADD, and images that run in Strata and
//! in podman.

mod common;

use std::path::{Path, PathBuf};

use common::archive::busybox_rootfs;
use common::{Podman, Strata};

/// Imports the busybox base every build here starts FROM.
fn base(s: &Strata) {
    let tar = s.path("base.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    s.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "base",
    ]);
}

/// A build context folder with `files` (path, content).
fn context(s: &Strata, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = s.path(name);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// A build context folder holding only `text` as its Dockerfile.
fn dockerfile(s: &Strata, text: &str) -> PathBuf {
    context(s, "ctx", &[("Dockerfile", text)])
}

fn build(s: &Strata, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    s.ok(&args)
}

/// Which steps of a build's output were cached, by step number.
fn cached_steps(output: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        }
        if line.starts_with(" ---> CACHED") {
            cached.push(step);
        }
    }
    cached
}

const SHARED_STEPS: &str = "FROM base
# the dependencies both apps share
RUN mkdir -p /opt/deps && echo apt-packages > /opt/deps/apt.txt
RUN echo pip-packages > /opt/deps/pip.txt
";

fn app_dockerfile(n: u32) -> String {
    format!(
        "{SHARED_STEPS}COPY src/ /app/\nENTRYPOINT [\"sh\", \"/app/main.sh\"]\nCMD [\"app{n}\"]\n"
    )
}

#[test]
fn second_app_reuses_the_first_apps_layers() {
    let s = Strata::new();
    base(&s);
    let one = context(
        &s,
        "app1",
        &[
            ("Dockerfile", &app_dockerfile(1)),
            (
                "src/main.sh",
                "cat /opt/deps/apt.txt /opt/deps/pip.txt; echo \"hello from $1\"\n",
            ),
        ],
    );
    let two = context(
        &s,
        "app2",
        &[
            ("Dockerfile", &app_dockerfile(2)),
            ("src/main.sh", "echo \"second app: $1\"\n"),
        ],
    );
    let first = build(&s, &one, &["-t", "app1"]);
    assert_eq!(cached_steps(&first), Vec::<usize>::new(), "{first}");
    let second = build(&s, &two, &["-t", "app2"]);
    // FROM, then the two shared RUNs from the cache; COPY on are new.
    assert_eq!(cached_steps(&second), vec![2, 3], "{second}");
    assert!(
        second.contains("Successfully tagged app2:latest"),
        "{second}"
    );

    let (_, d1) = s.id_and_diffs("app1");
    let (_, d2) = s.id_and_diffs("app2");
    assert_eq!(d1.len(), 4, "base, two RUNs, COPY");
    assert_eq!(d1[..3], d2[..3], "the shared layers are the same layers");
    assert_ne!(d1[3], d2[3]);
    // Stored once: five layers in all (base, 2 shared, 2 COPYs).
    let layers = s.ok(&["system", "df", "--format", "json"]);
    assert!(layers.contains("\"Type\":\"Images\""), "{layers}");
    let snapshots: Vec<String> = std::fs::read_dir(s.root.join("overlay/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(snapshots.len(), 5, "{snapshots:?}");

    // Both histories name the shared steps' states by the same IDs (newest
    // first: ENTRYPOINT, CMD and COPY differ; the RUNs and base agree).
    let ids = |image: &str| -> Vec<String> {
        s.ok(&["history", image])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let (h1, h2) = (ids("app1"), ids("app2"));
    assert_eq!(h1.len(), 6, "{h1:?}");
    assert_eq!(h1[3..], h2[3..], "{h1:?} {h2:?}");
    assert!(h1[3..].iter().all(|id| id != "<missing>"), "{h1:?}");
    assert_ne!(h1[2], h2[2]);
    // History reads like docker's: metadata steps are empty layers.
    let history = s.ok(&["history", "--no-trunc", "app2"]);
    assert!(
        history.contains("/bin/sh -c echo pip-packages > /opt/deps/pip.txt"),
        "{history}"
    );
    assert!(history.contains("#(nop)  CMD [\"app2\"]"), "{history}");

    // Images built by Strata run in Strata.
    assert_eq!(
        s.ok(&["run", "--rm", "app1"]),
        "apt-packages\npip-packages\nhello from app1\n"
    );
    assert_eq!(s.ok(&["run", "--rm", "app2", "x"]), "second app: x\n");

    // A fully cached rebuild makes the same image.
    let id = s.inspect("app1")["Id"].clone();
    let again = build(&s, &one, &["-t", "app1"]);
    assert_eq!(cached_steps(&again), vec![2, 3, 4, 5, 6], "{again}");
    assert_eq!(s.inspect("app1")["Id"], id);
}

/// The cache rules, each as (what changes, which steps stay cached).
#[test]
fn cache_hits_and_misses_like_docker() {
    let s = Strata::new();
    base(&s);
    let dockerfile = "FROM base
ARG FLAVOUR=plain
COPY a.txt b.txt /data/
RUN echo $FLAVOUR > /data/flavour
COPY c.txt /data/
";
    let dir = context(
        &s,
        "ctx",
        &[
            ("Dockerfile", dockerfile),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("c.txt", "c"),
        ],
    );
    let first = build(&s, &dir, &["-t", "t"]);
    assert_eq!(cached_steps(&first), Vec::<usize>::new());

    let check = |what: &str, change: &dyn Fn(), args: &[&str], want: &[usize]| {
        change();
        let mut args = args.to_vec();
        args.extend(["-t", "t"]);
        let out = build(&s, &dir, &args);
        assert_eq!(cached_steps(&out), want, "{what}:\n{out}");
    };
    // Steps: 1 FROM, 2 ARG, 3 COPY a b, 4 RUN, 5 COPY c.
    check("nothing changed", &|| {}, &[], &[2, 3, 4, 5]);
    check(
        "a copied file touched, content the same",
        &|| {
            let f = std::fs::File::options()
                .write(true)
                .open(dir.join("a.txt"))
                .unwrap();
            f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
                .unwrap();
        },
        &[],
        &[2, 3, 4, 5],
    );
    check(
        "a comment edited",
        &|| {
            std::fs::write(
                dir.join("Dockerfile"),
                format!("# a new comment\n{dockerfile}"),
            )
            .unwrap()
        },
        &[],
        &[2, 3, 4, 5],
    );
    check(
        "an unused build arg",
        &|| {},
        &["--build-arg", "UNUSED=1"],
        &[2, 3, 4, 5],
    );
    check(
        "the used build arg changed",
        &|| {},
        &["--build-arg", "FLAVOUR=spicy"],
        &[2, 3],
    );
    check(
        "a copied file's content changed",
        &|| std::fs::write(dir.join("b.txt"), "B").unwrap(),
        &[],
        &[2],
    );
    check(
        "a copied file's mode changed",
        &|| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("c.txt"), std::fs::Permissions::from_mode(0o600))
                .unwrap()
        },
        &[],
        &[2, 3, 4],
    );
    check("--no-cache", &|| {}, &["--no-cache"], &[]);

    // The build arg reached RUN, and the file content the image.
    let out = s.ok(&["run", "--rm", "t", "cat", "/data/flavour", "/data/b.txt"]);
    assert_eq!(out, "plain\nB");
}

#[test]
fn run_steps_resolve_as_the_host_and_keep_no_mount_points() {
    let s = Strata::new();
    base(&s);
    // RUN shares the host's network, so it gets the host's resolver
    // (apt-get needs it); the mount points runc makes stay out of layers.
    let dir = dockerfile(
        &s,
        "FROM base\nRUN true\nRUN cat /etc/resolv.conf > /resolv.copy\n",
    );
    build(&s, &dir, &["-t", "resolving"]);
    let copied = s.ok(&["run", "--rm", "resolving", "cat", "/resolv.copy"]);
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(copied, host);
    // `RUN true` on a base with no /dev, /proc or /etc/hosts: the empty
    // layer (a tar of no entries), not runc's mount points.
    let layers = s.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        "resolving",
    ]);
    let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
    let empty = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    assert_eq!(layers[1], empty, "{layers:?}");
}

#[test]
fn failing_run_stops_the_build_and_leaves_no_image() {
    let s = Strata::new();
    base(&s);
    let dir = dockerfile(
        &s,
        "FROM base\nRUN echo before\nRUN echo oops >&2; exit 3\nRUN echo never\n",
    );
    let before = s.state();
    let out = s.run(&["build", "-t", "broken", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("oops"),
        "the failing step's output is shown: {stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert!(
        stderr.contains("returned a non-zero code: 3") && stderr.contains("line 3"),
        "{stderr}"
    );
    let after = s.state();
    assert_eq!(before.images, after.images, "no image and no tag");
    assert!(
        s.fails(&["image", "inspect", "broken"])
            .contains("no such image")
    );
    // No build container, mount or scratch snapshot is left behind.
    assert_eq!(after.check, before.check);
    let work: Vec<_> = std::fs::read_dir(s.root.join("builder/work"))
        .unwrap()
        .collect();
    assert!(work.is_empty(), "{work:?}");
    // The step before the failure stays cached.
    let fixed = dockerfile(&s, "FROM base\nRUN echo before\n");
    let out = build(&s, &fixed, &[]);
    assert_eq!(cached_steps(&out), vec![2], "{out}");
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    let s = Strata::new();
    base(&s);
    let text = "ARG BASE=base
FROM ${BASE} AS builder
RUN mkdir /out && echo built > /out/artifact
FROM base AS unused
RUN exit 1
FROM base AS final
COPY --from=builder /out/artifact /artifact
COPY --from=0 /out /out-again
CMD [\"cat\", \"/artifact\"]
";
    let dir = dockerfile(&s, text);
    let out = build(&s, &dir, &["-t", "multi"]);
    assert!(
        !out.contains("exit 1"),
        "the unused stage is skipped:\n{out}"
    );
    assert_eq!(s.ok(&["run", "--rm", "multi"]), "built\n");
    assert_eq!(
        s.ok(&["run", "--rm", "multi", "cat", "/out-again/artifact"]),
        "built\n"
    );
    // --target builds the named stage.
    build(&s, &dir, &["--target", "builder", "-t", "just-builder"]);
    assert_eq!(
        s.ok(&["run", "--rm", "just-builder", "cat", "/out/artifact"]),
        "built\n"
    );
    let err = s.fails(&["build", "--target", "nope", dir.to_str().unwrap()]);
    assert!(
        err.contains("target stage 'nope' could not be found"),
        "{err}"
    );
}

#[test]
fn context_rules_dockerignore_add_and_stdin() {
    let s = Strata::new();
    base(&s);
    // A tar archive for ADD to unpack.
    let mut t = common::archive::Tar::new();
    t.dir("pkg", 0o755).file("pkg/inside.txt", b"unpacked\n");
    let dir = context(
        &s,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM base\nWORKDIR /app\nCOPY . .\nADD bundle.tar /opt/\nCOPY <<EOF /app/inline.txt\nhello $WHO\nEOF\n",
            ),
            (".dockerignore", "secret*\n*.log\n!keep.log\n"),
            ("main.txt", "main\n"),
            ("secret.key", "do not copy\n"),
            ("debug.log", "no\n"),
            ("keep.log", "yes\n"),
        ],
    );
    std::fs::write(dir.join("bundle.tar"), t.build()).unwrap();
    build(&s, &dir, &["-t", "ctx"]);
    let ls = s.ok(&["run", "--rm", "ctx", "ls", "/app"]);
    let names: Vec<&str> = ls.split_whitespace().collect();
    assert!(
        names.contains(&"main.txt") && names.contains(&"keep.log"),
        "{ls}"
    );
    assert!(
        !names.contains(&"secret.key") && !names.contains(&"debug.log"),
        "{ls}"
    );
    assert_eq!(
        s.ok(&["run", "--rm", "ctx", "cat", "/opt/pkg/inside.txt"]),
        "unpacked\n"
    );
    assert_eq!(
        s.ok(&["run", "--rm", "ctx", "cat", "/app/inline.txt"]),
        "hello \n"
    );

    // A Dockerfile on stdin, with no context.
    let mut cmd = s.command(&["build", "-q", "-t", "from-stdin", "-"]);
    let out = run_with_stdin(&mut cmd, b"FROM base\nRUN echo piped > /p\n");
    assert!(out.starts_with("sha256:"), "-q prints the ID only: {out}");
    assert_eq!(s.ok(&["run", "--rm", "from-stdin", "cat", "/p"]), "piped\n");

    // A context tar on stdin.
    let mut t = common::archive::Tar::new();
    t.file("Dockerfile", b"FROM base\nCOPY f /f\n")
        .file("f", b"from the tar\n");
    let mut cmd = s.command(&["build", "-t", "tar-ctx", "-"]);
    run_with_stdin(&mut cmd, &t.build());
    assert_eq!(
        s.ok(&["run", "--rm", "tar-ctx", "cat", "/f"]),
        "from the tar\n"
    );
}

fn run_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> String {
    let out = common::output_with_stdin(cmd, input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Bad input: a clear error naming the line, and the store as it was.
#[test]
fn bad_dockerfiles_and_options_change_nothing() {
    let s = Strata::new();
    base(&s);
    let check = |dockerfile: &str, args: &[&str], want: &str| {
        let dir = context(&s, "bad", &[("Dockerfile", dockerfile), ("f", "x")]);
        let before = s.state();
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(dir.to_str().unwrap());
        let err = s.fails(&all);
        assert!(err.contains(want), "{dockerfile:?}: want {want:?} in {err}");
        assert_eq!(s.state(), before, "{dockerfile:?} changed the store");
    };
    check("FROM base\nFROBNICATE x\n", &[], "line 2");
    check("RUN echo no base\n", &[], "line 1");
    check("FROM base\nRUN cat <<EOF\nnever ends\n", &[], "line 2");
    check("FROM nosuchimage\n", &[], "nosuchimage: no such image");
    check("FROM base\nCOPY missing.txt /x\n", &[], "missing.txt");
    check("FROM base\nCOPY f g /x\n", &[], "g");
    check("FROM base\nCOPY f f /notadir\n", &[], "/");
    check(
        "FROM base\nADD https://example.com/x.tgz /x\n",
        &[],
        "network",
    );
    check("FROM base\nCOPY --from=nostage /x /y\n", &[], "nostage");
    check("FROM base\n", &["--pull"], "--pull");
    check("FROM base\n", &["-t", "Bad:Name!"], "Bad:Name!");
    check("FROM base\n", &["--build-arg", "=x"], "KEY=VALUE");
    check("FROM --platform=linux/s390x base\n", &[], "s390x");
    let err = s.fails(&["build", s.path("no-such-folder").to_str().unwrap()]);
    assert!(err.contains("no-such-folder"), "{err}");
}

#[test]
fn cache_mounts_and_builder_prune() {
    let s = Strata::new();
    base(&s);
    let dir = dockerfile(
        &s,
        "FROM base\nRUN --mount=type=cache,target=/cache echo x >> /cache/runs; cat /cache/runs | busybox wc -l > /count\n",
    );
    build(&s, &dir, &["-t", "c1"]);
    build(&s, &dir, &["--no-cache", "-t", "c2"]);
    assert_eq!(s.ok(&["run", "--rm", "c1", "cat", "/count"]).trim(), "1");
    assert_eq!(
        s.ok(&["run", "--rm", "c2", "cat", "/count"]).trim(),
        "2",
        "the cache mount kept the first run's file"
    );
    // One step (--no-cache made it anew), its layer shared with c2.
    let df = s.ok(&["system", "df", "--format", "json"]);
    let cache: serde_json::Value = df
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Type"] == "Build Cache")
        .unwrap();
    assert_eq!(cache["TotalCount"], 1, "{df}");
    assert_ne!(cache["Size"], "0B", "{df}");
    assert_eq!(cache["Reclaimable"], "0B", "an image uses it: {df}");
    s.ok(&["rmi", "c1", "c2"]);
    let out = s.ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted build cache steps: 1"), "{out}");
    let out = build(&s, &dir, &[]);
    assert_eq!(
        cached_steps(&out),
        Vec::<usize>::new(),
        "pruned cache misses:\n{out}"
    );
    s.ok(&["system", "check"]);
}

#[test]
fn built_images_load_and_run_in_podman() {
    let s = Strata::new();
    base(&s);
    let dir = context(
        &s,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM base\nCOPY hello.txt /\nRUN echo made-by-run >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
            ),
            ("hello.txt", "copied\n"),
        ],
    );
    build(&s, &dir, &["-t", "portable:1"]);
    let archive = s.path("portable.tar");
    s.ok(&["save", "-o", archive.to_str().unwrap(), "portable:1"]);
    let p = Podman::new();
    p.ok(&["load", "-i", archive.to_str().unwrap()]);
    let out = p.ok(&["run", "--rm", "--network", "none", "portable:1"]);
    assert_eq!(out, "copied\nmade-by-run\n");
}

/// A build killed in the middle of a RUN leaves a container, a mount and
/// a transient snapshot; the next build tidies them up, and the store
/// checks clean.
#[test]
fn killed_build_is_tidied_by_the_next() {
    let s = Strata::new();
    base(&s);
    let dir = context(&s, "slow", &[("Dockerfile", "FROM base\nRUN sleep 60\n")]);
    let mut child = s
        .command(&["build", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let work = s.root.join("builder/work");
    let started = std::time::Instant::now();
    // Wait until the RUN's container is noted (then it is starting).
    while !std::fs::read_dir(&work)
        .map(|d| d.flatten().any(|e| e.path().join("containers").exists()))
        .unwrap_or(false)
    {
        assert!(started.elapsed().as_secs() < 30, "the RUN never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(s.root.to_str().unwrap()))
            .count()
    };
    assert!(mounted() > 0, "the killed build left its step mounted");

    let quick = context(
        &s,
        "quick",
        &[("Dockerfile", "FROM base\nRUN echo ok > /ok\n")],
    );
    build(&s, &quick, &["-t", "after"]);
    assert_eq!(mounted(), 0, "the next build unmounted the dead one's step");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    let check = s.ok(&["system", "check"]);
    assert!(check.contains("no problems found"), "{check}");
    assert_eq!(s.ok(&["run", "--rm", "after", "cat", "/ok"]), "ok\n");
}

/// Every metadata instruction lands in the image config under Docker's
/// field names, and ONBUILD triggers run in the image built FROM it.
#[test]
fn metadata_instructions_and_onbuild_triggers() {
    let s = Strata::new();
    base(&s);
    let dir = context(
        &s,
        "meta",
        &[(
            "Dockerfile",
            r#"FROM base
ENV GREETING="hello world" EMPTY=
LABEL a=b "c d"=e
EXPOSE 80 53/udp
VOLUME /data
WORKDIR /app
WORKDIR sub
USER 1000:1000
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo "triggered as $(id -u)" > /tmp/onbuild
ENTRYPOINT ["sh"]
CMD ["-c", "echo hi"]
"#,
        )],
    );
    build(&s, &dir, &["-t", "meta"]);
    let c = &s.inspect("meta")["Config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"GREETING=hello world") && env.contains(&"EMPTY="),
        "{env:?}"
    );
    assert_eq!(c["Labels"], serde_json::json!({"a": "b", "c d": "e"}));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["WorkingDir"], "/app/sub");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(
        c["OnBuild"],
        serde_json::json!([r#"RUN echo "triggered as $(id -u)" > /tmp/onbuild"#])
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["-c", "echo hi"]));
    assert_eq!(s.ok(&["run", "--rm", "meta"]), "hi\n");

    let child = context(
        &s,
        "child",
        &[("Dockerfile", "FROM meta\nRUN cat /tmp/onbuild\n")],
    );
    let out = build(&s, &child, &["-t", "child"]);
    assert!(
        out.contains("triggered as 1000"),
        "the trigger ran as USER:\n{out}"
    );
    assert!(
        s.inspect("child")["Config"]["OnBuild"].is_null(),
        "triggers run once"
    );
}
