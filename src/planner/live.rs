//! The live jobs (`/jobs/all`), indexed by the resource each one owns and the resources its
//! params reference, so a new job's dependencies cost what they are, not a scan of every live job.

use super::decide::referenced;
use crate::protocol::{Job, ResourceRef};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct LiveJobs {
    jobs: HashMap<String, Job>,
    /// Resource → the live jobs of that resource.
    owning: HashMap<ResourceRef, BTreeSet<String>>,
    /// Resource → the live jobs whose params reference it.
    referencing: HashMap<ResourceRef, BTreeSet<String>>,
    /// Job id → the live jobs that list it as a dependency.
    waiters: HashMap<String, BTreeSet<String>>,
}

fn owner(job: &Job) -> ResourceRef {
    ResourceRef::new(&job.spec.resource_type, &job.spec.resource_id)
}

impl LiveJobs {
    pub fn insert(&mut self, job: Job) {
        self.remove(&job.id);
        self.owning.entry(owner(&job)).or_default().insert(job.id.clone());
        for resource in referenced(&job) {
            self.referencing.entry(resource).or_default().insert(job.id.clone());
        }
        for dependency in &job.dependency {
            self.waiters.entry(dependency.clone()).or_default().insert(job.id.clone());
        }
        self.jobs.insert(job.id.clone(), job);
    }

    pub fn remove(&mut self, id: &str) -> Option<Job> {
        let job = self.jobs.remove(id)?;
        let unlink = |index: &mut HashMap<ResourceRef, BTreeSet<String>>, resource: ResourceRef| {
            if let Some(ids) = index.get_mut(&resource) {
                ids.remove(id);
                if ids.is_empty() {
                    index.remove(&resource);
                }
            }
        };
        unlink(&mut self.owning, owner(&job));
        for resource in referenced(&job) {
            unlink(&mut self.referencing, resource);
        }
        for dependency in &job.dependency {
            if let Some(ids) = self.waiters.get_mut(dependency) {
                ids.remove(id);
                if ids.is_empty() {
                    self.waiters.remove(dependency);
                }
            }
        }
        Some(job)
    }

    pub fn get(&self, id: &str) -> Option<&Job> {
        self.jobs.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.jobs.contains_key(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    /// A live job of a resource, if any.
    pub fn of_resource(&self, resource_type: &str, resource_id: &str) -> Option<&Job> {
        let ids = self.owning.get(&ResourceRef::new(resource_type, resource_id))?;
        ids.iter().next().and_then(|id| self.jobs.get(id))
    }

    /// The live jobs that wait for `id`.
    pub fn waiters_of(&self, id: &str) -> impl Iterator<Item = &String> {
        self.waiters.get(id).into_iter().flatten()
    }

    /// [`super::decide::dependencies`] of `new` over these jobs, through the indexes.
    pub fn dependencies(&self, new: &Job) -> Vec<String> {
        let mine = owner(new);
        let mut ids: BTreeSet<&String> = BTreeSet::new();
        ids.extend(self.owning.get(&mine).into_iter().flatten());
        ids.extend(self.referencing.get(&mine).into_iter().flatten());
        for resource in referenced(new) {
            ids.extend(self.owning.get(&resource).into_iter().flatten());
        }
        ids.into_iter().filter(|id| **id != new.id).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::dependencies;
    use super::*;

    fn job(id: &str, resource: (&str, &str), refs: &[(&str, &str)]) -> Job {
        super::super::decide::tests::job(id, resource, refs, &[])
    }

    #[test]
    fn indexed_dependencies_equal_the_rule() {
        let jobs = vec![
            job("a", ("network", "n1"), &[]),
            job("b", ("subnet", "s1"), &[("network", "n1")]),
            job("c", ("port", "p1"), &[("network", "n1"), ("subnet", "s1")]),
            job("d", ("network", "n2"), &[]),
            job("e", ("subnet", "s1"), &[("network", "n2")]),
        ];
        let mut live = LiveJobs::default();
        for (n, new) in jobs.iter().enumerate() {
            assert_eq!(live.dependencies(new), dependencies(new, &jobs[..n]), "{}", new.id);
            live.insert(new.clone());
        }
        let probe = job("f", ("network", "n1"), &[("subnet", "s1")]);
        assert_eq!(live.dependencies(&probe), dependencies(&probe, &jobs));
        live.remove("b");
        let rest: Vec<Job> = jobs.iter().filter(|j| j.id != "b").cloned().collect();
        assert_eq!(live.dependencies(&probe), dependencies(&probe, &rest));
        assert_eq!(live.of_resource("subnet", "s1").map(|j| j.id.as_str()), Some("e"));
        let mut waiting = job("w", ("port", "p9"), &[]);
        waiting.dependency = vec!["a".into(), "d".into()];
        live.insert(waiting);
        assert_eq!(live.waiters_of("d").collect::<Vec<_>>(), vec!["w"]);
        live.remove("w");
        assert_eq!(live.waiters_of("d").count(), 0);
        assert_eq!(live.values().count(), 4);
    }
}
