//! Which candidates drifted, from their tenants' stack lists (pure), and how many of them one
//! pass repairs.

use super::read::Candidate;
use crate::heat::StackRef;
use std::collections::HashMap;

/// A candidate whose stack is gone or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drifted {
    pub candidate: Candidate,
    /// Why, for the log: `its stack is gone`, `its stack is UPDATE_FAILED`.
    pub drift: String,
}

/// One tenant's stacks as listed: status by stack name.
pub type Listing = HashMap<String, String>;

/// Indexes a stack list by name.
pub fn listing(stacks: Vec<(StackRef, String)>) -> Listing {
    stacks.into_iter().map(|(stack, status)| (stack.name, status)).collect()
}

/// The candidates that drifted, in the order given. A candidate whose tenant has no listing (its
/// list failed) is not judged: it waits for the next pass.
pub fn drifted(candidates: Vec<Candidate>, listings: &HashMap<String, Listing>) -> Vec<Drifted> {
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let listing = listings.get(&candidate.tenant)?;
            let drift = match listing.get(&candidate.stack_name) {
                None => "its stack is gone".to_owned(),
                Some(status) if status.ends_with("_FAILED") => format!("its stack is {status}"),
                Some(_) => return None,
            };
            Some(Drifted { candidate, drift })
        })
        .collect()
}

/// Splits the drifted into what this pass repairs (at most `cap`, in order) and what it leaves
/// for later passes.
pub fn cap(mut drifted: Vec<Drifted>, cap: usize) -> (Vec<Drifted>, Vec<Drifted>) {
    let deferred = drifted.split_off(cap.min(drifted.len()));
    (drifted, deferred)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(tenant: &str, name: &str) -> Candidate {
        Candidate {
            state_key: format!("/state/v2.0/networks/{name}"),
            version: 1,
            tenant: tenant.into(),
            stack_name: name.into(),
            snapshot_key: format!("/esi-worker/config/v2.0/networks/{name}"),
            snapshot_revision: 5,
        }
    }

    fn stack(name: &str, status: &str) -> (StackRef, String) {
        (StackRef { name: name.into(), id: format!("id-{name}") }, status.into())
    }

    #[test]
    fn a_stack_missing_from_the_list_is_gone_and_a_failed_one_failed() {
        let listings = HashMap::from([(
            "t1".to_owned(),
            listing(vec![
                stack("fine", "UPDATE_COMPLETE"),
                stack("busy", "UPDATE_IN_PROGRESS"),
                stack("broken", "UPDATE_FAILED"),
                stack("going", "DELETE_FAILED"),
            ]),
        )]);
        let candidates = ["fine", "busy", "broken", "vanished", "going"].map(|n| candidate("t1", n)).to_vec();
        let found: Vec<(String, String)> =
            drifted(candidates, &listings).into_iter().map(|d| (d.candidate.stack_name, d.drift)).collect();
        assert_eq!(
            found,
            vec![
                ("broken".to_owned(), "its stack is UPDATE_FAILED".to_owned()),
                ("vanished".to_owned(), "its stack is gone".to_owned()),
                ("going".to_owned(), "its stack is DELETE_FAILED".to_owned()),
            ]
        );
    }

    #[test]
    fn the_candidates_of_a_tenant_whose_list_failed_are_not_judged() {
        let listings = HashMap::from([("t1".to_owned(), listing(vec![stack("n1", "CREATE_COMPLETE")]))]);
        let found = drifted(vec![candidate("t2", "n1"), candidate("t1", "n2")], &listings);
        assert_eq!(found.len(), 1, "t2 was not listed: its candidate waits");
        assert_eq!(found[0].candidate.stack_name, "n2");
    }

    #[test]
    fn the_cap_keeps_the_first_and_defers_the_rest() {
        let all: Vec<Drifted> = (0..5)
            .map(|n| Drifted { candidate: candidate("t1", &format!("n{n}")), drift: "its stack is gone".into() })
            .collect();
        let (now, later) = cap(all.clone(), 3);
        assert_eq!((now.len(), later.len()), (3, 2));
        assert_eq!(now[0], all[0]);
        assert_eq!(later[0], all[3]);
        assert_eq!(cap(all.clone(), 10).1.len(), 0);
        assert_eq!(cap(all, 0).0.len(), 0);
    }
}
