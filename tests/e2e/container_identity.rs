//! Container identity end to end: a deadlock run inside a cgroup shaped like a Kubernetes pod's
//! containerd container (`.../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`), and
//! the workload named in summary.json, in each finding, in the stuck snapshot and in report.html.
use std::path::{Path, PathBuf};

use observer::{analysis::Classification, container::Workload};

use crate::harness::*;

const POD_UID: &str = "0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d";
const CONTAINER_ID: &str = "4f1c6a2b9d8e7f60112233445566778899aabbccddeeff00112233445566aabb";

/// Nested cgroup directories (v1 pids hierarchy where mounted, else v2), removed innermost first.
struct NestedCgroup(Vec<PathBuf>);

impl NestedCgroup {
    fn new(components: &[String]) -> Self {
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let mut dir = if v1.join("cgroup.procs").exists() { v1.to_path_buf() } else { PathBuf::from("/sys/fs/cgroup") };
        let mut made = Vec::new();
        for c in components {
            dir = dir.join(c);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            made.push(dir.clone());
        }
        NestedCgroup(made)
    }

    fn leaf(&self) -> &Path {
        self.0.last().unwrap()
    }
}

impl Drop for NestedCgroup {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn a_deadlock_in_a_pod_container_names_the_pod_and_the_container_everywhere() {
    let Some(_cpu) = bpf_or_skip("container identity") else { return };
    let pod_slice = format!("kubepods-burstable-pod{}.slice", POD_UID.replace('-', "_"));
    let cgroup = NestedCgroup::new(&[
        format!("observer-e2e-{}", std::process::id()),
        "kubepods.slice".into(),
        "kubepods-burstable.slice".into(),
        pod_slice,
        format!("cri-containerd-{CONTAINER_ID}.scope"),
    ]);
    let dir = scratch("container-abba");
    let cgroup_arg = cgroup.leaf().to_str().unwrap().to_string();
    observe(
        &dir,
        &["--cgroup", &cgroup_arg, "--hang-after", "2", "--timeout", "60"],
        &[workload("abba").to_str().unwrap()],
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["container.runtime"], "containerd", "{summary:#}");
    assert_eq!(summary["container.id"], CONTAINER_ID);
    assert_eq!(summary["pod.uid"], POD_UID);
    assert_eq!(summary["pod.qos_class"], "burstable");
    assert_eq!(summary["systemd_unit"], format!("cri-containerd-{CONTAINER_ID}.scope"));

    let c: Classification =
        serde_json::from_str(&std::fs::read_to_string(dir.join("classification.json")).unwrap()).unwrap();
    assert!(!c.findings.is_empty());
    for f in &c.findings {
        let w: &Workload = f.workload.as_ref().unwrap_or_else(|| panic!("{} names no workload", f.signature));
        assert_eq!(
            (w.runtime.as_deref(), w.container_id.as_deref(), w.pod_uid.as_deref(), w.qos_class.as_deref()),
            (Some("containerd"), Some(CONTAINER_ID), Some(POD_UID), Some("burstable")),
            "{f:#?}"
        );
    }
    let stuck = observer::analysis::snapshot::StuckSnapshot::read(&dir).expect("a stuck snapshot");
    assert!(stuck.processes.iter().all(|p| p.workload.as_ref().and_then(|w| w.pod_uid.as_deref()) == Some(POD_UID)));
    let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(
        report.contains(&format!("   in: containerd container 4f1c6a2b9d8e, pod {POD_UID} (burstable)")),
        "{report}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(&format!("<dt>pod</dt><dd>{POD_UID}</dd>")), "the page names the pod");
}
