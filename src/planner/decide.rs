//! The planner's decisions, without I/O: which action a config change needs (PROTOCOL.md §3.3),
//! which live jobs a new job waits for (§6.1), which waiting jobs a completion releases (§6.2) and
//! which ones a failure cancels (§6.3).

use crate::protocol::{Action, ConfigRecord, Job, ResourceRef, WorkerSnapshot};
use std::collections::{BTreeSet, HashSet};

/// The action a `/config` record needs, or `None` when its version was already processed.
pub fn choose_action(config: &ConfigRecord, snapshot: Option<&WorkerSnapshot>) -> Option<Action> {
    match snapshot {
        Some(s) if s.version == config.version && s.deleted == config.marked_for_deletion => None,
        _ if config.marked_for_deletion => Some(Action::LogicalDelete),
        // A resource brought back after its stack was deleted starts over.
        Some(s) if !s.deleted => Some(Action::Modify),
        _ => Some(Action::Create),
    }
}

/// `R(j)`: every resource a job's params reference, de-duplicated.
pub fn referenced(job: &Job) -> HashSet<ResourceRef> {
    job.spec.params.iter().flat_map(|p| p.resources.iter().cloned()).collect()
}

#[cfg(test)]
fn owner(job: &Job) -> ResourceRef {
    ResourceRef::new(&job.spec.resource_type, &job.spec.resource_id)
}

/// The live jobs a new job must wait for: those whose resource it references (forward), those
/// that reference its resource (reverse), and any live job of its own resource, so that the jobs
/// of one resource never overlap. The definition: the planner uses [`super::live::LiveJobs`]'
/// indexed equivalent, which the tests hold to this.
#[cfg(test)]
pub fn dependencies<'a>(new: &Job, live: impl IntoIterator<Item = &'a Job>) -> Vec<String> {
    let mine = owner(new);
    let refs = referenced(new);
    let ids: BTreeSet<&str> = live
        .into_iter()
        .filter(|l| l.id != new.id)
        .filter(|l| {
            let theirs = owner(l);
            theirs == mine || refs.contains(&theirs) || l.spec.params.iter().any(|p| p.resources.contains(&mine))
        })
        .map(|l| l.id.as_str())
        .collect();
    ids.into_iter().map(str::to_owned).collect()
}

/// Whether a waiting job may run: none of its dependencies is still live.
pub fn releasable(job: &Job, is_live: impl Fn(&str) -> bool) -> bool {
    job.dependency.iter().all(|d| !is_live(d))
}

/// The waiting jobs that depend on `failed`, directly or through each other, in a stable order.
pub fn cancelled_by(failed: &str, waiting: &[&Job]) -> Vec<String> {
    let mut doomed: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![failed.to_owned()];
    while let Some(gone) = frontier.pop() {
        for job in waiting {
            if !doomed.contains(&job.id) && job.dependency.contains(&gone) {
                doomed.insert(job.id.clone());
                frontier.push(job.id.clone());
            }
        }
    }
    doomed.into_iter().collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::protocol::{JobSpec, Param, ParamValue};
    use serde_json::{Map, json};
    use std::collections::HashMap;

    fn config(version: u64, marked: bool) -> ConfigRecord {
        ConfigRecord::new(Map::new(), version, marked)
    }

    fn snapshot(version: u64, deleted: bool) -> WorkerSnapshot {
        WorkerSnapshot { body: Map::new().into(), deleted, version }
    }

    #[test]
    fn action_follows_the_snapshot() {
        assert_eq!(choose_action(&config(1, false), None), Some(Action::Create));
        assert_eq!(choose_action(&config(2, false), Some(&snapshot(1, false))), Some(Action::Modify));
        assert_eq!(choose_action(&config(2, false), Some(&snapshot(2, false))), None);
        assert_eq!(choose_action(&config(4, true), Some(&snapshot(3, false))), Some(Action::LogicalDelete));
        assert_eq!(choose_action(&config(4, true), Some(&snapshot(4, true))), None);
        assert_eq!(choose_action(&config(5, false), Some(&snapshot(4, true))), Some(Action::Create));
    }

    /// A create job of `resource` whose one param references `refs` (also for live.rs's tests).
    pub(in crate::planner) fn job(id: &str, resource: (&str, &str), refs: &[(&str, &str)], dependency: &[&str]) -> Job {
        Job {
            id: id.into(),
            dependency: dependency.iter().map(|d| (*d).to_owned()).collect(),
            spec: JobSpec {
                action: Action::Create,
                handler: "heat_worker".into(),
                resource_type: resource.0.into(),
                resource_id: resource.1.into(),
                version: 1,
                job_name: String::new(),
                is_first: true,
                is_last: true,
                on_failure: "fail".into(),
                params: vec![Param {
                    param: "p".into(),
                    value: ParamValue::Value(json!(null)),
                    resources: refs.iter().map(|(t, i)| ResourceRef::new(*t, *i)).collect(),
                }],
                resource_input: Map::new(),
            },
        }
    }

    #[test]
    fn dependencies_are_forward_reverse_and_same_resource() {
        let vnf = job("vnf", ("vnf_instance", "v"), &[], &[]);
        let conf = job("conf", ("load_balancer_conf", "c"), &[("vnf_instance", "v")], &[]);
        let iface = job("iface", ("load_balancer_interface", "i"), &[("load_balancer", "lb")], &[]);
        let older_lb = job("lb1", ("load_balancer", "lb"), &[], &[]);
        let unrelated = job("net", ("network", "n"), &[], &[]);
        let lb = job(
            "lb2",
            ("load_balancer", "lb"),
            &[("vnf_instance", "v"), ("load_balancer_conf", "c"), ("vnf_instance", "v")],
            &[],
        );
        let deps = dependencies(&lb, [&vnf, &conf, &iface, &older_lb, &unrelated]);
        assert_eq!(deps, vec!["conf", "iface", "lb1", "vnf"]);
    }

    #[test]
    fn release_and_transitive_cancellation() {
        let a = job("a", ("t", "a"), &[], &[]);
        let b = job("b", ("t", "b"), &[], &["a"]);
        let c = job("c", ("t", "c"), &[], &["b", "x"]);
        let d = job("d", ("t", "d"), &[], &["x"]);
        let live: HashMap<String, Job> = [("a".to_owned(), a.clone())].into();
        assert!(!releasable(&b, |id| live.contains_key(id)));
        assert!(releasable(&d, |id| live.contains_key(id)));
        assert_eq!(cancelled_by("a", &[&b, &c, &d]), vec!["b", "c"]);
        assert!(cancelled_by("zzz", &[&b, &c, &d]).is_empty());
    }
}
