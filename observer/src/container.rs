//! Which workload a process belongs to, read from its cgroup path: the container (Docker,
//! containerd, CRI-O, Podman, LXC) and its id, the Kubernetes pod uid and QoS class, and the systemd
//! unit, as the runtimes and systemd name their cgroups. Pure string work: the paths come from
//! `/proc/<pid>/cgroup` through the preflight, the failure facts and the stuck snapshot.
use serde::{Deserialize, Serialize};

/// The workload a cgroup path names. Fields the path does not say are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// `docker`, `containerd`, `cri-o`, `podman`, `lxc`; absent for a container whose runtime the
    /// path does not say (Kubernetes with the cgroupfs driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The Kubernetes pod's uid (with dashes, as `kubectl get pod -o jsonpath='{.metadata.uid}'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// `guaranteed`, `burstable` or `besteffort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
    /// The innermost systemd unit: `nginx.service`, `session-2.scope`, `docker-<id>.scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The cgroup path it was read from.
    pub cgroup: String,
}

fn is_container_id(text: &str) -> bool {
    text.len() >= 12 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `docker-<id>.scope` and the like: (runtime, id).
fn scope_container(component: &str) -> Option<(&'static str, &str)> {
    let stem = component.strip_suffix(".scope")?;
    // conmon, the monitor process of CRI-O and Podman, has a scope of its own beside the container.
    if stem.starts_with("crio-conmon-") || stem.starts_with("libpod-conmon-") {
        return None;
    }
    [("docker-", "docker"), ("cri-containerd-", "containerd"), ("crio-", "cri-o"), ("libpod-", "podman")]
        .into_iter()
        .find_map(|(prefix, runtime)| Some((runtime, stem.strip_prefix(prefix)?)))
        .filter(|(_, id)| is_container_id(id))
}

/// `kubepods-burstable-pod<uid>.slice` (systemd driver, `_` for `-`) or `pod<uid>` (cgroupfs).
fn pod_uid(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(stem) if stem.starts_with("kubepods") => stem.rsplit_once("-pod")?.1,
        Some(_) => return None,
        None => component.strip_prefix("pod")?,
    };
    let uid = uid.replace('_', "-");
    (uid.len() >= 32 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

impl Workload {
    /// What one cgroup path (`/system.slice/docker-<id>.scope`) says, or `None` when it names no
    /// container, pod or unit (the root cgroup, a plain directory).
    pub fn from_path(path: &str) -> Option<Workload> {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut w = Workload { cgroup: path.to_string(), ..Workload::default() };
        let in_kubepods = components.iter().any(|c| c.starts_with("kubepods"));
        for (i, c) in components.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| components[p]);
            if let Some((runtime, id)) = scope_container(c) {
                w.runtime = Some(runtime.to_string());
                w.container_id = Some(id.to_string());
            } else if is_container_id(c) && matches!(parent, Some(p) if p == "docker" || p.starts_with("pod")) {
                // cgroupfs driver: /docker/<id>, or /kubepods/<qos>/pod<uid>/<id> (runtime unsaid).
                w.runtime = (parent == Some("docker")).then(|| "docker".to_string());
                w.container_id = Some(c.to_string());
            } else if let Some(name) =
                c.strip_prefix("lxc.payload.").or(if parent == Some("lxc") { Some(c) } else { None })
            {
                w.runtime = Some("lxc".into());
                w.container_id = Some(name.to_string());
            }
            if in_kubepods {
                if let Some(uid) = pod_uid(c) {
                    w.pod_uid = Some(uid);
                }
            }
            if c.ends_with(".service") || c.ends_with(".scope") {
                w.systemd_unit = Some(c.to_string());
            }
        }
        if w.pod_uid.is_some() {
            let qos = ["besteffort", "burstable"]
                .into_iter()
                .find(|q| components.iter().any(|c| *c == *q || *c == format!("kubepods-{q}.slice")));
            w.qos_class = Some(qos.unwrap_or("guaranteed").to_string());
        }
        let named = w.container_id.is_some() || w.pod_uid.is_some() || w.systemd_unit.is_some();
        named.then_some(w)
    }

    /// The best of a process's cgroup lines (`(hierarchy, path)` as `/proc/<pid>/cgroup` has them):
    /// the first naming a container or pod, else the unified (v2) or `name=systemd` one naming a unit.
    pub fn from_cgroups<'a>(lines: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Workload> {
        let found: Vec<(bool, Workload)> = lines
            .into_iter()
            .filter_map(|(hierarchy, path)| {
                let systemd = hierarchy == "v2" || hierarchy.is_empty() || hierarchy == "name=systemd";
                Some((systemd, Workload::from_path(path)?))
            })
            .collect();
        let container = found.iter().find(|(_, w)| w.container_id.is_some() || w.pod_uid.is_some());
        let unit = found.iter().find(|(systemd, w)| *systemd && w.systemd_unit.is_some());
        match (container, unit) {
            (Some((_, c)), Some((_, u))) if c.systemd_unit.is_none() => {
                Some(Workload { systemd_unit: u.systemd_unit.clone(), ..c.clone() })
            }
            (Some((_, w)), _) | (None, Some((_, w))) => Some(w.clone()),
            (None, None) => found.into_iter().next().map(|(_, w)| w),
        }
    }

    /// `docker container 0123456789ab (pod 5f1c..., burstable) in docker-0123....scope`: for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.runtime, &self.container_id) {
            (Some(runtime), Some(id)) => parts.push(format!("{runtime} container {}", short(id))),
            (None, Some(id)) => parts.push(format!("container {}", short(id))),
            _ => {}
        }
        if let Some(uid) = &self.pod_uid {
            parts.push(format!("pod {uid} ({})", self.qos_class.as_deref().unwrap_or("?")));
        }
        // A container's own scope (`docker-<id>.scope`) says nothing the id did not.
        let own_scope = |unit: &str| self.container_id.as_ref().is_some_and(|id| unit.contains(id.as_str()));
        if let Some(unit) = self.systemd_unit.as_deref().filter(|u| !own_scope(u)) {
            parts.push(format!("unit {unit}"));
        }
        parts.join(", ")
    }

    /// The summary keys: `container.runtime`, `container.id`, `pod.uid`, `pod.qos_class`,
    /// `systemd_unit`, `cgroup`, each under `prefix`.
    pub fn put(&self, summary: &mut crate::summary::Summary, prefix: &str) {
        let fields = [
            ("container.runtime", &self.runtime),
            ("container.id", &self.container_id),
            ("pod.uid", &self.pod_uid),
            ("pod.qos_class", &self.qos_class),
            ("systemd_unit", &self.systemd_unit),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                summary.put(format!("{prefix}{key}"), value.clone());
            }
        }
        summary.put(format!("{prefix}cgroup"), self.cgroup.clone());
    }
}

/// The first 12 characters of a container id, as `docker ps` shows them.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c6a2b9d8e7f60112233445566778899aabbccddeeff00112233445566aabb";

    fn of(path: &str) -> Workload {
        Workload::from_path(path).unwrap_or_else(|| panic!("{path} names nothing"))
    }

    #[test]
    fn docker_with_the_systemd_and_the_cgroupfs_drivers() {
        let w = of(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!((w.runtime.as_deref(), w.container_id.as_deref()), (Some("docker"), Some(ID)));
        assert_eq!(w.systemd_unit, Some(format!("docker-{ID}.scope")));
        let w = of(&format!("/docker/{ID}"));
        assert_eq!(
            (w.runtime.as_deref(), w.container_id.as_deref(), w.systemd_unit.as_deref()),
            (Some("docker"), Some(ID), None)
        );
        assert_eq!(w.describe(), "docker container 4f1c6a2b9d8e");
    }

    #[test]
    fn kubernetes_pods_with_containerd_and_cri_o_under_both_drivers() {
        let w = of(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c6c2fd5_2b7e_4f2a_9d4c_7b1f0e2a3c4d.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(w.runtime.as_deref(), Some("containerd"));
        assert_eq!(w.container_id.as_deref(), Some(ID));
        assert_eq!(w.pod_uid.as_deref(), Some("0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d"));
        assert_eq!(w.qos_class.as_deref(), Some("burstable"));
        let w = of(&format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0c6c2fd5_2b7e_4f2a_9d4c_7b1f0e2a3c4d.slice/crio-{ID}.scope"
        ));
        assert_eq!((w.runtime.as_deref(), w.qos_class.as_deref()), (Some("cri-o"), Some("besteffort")));
        // A guaranteed pod sits directly under kubepods.
        let w = of(&format!(
            "/kubepods.slice/kubepods-pod0c6c2fd5_2b7e_4f2a_9d4c_7b1f0e2a3c4d.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(w.qos_class.as_deref(), Some("guaranteed"));
        // cgroupfs driver: the runtime is not in the path.
        let w = of(&format!("/kubepods/burstable/pod0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d/{ID}"));
        assert_eq!((w.runtime.as_deref(), w.container_id.as_deref()), (None, Some(ID)));
        assert_eq!(w.pod_uid.as_deref(), Some("0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d"));
        assert_eq!(w.describe(), "container 4f1c6a2b9d8e, pod 0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d (burstable)");
    }

    #[test]
    fn podman_rootful_rootless_and_its_conmon() {
        let w = of(&format!("/machine.slice/libpod-{ID}.scope"));
        assert_eq!((w.runtime.as_deref(), w.container_id.as_deref()), (Some("podman"), Some(ID)));
        let w = of(&format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"));
        assert_eq!((w.runtime.as_deref(), w.container_id.as_deref()), (Some("podman"), Some(ID)));
        let conmon = of(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
        assert_eq!((conmon.container_id, conmon.systemd_unit), (None, Some(format!("libpod-conmon-{ID}.scope"))));
    }

    #[test]
    fn lxc_and_systemd_units_and_plain_paths() {
        assert_eq!(of("/lxc.payload.web01").container_id.as_deref(), Some("web01"));
        assert_eq!(of("/lxc/web01").runtime.as_deref(), Some("lxc"));
        let w = of("/system.slice/nginx.service");
        assert_eq!((w.systemd_unit.as_deref(), w.container_id.as_deref()), (Some("nginx.service"), None));
        assert_eq!(w.describe(), "unit nginx.service");
        let w = of(
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope",
        );
        assert_eq!(w.systemd_unit.as_deref(), Some("vte-spawn-1.scope"));
        assert_eq!(Workload::from_path("/"), None);
        assert_eq!(Workload::from_path("/observer-e2e-clone-123"), None);
        assert_eq!(Workload::from_path("/user.slice"), None, "a slice is no unit");
    }

    #[test]
    fn a_process_is_named_by_its_container_line_and_its_systemd_unit() {
        let pids = format!("/ci.slice/docker-{ID}.scope");
        let lines = [
            ("pids", pids.as_str()),
            ("name=systemd", "/user.slice/user-0.slice/session-3.scope"),
            ("v2", "/user.slice/user-0.slice/session-3.scope"),
        ];
        let w = Workload::from_cgroups(lines).unwrap();
        assert_eq!((w.runtime.as_deref(), w.container_id.as_deref()), (Some("docker"), Some(ID)));
        assert_eq!(w.systemd_unit, Some(format!("docker-{ID}.scope")), "the container's own scope");
        let w = Workload::from_cgroups([("pids", "/"), ("v2", "/system.slice/cron.service")]).unwrap();
        assert_eq!((w.container_id, w.systemd_unit.as_deref()), (None, Some("cron.service")));
        assert_eq!(Workload::from_cgroups([("pids", "/"), ("v2", "/")]), None);
    }
}
