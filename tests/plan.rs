//! The dry run (`plan TYPE/ID`) on a real etcd and a real standalone Heat: a resource never
//! applied would be created; a changed one is diffed and previewed by Heat; render and planning
//! errors are reported as the `/state` they would write; secrets appear nowhere; and nothing is
//! written, neither in etcd nor in Heat. Also the Heat calls it stands on (template, update
//! preview, failed events) against what Heat 27 answers.

mod support;

use heat_reconciler::heat::{Endpoint, HeatClient, StackRef, StackRequest};
use heat_reconciler::inspect::dry_run::{DryRun, Preview, Source, Stage, Verdict, dry_run};
use heat_reconciler::schema::Schema;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const SUBNET: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/heat/templates/subnet.yaml"));

/// etcd with the test templates and a planner; no worker unless a test starts one, so planned
/// jobs wait in `/jobs/ready`.
struct World {
    h: Harness,
    heat: HeatClient,
    schema: Schema,
}

async fn world() -> World {
    let mut h = Harness::without_planner().await;
    h.template("network", network_mappings()).await;
    set_template(&h, "network", NETWORK).await;
    // Does not render.
    h.template("load_balancer", json!({"name": "Pid"})).await;
    set_template(&h, "load_balancer", "heat_template_version: 2013-05-23\n{% for x in %}\n").await;
    // Passes the body's admin_password to Heat as a parameter.
    h.template("vpn_gateway", json!({"name": "Pname", "tenant_id": "Ptenant_id", "admin_password": "Padmin_password"}))
        .await;
    set_template(
        &h,
        "vpn_gateway",
        &NETWORK
            .replace("  tenant_id: {type: string}", "  tenant_id: {type: string}\n  admin_password: {type: string}"),
    )
    .await;
    h.planner = Some(RunningPlanner::start(&h.store, "planner", Duration::from_secs(3)));
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).expect("heat client");
    World { h, heat, schema: Schema::shipped().expect("shipped schema") }
}

impl World {
    async fn plan(&self, resource_type: &str, id: &str) -> DryRun {
        let began = std::time::Instant::now();
        let report = dry_run(&self.h.store, &self.schema, &self.heat, resource_type, id).await.expect("dry run");
        eprintln!("dry run of {resource_type}/{id}: {:?}\n{}", began.elapsed(), report.render_text());
        report
    }

    /// Stops the planner, so that nothing but the dry run could touch the store.
    async fn stop_planner(&mut self) {
        self.h.planner.take().expect("a planner runs").stop().await;
    }
}

fn network(id: &str, name: &str, tenant: &str) -> Value {
    json!({"id": id, "name": name, "tenant_id": tenant})
}

/// What Heat holds of a tenant's stack, to compare before and after a dry run.
async fn heat_state(heat: &HeatClient, tenant: &str, name: &str) -> (usize, Option<(String, Option<String>)>) {
    let count = heat.list(tenant).await.expect("stack list").len();
    let shown = match heat.find(tenant, name).await.expect("find") {
        Some(stack) => {
            let shown = heat.show(tenant, &stack, false).await.expect("show");
            Some((shown.stack_status, shown.updated_time))
        }
        None => None,
    };
    (count, shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_never_applied_would_be_created_and_nothing_is_written() {
    let mut w = world().await;
    let (tenant, id) = (unique("tenant"), unique("net"));
    let stack_name = format!("network_{id}");
    w.h.config("networks", network(&id, "blue", &tenant), 1, false).await;
    w.stop_planner().await;
    let revision = w.h.store.revision().await.unwrap();
    let before = heat_state(&w.heat, &tenant, &stack_name).await;

    let report = w.plan("network", &id).await;
    let Source::Pending { job_id, queue } = &report.source else { panic!("the queued job: {:?}", report.source) };
    assert!(job_id.starts_with(&format!("create:heat_worker:network:{id}:1:")), "{job_id}");
    assert!(queue.starts_with("ready"), "{queue}");
    let job = report.job.as_ref().expect("a job");
    assert_eq!(job.stack_name, stack_name);
    assert_eq!(job.tenant_id, tenant);
    assert_eq!(job.timeout_mins, Some(1));
    assert_eq!(Value::Object(job.parameters.clone()), json!({"name": "blue", "tenant_id": tenant}));
    let Verdict::Create { template, resources } = &report.verdict else { panic!("a create: {:?}", report.verdict) };
    assert_eq!(template, NETWORK.trim_end(), "the template as the worker renders it (Jinja2 drops the last newline)");
    assert_eq!(resources.len(), 1);
    assert_eq!((resources[0].name.as_str(), resources[0].resource_type.as_str()), ("label", "OS::Heat::Value"));
    assert!(!report.would_fail());
    let text = report.render_text();
    assert!(
        text.contains(&format!("would create stack {stack_name} with 1 resource:\n  label (OS::Heat::Value)")),
        "{text}"
    );

    assert_eq!(w.h.store.revision().await.unwrap(), revision, "the dry run wrote to etcd");
    assert_eq!(heat_state(&w.heat, &tenant, &stack_name).await, before, "the dry run changed Heat");
    assert_eq!(before, (0, None));

    // With no planner, a config the planner has not seen yet: the job it would plan.
    let fresh = unique("net");
    w.h.config("networks", network(&fresh, "red", &tenant), 1, false).await;
    let report = w.plan("network", &fresh).await;
    assert_eq!(report.source, Source::Planned);
    assert!(matches!(report.verdict, Verdict::Create { .. }), "{:?}", report.verdict);
    assert!(w.h.snapshot("networks", &fresh).await.is_none(), "nothing was planned");
    assert!(w.h.jobs().await.iter().all(|j| j.spec.resource_id != fresh), "no job was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_diffed_and_previewed_by_heat_and_nothing_is_written() {
    let mut w = world().await;
    let (tenant, id) = (unique("tenant"), unique("net"));
    let stack_name = format!("network_{id}");
    let worker = RunningWorker::fast(&w.h.store, w.heat.clone());
    w.h.config("networks", network(&id, "blue", &tenant), 1, false).await;
    let state = w.h.settled("networks", &id, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    w.h.queues_drained().await;

    // Converged: re-applying it changes nothing.
    let report = w.plan("network", &id).await;
    assert_eq!(report.source, Source::Reapply);
    assert_eq!(report.job.as_ref().unwrap().action, heat_reconciler::protocol::Action::Modify);
    let Verdict::Update { diff, preview: Preview::Changes(changes), stack } = &report.verdict else {
        panic!("an update: {:?}", report.verdict)
    };
    assert_eq!(diff, "", "nothing differs from what Heat holds");
    assert_eq!(stack.status, "CREATE_COMPLETE");
    assert!(changes.added.is_empty() && changes.updated.is_empty() && changes.replaced.is_empty());
    assert!(changes.deleted.is_empty());
    assert_eq!(changes.unchanged, 1);

    // A new version and a new template, which no worker takes up.
    worker.stop().await;
    set_template(
        &w.h,
        "network",
        &NETWORK.replace("outputs:", "  extra:\n    type: OS::Heat::Value\n    properties: {value: more}\noutputs:"),
    )
    .await;
    w.h.config("networks", network(&id, "green", &tenant), 2, false).await;
    w.stop_planner().await;
    let revision = w.h.store.revision().await.unwrap();
    let before = heat_state(&w.heat, &tenant, &stack_name).await;

    let report = w.plan("network", &id).await;
    assert!(
        matches!(&report.source, Source::Pending { job_id, .. } if job_id.starts_with("modify:")),
        "{:?}",
        report.source
    );
    let Verdict::Update { diff, preview: Preview::Changes(changes), .. } = &report.verdict else {
        panic!("an update: {:?}", report.verdict)
    };
    assert!(
        diff.starts_with(&format!("--- stack {stack_name} (Heat's current)\n+++ rendered (config version 2)\n")),
        "{diff}"
    );
    assert!(diff.contains("\n-  name: blue\n+  name: green\n"), "the parameter change: {diff}");
    assert!(diff.contains("\n+    extra:\n"), "the template change: {diff}");
    let changed: Vec<&str> =
        diff.lines().filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++")).collect();
    assert_eq!(changed.len(), 2 + 4, "only real changes: {changed:?}");
    let names = |resources: &[heat_reconciler::inspect::dry_run::TemplateResource]| -> Vec<String> {
        resources.iter().map(|r| r.name.clone()).collect()
    };
    assert_eq!(names(&changes.added), vec!["extra"]);
    assert_eq!(names(&changes.updated), vec!["label"]);
    assert!(changes.replaced.is_empty() && changes.deleted.is_empty());
    assert_eq!(changes.unchanged, 0);
    let text = report.render_text();
    assert!(text.contains("  added: extra (OS::Heat::Value)\n  updated: label (OS::Heat::Value)\n"), "{text}");

    assert_eq!(w.h.store.revision().await.unwrap(), revision, "the dry run wrote to etcd");
    let after = heat_state(&w.heat, &tenant, &stack_name).await;
    assert_eq!(after, before, "the dry run changed Heat");
    assert_eq!(after.1.as_ref().map(|s| s.0.as_str()), Some("CREATE_COMPLETE"));
    assert_eq!(after.0, 1);

    // Marked for deletion, not planned yet: the stack and what it holds would go.
    w.h.config("networks", network(&id, "green", &tenant), 3, true).await;
    let revision = w.h.store.revision().await.unwrap();
    let report = w.plan("network", &id).await;
    assert_eq!(report.source, Source::Planned);
    let Verdict::Delete { stack, resources } = &report.verdict else { panic!("a delete: {:?}", report.verdict) };
    assert_eq!(stack.name, stack_name);
    let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["label"], "what the stack holds now");
    assert!(report.render_text().contains(&format!("would delete stack {stack_name} (CREATE_COMPLETE")));
    assert_eq!(w.h.store.revision().await.unwrap(), revision, "the dry run wrote to etcd");
    assert_eq!(heat_state(&w.heat, &tenant, &stack_name).await, before, "the dry run changed Heat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_and_planning_errors_are_reported_and_bad_requests_are_errors() {
    let mut w = world().await;
    let (lb, fw) = (unique("lb"), unique("fw"));
    w.h.config("load_balancers", json!({"id": lb, "tenant_id": TENANT}), 1, false).await;
    let report = w.plan("load_balancer", &lb).await;
    let Verdict::Fails { by: Stage::Worker, state } = &report.verdict else {
        panic!("a failure: {:?}", report.verdict)
    };
    assert_eq!(state.state.worker_state, "CREATE_FAILED");
    assert_eq!(state.version, 1);
    assert!(state.error.contains("template `load_balancer` does not render"), "{}", state.error);
    assert!(report.would_fail());
    let text = report.render_text();
    assert!(text.contains("would fail: the worker fails before calling Heat"), "{text}");

    // The test set's firewall_config mapping does not parse: the planner reports it.
    w.h.config("firewalls", json!({"id": fw, "tenant_id": TENANT}), 1, false).await;
    let report = w.plan("firewall", &fw).await;
    let Verdict::Fails { by: Stage::Planner, state } = &report.verdict else {
        panic!("a failure: {:?}", report.verdict)
    };
    assert!(state.error.contains("template `firewall_config`, param `broken`"), "{}", state.error);
    assert!(report.job.is_none());

    // A DHCP port has no template: the planner marks it READ_COMPLETE.
    let dhcp = unique("port");
    w.h.config("ports", json!({"id": dhcp, "tenant_id": TENANT, "device_owner": "network:dhcp"}), 1, false).await;
    let report = w.plan("port", &dhcp).await;
    assert!(matches!(report.verdict, Verdict::NonWorkable { version: 1 }), "{:?}", report.verdict);
    assert_eq!(report.source, Source::Reapply, "converged: READ_COMPLETE was written");

    let error = |e: anyhow::Error| format!("{e:#}");
    let unknown = dry_run(&w.h.store, &w.schema, &w.heat, "nope", "x").await.map_err(error).unwrap_err();
    assert!(unknown.contains("unknown resource type `nope`"), "{unknown}");
    let absent = dry_run(&w.h.store, &w.schema, &w.heat, "network", "nowhere").await.map_err(error).unwrap_err();
    assert!(absent.contains("/config/v2.0/networks/nowhere is absent"), "{absent}");

    let net = unique("net");
    w.h.config("networks", network(&net, "blue", TENANT), 1, false).await;
    let down = HeatClient::new(Endpoint::NoAuth { base: "http://127.0.0.1:9".into() }).unwrap();
    let unreachable = dry_run(&w.h.store, &w.schema, &down, "network", &net).await.map_err(error).unwrap_err();
    assert!(unreachable.contains("cannot reach Heat"), "{unreachable}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_nowhere_in_the_report() {
    let mut w = world().await;
    let id = unique("gw");
    let worker = RunningWorker::fast(&w.h.store, w.heat.clone());
    let body =
        |name: &str, password: &str| json!({"id": id, "name": name, "tenant_id": TENANT, "admin_password": password});
    w.h.config("vpn_gateways", body("gw", "hunter2-old-secret"), 1, false).await;
    let state = w.h.settled("vpn_gateways", &id, 1).await;
    assert_eq!(state.state.worker_state, "CREATE_COMPLETED", "{}", state.error);
    worker.stop().await;
    w.h.config("vpn_gateways", body("gw2", "hunter2-new-secret"), 2, false).await;
    // A second one, never applied.
    let fresh = unique("gw");
    w.h.config(
        "vpn_gateways",
        json!({"id": fresh, "name": "x", "tenant_id": TENANT, "admin_password": "hunter2-fresh"}),
        1,
        false,
    )
    .await;

    for (resource, update) in [(&id, true), (&fresh, false)] {
        let report = w.plan("vpn_gateway", resource).await;
        assert_eq!(matches!(report.verdict, Verdict::Update { .. }), update, "{:?}", report.verdict);
        let text = report.render_text();
        let json = serde_json::to_string(&report).unwrap();
        for output in [&text, &json] {
            assert!(!output.contains("hunter2"), "a secret leaked: {output}");
        }
        assert!(text.contains("admin_password: ***"), "{text}");
    }
    let report = w.plan("vpn_gateway", &id).await;
    let Verdict::Update { diff, .. } = &report.verdict else { unreachable!() };
    let changed: Vec<&str> = diff.lines().skip(3).filter(|l| l.starts_with(['-', '+'])).collect();
    assert_eq!(
        changed,
        vec!["-  admin_password: '***'", "-  name: gw", "+  admin_password: '*** (changed)'", "+  name: gw2"],
        "a new password shows as a change, not its value: {diff}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_shows_the_template_previews_updates_and_lists_failed_events() {
    let heat = HeatClient::new(Endpoint::NoAuth { base: heat_url() }).unwrap();
    let tenant = unique("tenant");
    let name = unique("probe").replace('-', "_");
    let template = SUBNET
        .replace("{% for cidr in jinja_cidrs %}\n", "")
        .replace("{% endfor %}\n", "")
        .replace("  cidr_{{ loop.index0 }}:\n    type: OS::Heat::Value\n    properties: {value: \"{{ cidr }}\"}\n", "");
    let request = |fail: bool| StackRequest {
        stack_name: None,
        template: template.clone(),
        parameters: json!({"network_id": "n1", "fail": fail}).as_object().unwrap().clone(),
        timeout_mins: Some(1),
        disable_rollback: true,
    };
    let created =
        heat.create(&tenant, &StackRequest { stack_name: Some(name.clone()), ..request(true) }).await.unwrap();
    let failed = eventually(60, || async {
        let shown = heat.show(&tenant, &created, false).await.unwrap();
        (!shown.stack_status.ends_with("_IN_PROGRESS")).then_some(shown)
    })
    .await;
    assert_eq!(failed.stack_status, "CREATE_FAILED");
    assert_eq!(failed.parameters.get("fail"), Some(&json!("True")), "Heat shows parameters as Python's str()");

    let current = heat.template(&tenant, &created).await.unwrap();
    assert_eq!(current["resources"]["probe"]["type"], json!("OS::Heat::TestResource"));
    assert_eq!(current["heat_template_version"], json!("2013-05-23"));

    let events = heat.failed_events(&tenant, &created, 10).await.unwrap();
    assert!(events.iter().all(|e| e.resource_status == "CREATE_FAILED"), "{events:?}");
    let resource = events.iter().find(|e| e.resource_name == "probe").expect("the resource's event");
    assert!(resource.resource_status_reason.contains("Test Resource failed"), "{resource:?}");
    assert!(!resource.is_stack_event(&created));
    let rollup = events.iter().find(|e| e.is_stack_event(&created)).expect("the stack's own event");
    assert_eq!(rollup.resource_name, name);
    assert!(rollup.resource_status_reason.starts_with("Resource CREATE failed: "), "{rollup:?}");
    assert!(events.windows(2).all(|w| w[0].event_time >= w[1].event_time), "newest first: {events:?}");
    assert_eq!(heat.failed_events(&tenant, &created, 1).await.unwrap().len(), 1);

    // Heat replaces a failed resource even when the update only fixes its parameter.
    let preview = heat.preview_update(&tenant, &created, &request(false)).await.unwrap();
    let replaced: Vec<&str> = preview.replaced.iter().map(|r| r.resource_name.as_str()).collect();
    assert_eq!(replaced, vec!["probe"], "{preview:?}");
    assert!(preview.added.is_empty() && preview.updated.is_empty() && preview.deleted.is_empty());
    let refused = heat
        .preview_update(
            &tenant,
            &created,
            &StackRequest {
                template: "heat_template_version: 2013-05-23\nresources:\n  x: {type: 'OS::Nope::Thing'}\n".into(),
                ..request(false)
            },
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().starts_with("HTTPBadRequest: ") && refused.to_string().contains("OS::Nope::Thing"),
        "{refused}"
    );
    let unchanged = heat.show(&tenant, &created, false).await.unwrap();
    assert_eq!((unchanged.stack_status, unchanged.updated_time), (failed.stack_status, failed.updated_time));

    let missing = StackRef { name: created.name.clone(), id: "00000000-0000-0000-0000-000000000000".into() };
    assert!(heat.template(&tenant, &missing).await.is_err());
    heat.delete(&tenant, &created).await.unwrap();
}
