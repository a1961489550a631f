//! Benchmarks: commands that print figures, never timed tests.

use crate::schema::Schema;

/// Plans a synthetic graph of `resources` resources and prints jobs planned per second next to
/// the raw etcd put rate measured in the same run.
pub async fn planner(resources: usize, schema: &Schema, endpoints: Option<Vec<String>>) -> anyhow::Result<()> {
    let _ = (resources, schema, endpoints);
    anyhow::bail!("not written yet")
}
