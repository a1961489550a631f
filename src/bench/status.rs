//! `bench-status`: how long `status` takes over N resources, next to the time etcd itself needs to
//! list the same keys (the ceiling: `status` lists the store once, then only computes).

use super::mirror::{load_balancer_id, load_balancer_records};
use crate::inspect::{snapshot::Snapshot, status};
use crate::local::LocalEtcd;
use crate::schema::Schema;
use futures::{StreamExt, stream};
use std::time::Instant;

pub async fn status(resources: usize, schema: &Schema) -> anyhow::Result<()> {
    anyhow::ensure!(resources > 0, "--resources must be at least 1");
    let etcd = LocalEtcd::start().await?;
    let store = etcd.connect().await?;
    println!("bench-status: {resources} load balancers (config, heat_stacks, state, monitoring each)");
    let puts: Vec<(String, String)> = (0..resources)
        .flat_map(|n| load_balancer_records(&load_balancer_id(n), 1, false, "CREATE_COMPLETED"))
        .collect();
    let store_for_puts = store.clone();
    let results: Vec<_> = stream::iter(puts)
        .map(|(key, value)| {
            let store = store_for_puts.clone();
            async move { store.put(&key, value).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;

    let started = Instant::now();
    let (items, _) = store.list("/").await?;
    let ceiling = started.elapsed().as_secs_f64();
    println!("etcd ceiling: {} keys listed in {ceiling:.3} s", items.len());

    let started = Instant::now();
    let snapshot = Snapshot::load(&store, schema).await?;
    let loaded = started.elapsed().as_secs_f64();
    let rows = status::rows(&snapshot, &status::Filter::default());
    let table = status::table(&rows);
    let total = started.elapsed().as_secs_f64();
    println!("{}", table.lines().last().unwrap_or_default());
    println!(
        "status: {} resources in {total:.3} s (list and sort {loaded:.3} s, rows and table {:.3} s), {:.0}% of it the etcd list",
        rows.len(),
        total - loaded,
        100.0 * ceiling / total
    );
    Ok(())
}
