//! The status the node agent reports for a pod, computed from what its
//! containers are doing, as upstream's kubelet computes it
//! (`getPhase`, the condition generators, `convertToAPIContainerStatuses`).
//! Pure: the clock and the old status are inputs.

use serde_json::{Map, Value, json};

/// Where pods' containers run: this machine, through loopback.
pub const HOST_IP: &str = "127.0.0.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The pod's `spec.restartPolicy` (Always when unset, as defaulted).
    pub fn of(pod: &Value) -> RestartPolicy {
        match pod.pointer("/spec/restartPolicy").and_then(Value::as_str) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that exited with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// A container that has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    /// `Completed`, `Error`, or `ContainerStatusUnknown` for one that vanished.
    pub reason: &'static str,
    pub message: Option<&'static str>,
    pub started_at: String,
    pub finished_at: String,
    pub container_id: Option<String>,
}

/// The exit code upstream reports for a container nobody saw end.
const LOST_EXIT_CODE: i32 = 137;

impl Terminated {
    pub fn exited(code: i32, started_at: String, finished_at: String, id: &str) -> Terminated {
        Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" },
            message: None,
            started_at,
            finished_at,
            container_id: Some(container_id(id)),
        }
    }

    /// A container that disappeared (removed behind the node agent's back).
    pub fn lost(now: &str, id: &str) -> Terminated {
        Terminated {
            exit_code: LOST_EXIT_CODE,
            reason: "ContainerStatusUnknown",
            message: Some("The container could not be located when the pod was terminated"),
            started_at: String::new(),
            finished_at: now.to_string(),
            container_id: Some(container_id(id)),
        }
    }

    fn to_json(&self) -> Value {
        let mut state = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
        });
        // A time the runtime did not record is left out: "" is no time.
        for (field, time) in [
            ("startedAt", &self.started_at),
            ("finishedAt", &self.finished_at),
        ] {
            if !time.is_empty() {
                state[field] = time.clone().into();
            }
        }
        if let Some(message) = self.message {
            state["message"] = message.into();
        }
        if let Some(id) = &self.container_id {
            state["containerID"] = id.clone().into();
        }
        json!({ "terminated": state })
    }
}

/// How a container's ID is shown in a pod's status.
pub fn container_id(id: &str) -> String {
    format!("strata://{id}")
}

/// What a container is doing now, as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Not running yet (ContainerCreating, ErrImageNeverPull, …) or
    /// waiting to be restarted (CrashLoopBackOff).
    Waiting {
        reason: &'static str,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

impl Observed {
    pub fn creating() -> Observed {
        Observed::Waiting {
            reason: "ContainerCreating",
            message: None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Observed::Waiting { reason, message } => {
                let mut waiting = json!({ "reason": reason });
                if let Some(message) = message {
                    waiting["message"] = message.clone().into();
                }
                json!({ "waiting": waiting })
            }
            Observed::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            Observed::Terminated(terminated) => terminated.to_json(),
        }
    }
}

/// One container of the pod, as the node agent knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// "" until the image is found.
    pub image_id: String,
    /// The runtime's ID of the current attempt, if there is one.
    pub container_id: Option<String>,
    pub restarts: u32,
    pub state: Observed,
    /// How the previous attempt ended.
    pub last: Option<Terminated>,
}

impl ContainerView {
    fn running(&self) -> bool {
        matches!(self.state, Observed::Running { .. })
    }

    fn to_json(&self) -> Value {
        let mut status = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.running(),
            "started": self.running(),
            "restartCount": self.restarts,
            "state": self.state.to_json(),
            "lastState": self.last.as_ref().map_or(json!({}), Terminated::to_json),
        });
        if let Some(id) = &self.container_id {
            status["containerID"] = container_id(id).into();
        }
        status
    }
}

/// Whether an init container has done its work: exited 0.
pub fn completed(state: &Observed) -> bool {
    matches!(state, Observed::Terminated(t) if t.exit_code == 0)
}

/// Whether a container's latest attempt failed (it may be waiting to be
/// restarted).
fn failed(c: &ContainerView) -> bool {
    match &c.state {
        Observed::Terminated(t) => t.exit_code != 0,
        Observed::Waiting { .. } => c.last.as_ref().is_some_and(|t| t.exit_code != 0),
        Observed::Running { .. } => false,
    }
}

/// The pod's phase, from its init containers, containers and restart
/// policy (upstream's `getPhase`, without sidecars).
pub fn phase(
    init: &[ContainerView],
    containers: &[ContainerView],
    policy: RestartPolicy,
) -> &'static str {
    if policy == RestartPolicy::Never && init.iter().any(failed) {
        return "Failed";
    }
    if !init.iter().all(|c| completed(&c.state)) {
        return "Pending";
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            Observed::Running { .. } => running += 1,
            Observed::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            // Waiting to be restarted: it has run, and stopped.
            Observed::Waiting { .. } if c.last.is_some() => stopped += 1,
            Observed::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 || containers.is_empty() {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    match policy {
        RestartPolicy::Always => "Running",
        _ if stopped == succeeded => "Succeeded",
        RestartPolicy::OnFailure => "Running",
        RestartPolicy::Never => "Failed",
    }
}

/// Everything the status is made from.
pub struct PodFacts<'a> {
    /// Its init containers, in order.
    pub init: &'a [ContainerView],
    pub containers: &'a [ContainerView],
    pub policy: RestartPolicy,
    pub host_network: bool,
    /// The status stored now (`null` if none): its transition times and
    /// start time are kept, and fields the node agent does not own.
    pub old: &'a Value,
    pub now: &'a str,
}

/// The pod's new status.
pub fn pod_status(facts: &PodFacts) -> Value {
    let mut status: Map<String, Value> = facts.old.as_object().cloned().unwrap_or_default();
    let phase = phase(facts.init, facts.containers, facts.policy);
    status.insert("phase".into(), phase.into());
    status.insert("conditions".into(), conditions(facts, phase).into());
    status.insert("hostIP".into(), HOST_IP.into());
    status.insert("hostIPs".into(), json!([{ "ip": HOST_IP }]));
    if facts.host_network {
        status.insert("podIP".into(), HOST_IP.into());
        status.insert("podIPs".into(), json!([{ "ip": HOST_IP }]));
    }
    status
        .entry("startTime")
        .or_insert_with(|| facts.now.into());
    let containers: Vec<Value> = facts
        .containers
        .iter()
        .map(ContainerView::to_json)
        .collect();
    status.insert("containerStatuses".into(), containers.into());
    if !facts.init.is_empty() {
        let init: Vec<Value> = facts.init.iter().map(ContainerView::to_json).collect();
        status.insert("initContainerStatuses".into(), init.into());
    }
    Value::Object(status)
}

/// The kubelet's four conditions, then any others the pod had.
fn conditions(facts: &PodFacts, phase: &str) -> Vec<Value> {
    let unready: Vec<&str> = facts
        .containers
        .iter()
        .filter(|c| !c.running())
        .map(|c| c.name.as_str())
        .collect();
    let ready = if unready.is_empty() {
        ("True", None, None)
    } else if phase == "Succeeded" {
        ("False", Some("PodCompleted"), None)
    } else {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        ("False", Some("ContainersNotReady"), Some(message))
    };
    let incomplete: Vec<&str> = facts
        .init
        .iter()
        .filter(|c| !completed(&c.state))
        .map(|c| c.name.as_str())
        .collect();
    let initialized = if incomplete.is_empty() {
        ("True", None, None)
    } else {
        let message = format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        );
        ("False", Some("ContainersNotInitialized"), Some(message))
    };
    let old: &[Value] = facts
        .old
        .get("conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let condition =
        |kind: &str, (status, reason, message): (&str, Option<&str>, Option<String>)| {
            let since = old
                .iter()
                .find(|c| c["type"] == kind && c["status"] == status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| facts.now.into());
            let mut condition = json!({
                "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since,
            });
            if let Some(reason) = reason {
                condition["reason"] = reason.into();
            }
            if let Some(message) = message {
                condition["message"] = message.into();
            }
            condition
        };
    let mut list = vec![
        condition("Initialized", initialized),
        condition("Ready", ready.clone()),
        condition("ContainersReady", ready),
        condition("PodScheduled", ("True", None, None)),
    ];
    let ours = ["Initialized", "Ready", "ContainersReady", "PodScheduled"];
    list.extend(
        old.iter()
            .filter(|c| !ours.iter().any(|kind| c["type"] == *kind))
            .cloned(),
    );
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-02T03:04:05Z";
    const EARLIER: &str = "2025-01-01T00:00:00Z";

    fn running() -> Observed {
        Observed::Running {
            started_at: EARLIER.into(),
        }
    }

    fn exited(code: i32) -> Observed {
        Observed::Terminated(Terminated::exited(code, EARLIER.into(), NOW.into(), "c1"))
    }

    fn waiting(reason: &'static str) -> Observed {
        Observed::Waiting {
            reason,
            message: None,
        }
    }

    /// A container in `state`; with `restarted`, its previous attempt
    /// failed.
    fn view(index: usize, state: Observed, restarted: bool) -> ContainerView {
        ContainerView {
            name: format!("c{index}"),
            image: "busybox".into(),
            image_id: "sha256:1".into(),
            container_id: Some("c1".into()),
            restarts: u32::from(restarted),
            state,
            last: restarted.then(|| Terminated::exited(1, EARLIER.into(), EARLIER.into(), "c0")),
        }
    }

    fn views(states: Vec<(Observed, bool)>, prefix: &str) -> Vec<ContainerView> {
        let named = |(i, (state, restarted))| ContainerView {
            name: format!("{prefix}{i}"),
            ..view(i, state, restarted)
        };
        states.into_iter().enumerate().map(named).collect()
    }

    /// The phase, the Initialized and Ready conditions (`status/reason`)
    /// and each container's state (`key/reason`, init containers first)
    /// for init containers and containers in the given states (`true`:
    /// its previous attempt failed).
    fn check(
        init: Vec<(Observed, bool)>,
        main: Vec<(Observed, bool)>,
        policy: RestartPolicy,
        expected: (&str, &str, &str, &[&str]),
    ) {
        let (init, containers) = (views(init, "i"), views(main, "c"));
        let status = pod_status(&PodFacts {
            init: &init,
            containers: &containers,
            policy,
            host_network: false,
            old: &Value::Null,
            now: NOW,
        });
        let condition = |kind: &str| {
            let list = status["conditions"].as_array().unwrap();
            let c = list.iter().find(|c| c["type"] == kind).unwrap();
            format!(
                "{}/{}",
                c["status"].as_str().unwrap(),
                c["reason"].as_str().unwrap_or("")
            )
        };
        let statuses = ["initContainerStatuses", "containerStatuses"];
        let states: Vec<String> = statuses
            .iter()
            .filter_map(|list| status[list].as_array())
            .flatten()
            .map(|c| {
                let (key, state) = c["state"].as_object().unwrap().iter().next().unwrap();
                format!("{key}/{}", state["reason"].as_str().unwrap_or(""))
            })
            .collect();
        let got = (
            status["phase"].as_str().unwrap().to_string(),
            condition("Initialized"),
            condition("Ready"),
            states,
        );
        let expected = (
            expected.0.to_string(),
            expected.1.to_string(),
            expected.2.to_string(),
            expected.3.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn phases_and_reasons_follow_the_restart_policy() {
        use RestartPolicy::*;
        let (init, unready, done) = ("True/", "False/ContainersNotReady", "False/PodCompleted");
        let cases = [
            (
                vec![(waiting("ContainerCreating"), false)],
                Always,
                ("Pending", init, unready, vec!["waiting/ContainerCreating"]),
            ),
            (
                vec![(waiting("ErrImageNeverPull"), false)],
                Never,
                ("Pending", init, unready, vec!["waiting/ErrImageNeverPull"]),
            ),
            (
                vec![(running(), false)],
                Always,
                ("Running", init, "True/", vec!["running/"]),
            ),
            (
                vec![(running(), false), (waiting("ContainerCreating"), false)],
                Always,
                (
                    "Pending",
                    init,
                    unready,
                    vec!["running/", "waiting/ContainerCreating"],
                ),
            ),
            (
                vec![(exited(0), false)],
                Never,
                ("Succeeded", init, done, vec!["terminated/Completed"]),
            ),
            (
                vec![(exited(2), false)],
                Never,
                ("Failed", init, unready, vec!["terminated/Error"]),
            ),
            (
                vec![(exited(0), false), (exited(1), false)],
                Never,
                (
                    "Failed",
                    init,
                    unready,
                    vec!["terminated/Completed", "terminated/Error"],
                ),
            ),
            (
                vec![(exited(0), false), (running(), false)],
                Never,
                (
                    "Running",
                    init,
                    unready,
                    vec!["terminated/Completed", "running/"],
                ),
            ),
            (
                vec![(exited(0), false)],
                OnFailure,
                ("Succeeded", init, done, vec!["terminated/Completed"]),
            ),
            (
                vec![(waiting("CrashLoopBackOff"), true)],
                OnFailure,
                ("Running", init, unready, vec!["waiting/CrashLoopBackOff"]),
            ),
            (
                vec![(waiting("CrashLoopBackOff"), true)],
                Always,
                ("Running", init, unready, vec!["waiting/CrashLoopBackOff"]),
            ),
            (
                vec![(running(), true)],
                OnFailure,
                ("Running", init, "True/", vec!["running/"]),
            ),
            (
                vec![(exited(0), false)],
                Always,
                ("Running", init, unready, vec!["terminated/Completed"]),
            ),
            (
                vec![(Observed::Terminated(Terminated::lost(NOW, "c1")), false)],
                Never,
                (
                    "Failed",
                    init,
                    unready,
                    vec!["terminated/ContainerStatusUnknown"],
                ),
            ),
        ];
        for (main, policy, (phase, initialized, ready, states)) in cases {
            check(vec![], main, policy, (phase, initialized, ready, &states));
        }
    }

    #[test]
    fn init_containers_come_first() {
        use RestartPolicy::*;
        let pending = "False/ContainersNotInitialized";
        let unready = "False/ContainersNotReady";
        let main = || vec![(waiting("PodInitializing"), false)];
        check(
            vec![(running(), false)],
            main(),
            Always,
            (
                "Pending",
                pending,
                unready,
                &["running/", "waiting/PodInitializing"],
            ),
        );
        check(
            vec![(exited(0), false), (waiting("ContainerCreating"), false)],
            main(),
            Never,
            (
                "Pending",
                pending,
                unready,
                &[
                    "terminated/Completed",
                    "waiting/ContainerCreating",
                    "waiting/PodInitializing",
                ],
            ),
        );
        check(
            vec![(exited(1), false)],
            main(),
            Never,
            (
                "Failed",
                pending,
                unready,
                &["terminated/Error", "waiting/PodInitializing"],
            ),
        );
        check(
            vec![(waiting("CrashLoopBackOff"), true)],
            main(),
            OnFailure,
            (
                "Pending",
                pending,
                unready,
                &["waiting/CrashLoopBackOff", "waiting/PodInitializing"],
            ),
        );
        check(
            vec![(exited(0), false)],
            vec![(running(), false)],
            Always,
            (
                "Running",
                "True/",
                "True/",
                &["terminated/Completed", "running/"],
            ),
        );
    }

    #[test]
    fn transition_times_and_foreign_fields_are_kept_while_nothing_changes() {
        let containers = [view(0, running(), false)];
        let facts = |old| PodFacts {
            init: &[],
            containers: &containers,
            policy: RestartPolicy::Always,
            host_network: true,
            old,
            now: NOW,
        };
        let old = json!({
            "qosClass": "BestEffort",
            "startTime": EARLIER,
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": EARLIER},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": EARLIER},
                {"type": "example.com/gate", "status": "True"},
            ],
        });
        let status = pod_status(&facts(&old));
        let since = |kind: &str| {
            let list = status["conditions"].as_array().unwrap();
            let c = list.iter().find(|c| c["type"] == kind).unwrap();
            c["lastTransitionTime"].as_str().unwrap_or("").to_string()
        };
        assert_eq!(since("Ready"), EARLIER);
        assert_eq!(since("ContainersReady"), NOW);
        assert_eq!(since("example.com/gate"), "");
        assert_eq!(status["qosClass"], "BestEffort");
        assert_eq!(status["startTime"], EARLIER);
        assert_eq!(status["podIP"], HOST_IP);
        assert_eq!(status["containerStatuses"][0]["containerID"], "strata://c1");
        // The same facts again give the same status: nothing to write.
        assert_eq!(pod_status(&facts(&status)), status);
    }
}
