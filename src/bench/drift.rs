//! `bench-drift`: one drift-repair pass over N converged load balancers, with the Heat calls and
//! etcd round trips it makes and its time, next to the ceiling of the same run: the bare paged
//! stack list and the bare etcd list it is made of. For comparison, the per-resource pass it
//! replaced (a Heat find and show and an etcd get per resource, in every worker) is timed on a
//! sample and scaled.
//!
//! Heat is a standalone one of the benchmark's own. Making 10,000 stacks through its API takes
//! about half an hour on 2 CPUs, so the first stack is made through the API and the others are
//! copies of its row in Heat's database (`heat/seed-stacks.py`): Heat lists them as any other.
//! 1% of the resources' stacks are missing and 1% are `CREATE_FAILED`, so the pass repairs up to
//! its cap and defers the rest, as after a partial loss of Heat.

use super::mirror::{TENANT, load_balancer_id};
use super::resync::load;
use crate::heat::{Endpoint, HeatClient, LIST_PAGE};
use crate::local::heat::create_none_stack;
use crate::local::{LocalEtcd, LocalHeat};
use crate::schema::Schema;
use crate::store::campaign;
use crate::worker::drift::{self, LEADER_KEY, read::listed_prefixes};
use std::time::{Duration, Instant};

/// How many resources the per-resource comparison times.
const SAMPLE: usize = 100;

fn stack_name(n: usize) -> String {
    format!("load_balancer_{}", load_balancer_id(n))
}

pub async fn drift(stacks: usize, max_repairs: usize, schema: &Schema) -> anyhow::Result<()> {
    anyhow::ensure!(stacks > 0, "--stacks must be at least 1");
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    let mut local = LocalHeat::own("bench-drift")?;
    let heat = HeatClient::new(Endpoint::NoAuth { base: local.start(true).await? })?;
    let gone = |n: usize| n % 100 == 99;
    let failed = |n: usize| n % 100 == 49;

    let started = Instant::now();
    let model = create_none_stack(&heat, TENANT, &stack_name(0)).await?;
    let seeded: Vec<(String, bool)> = (1..stacks).filter(|n| !gone(*n)).map(|n| (stack_name(n), failed(n))).collect();
    local.seed_stacks(&model.id, &seeded).await?;
    load(&store, stacks).await?;
    let (gone_count, failed_count) =
        ((0..stacks).filter(|n| gone(*n)).count(), (0..stacks).filter(|n| failed(*n)).count());
    println!(
        "bench-drift: {stacks} converged load balancers in one tenant; Heat holds {} stacks (1 made through its API, \
         {} seeded into its database, {failed_count} of them CREATE_FAILED), {gone_count} are gone; set up in {:.1} s",
        seeded.len() + 1,
        seeded.len(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let listed = heat.list(TENANT).await?;
    let heat_ceiling = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (keys, _) = store.list_many(&listed_prefixes()).await?;
    let etcd_ceiling = started.elapsed().as_secs_f64();

    let leadership = campaign(&store, LEADER_KEY, "bench-drift", Duration::from_secs(60)).await?;
    let (heat_before, etcd_before) = (heat.calls(), store.round_trips());
    let started = Instant::now();
    let pass = drift::check(&store, schema, &heat, &leadership, max_repairs).await?;
    let took = started.elapsed().as_secs_f64();
    let (heat_after, etcd_after) = (heat.calls(), store.round_trips());
    let list_calls = heat_after.stack_lists - heat_before.stack_lists;
    let repair_txns = pass.repaired.div_ceil(drift::repair::DELETES_PER_TXN) as u64;
    let etcd_trips = etcd_after - etcd_before;
    println!(
        "drift pass: {} checked, {} drifted, {} repaired, {} deferred (cap {max_repairs}) in {took:.2} s",
        pass.checked, pass.drifted, pass.repaired, pass.deferred
    );
    println!(
        "  Heat calls: {} ({list_calls} stack-list pages of {LIST_PAGE}, {} per stack); etcd round trips: {etcd_trips} \
         ({} list pages, {repair_txns} repair transactions)",
        heat_after.total - heat_before.total,
        heat_after.total - heat_before.total - list_calls,
        etcd_trips.saturating_sub(repair_txns),
    );
    println!(
        "ceiling: the bare paged stack list, {} stacks in {heat_ceiling:.2} s; the bare etcd list, {} keys in \
         {etcd_ceiling:.2} s; together {:.2} s, {:.0}% of the pass",
        listed.len(),
        keys.len(),
        heat_ceiling + etcd_ceiling,
        100.0 * (heat_ceiling + etcd_ceiling) / took
    );
    drop((listed, keys));

    let sample = stacks.min(SAMPLE);
    let started = Instant::now();
    for n in 0..sample {
        let key = format!("/esi-worker/heat_stacks/v2.0/load_balancers/{}", load_balancer_id(n));
        store.get(&key).await?;
        if let Some(found) = heat.find(TENANT, &stack_name(n)).await? {
            heat.show(TENANT, &found, false).await?;
        }
    }
    let per_resource = started.elapsed().as_secs_f64() / sample as f64;
    println!(
        "before (per resource, in every worker): {} Heat calls and {stacks} etcd gets; {sample} sampled in {:.2} s, \
         so about {:.0} s for {stacks}",
        2 * (stacks - gone_count) + gone_count,
        per_resource * sample as f64,
        per_resource * stacks as f64
    );
    Ok(())
}
