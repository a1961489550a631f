//! Every worked example of PROTOCOL.md §4.7 (mapping → param entry), plus the template
//! selection rules of §5.1, evaluated with the shipped relation map and template mappings.

use heat_reconciler::mapping::{
    Mapping, NonWorkable, ResourceIndex, Scope, TemplateSet, Traversal, Workability, evaluate_param, select_template,
};
use heat_reconciler::protocol::{Body, HeatTemplate, Param};
use heat_reconciler::schema::Schema;
use serde_json::{Value, json};

/// A resource index and the shipped schema, to evaluate mappings against.
struct World {
    schema: Schema,
    index: ResourceIndex,
}

fn body(value: Value) -> Body {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

impl World {
    fn new(resources: &[(&str, Value)]) -> Self {
        let mut index = ResourceIndex::default();
        for (resource_type, value) in resources {
            let id = value["id"].as_str().expect("test resource has an id").to_owned();
            index.insert(resource_type, &id, body(value.clone()));
        }
        World { schema: Schema::shipped().expect("shipped schema loads"), index }
    }

    fn scope(&self, version: u64) -> Scope<'_> {
        Scope { index: &self.index, relations: &self.schema.relations, version }
    }

    /// The param entry of `mapping` for a create job of `resource`.
    fn create(&self, resource_type: &str, resource: Value, name: &str, mapping: Value) -> Value {
        self.evaluate(resource_type, resource, name, mapping, 1, None)
    }

    fn evaluate(
        &self,
        resource_type: &str,
        resource: Value,
        name: &str,
        mapping: Value,
        version: u64,
        previous: Option<Value>,
    ) -> Value {
        let mapping = Mapping::parse(&mapping).expect("mapping parses");
        let previous = previous.map(body);
        let traversal = match &previous {
            Some(previous) => Traversal::Twice { previous },
            None => Traversal::Once,
        };
        let param: Param =
            evaluate_param(name, &mapping, self.scope(version), resource_type, &body(resource), traversal)
                .expect("mapping evaluates");
        serde_json::to_value(param).expect("param encodes")
    }
}

fn res(resource_type: &str, id: &str) -> Value {
    json!({"resource_type": resource_type, "resource_id": id})
}

fn entry(name: &str, value: Value, resources: Vec<Value>) -> Value {
    json!({"param": name, "type": "value", "value": value, "resources": resources})
}

#[test]
fn p_field_of_the_resource() {
    let w = World::new(&[]);
    let got = w.create("network", json!({"id": "b761b0cd", "name": "sample"}), "name", json!("Pid"));
    assert_eq!(got, entry("name", json!("b761b0cd"), vec![]));
}

#[test]
fn c_constant_is_always_a_string() {
    let w = World::new(&[]);
    let got = w.create("gw_interface", json!({"id": "g"}), "primary_device_priority", json!("C105"));
    assert_eq!(got, entry("primary_device_priority", json!("105"), vec![]));
}

#[test]
fn c_constant_keeps_its_colons() {
    let w = World::new(&[]);
    let got =
        w.create("subnet", json!({"id": "s"}), "ipam", json!("Cdefault-domain:default-project:default-network-ipam"));
    assert_eq!(got, entry("ipam", json!("default-domain:default-project:default-network-ipam"), vec![]));
}

#[test]
fn object_constant_keeps_its_type() {
    let w = World::new(&[]);
    assert_eq!(
        w.create("load_balancer", json!({"id": "lb"}), "heat_timeout", json!({"constant": 3})),
        entry("heat_timeout", json!(3), vec![])
    );
    assert_eq!(w.create("port", json!({"id": "p"}), "x", json!({"constant": null})), entry("x", Value::Null, vec![]));
}

#[test]
fn version_in_both_syntaxes_is_the_job_version() {
    let w = World::new(&[]);
    for mapping in [json!("Vauto_filled"), json!({"version": "auto_filled"})] {
        let got = w.evaluate("port", json!({"id": "p"}), "version", mapping, 2, Some(json!({"id": "p"})));
        assert_eq!(got, entry("version", json!(2), vec![]));
    }
}

#[test]
fn f_follows_foreign_keys_and_lists_each_hop() {
    let w = World::new(&[
        ("ese_physical_port", json!({"id": "0915a040", "ese_device_id": "61a05e50"})),
        ("ese_device", json!({"id": "61a05e50", "management_ip_address": "10.161.0.33"})),
    ]);
    let got = w.create(
        "ese_logical_port",
        json!({"id": "l", "ese_physical_port_id": "0915a040"}),
        "device_ip",
        json!("Fese_physical_port+ese_physical_port_id:ese_device+ese_device_id:management_ip_address"),
    );
    assert_eq!(
        got,
        entry(
            "device_ip",
            json!("10.161.0.33"),
            vec![res("ese_physical_port", "0915a040"), res("ese_device", "61a05e50")]
        )
    );
}

#[test]
fn f_with_four_hops() {
    let w = World::new(&[
        ("internet_gateway", json!({"id": "f6e8", "downlink_interface_id": "2595"})),
        ("ha_interface", json!({"id": "2595", "ha_router_id": "add0"})),
        ("ha_router", json!({"id": "add0", "primary_router_id": "cbe0"})),
        ("edge_router", json!({"id": "cbe0", "ip": "10.79.5.185"})),
    ]);
    let got = w.create(
        "static_route",
        json!({"id": "sr", "internet_gw_id": "f6e8"}),
        "primary_device_ip",
        json!("Finternet_gateway+internet_gw_id:ha_interface+downlink_interface_id:ha_router+ha_router_id:edge_router+primary_router_id:ip"),
    );
    assert_eq!(
        got,
        entry(
            "primary_device_ip",
            json!("10.79.5.185"),
            vec![
                res("internet_gateway", "f6e8"),
                res("ha_interface", "2595"),
                res("ha_router", "add0"),
                res("edge_router", "cbe0")
            ]
        )
    );
}

#[test]
fn m_references_a_stack_output() {
    let w = World::new(&[]);
    let got =
        w.create("subnet", json!({"id": "s", "network_id": "b761b0cd"}), "network_id", json!("Mnetwork:network_id:id"));
    assert_eq!(
        got,
        json!({"param": "network_id", "type": "output_key",
               "value": {"output_key": "id", "resource_type": "network", "resource_id": "b761b0cd"},
               "resources": [res("network", "b761b0cd")]})
    );
}

#[test]
fn o_reads_a_field_of_an_object_field() {
    let w = World::new(&[]);
    let got = w.create(
        "vpn_interface",
        json!({"id": "v", "primary": {"bgp_peer_ip": "192.168.8.1"}}),
        "primary_peer_ip",
        json!("Oprimary:bgp_peer_ip"),
    );
    assert_eq!(got, entry("primary_peer_ip", json!("192.168.8.1"), vec![]));
}

#[test]
fn a_concatenates_a_constant_and_a_foreign_field() {
    let w = World::new(&[("qos_option", json!({"id": "0e6b35d9", "incoming_policer_name": "10M-GA-UP-INET"}))]);
    let got = w.create(
        "internet_gateway",
        json!({"id": "f6e8", "qos_option_id": "0e6b35d9"}),
        "input_filter_name",
        json!("ACFILTER_&Fqos_option+qos_option_id:incoming_policer_name"),
    );
    assert_eq!(got, entry("input_filter_name", json!("FILTER_10M-GA-UP-INET"), vec![res("qos_option", "0e6b35d9")]));
}

#[test]
fn a_concatenates_a_field_and_a_constant() {
    let w = World::new(&[]);
    let got = w.create(
        "internet_gateway",
        json!({"id": "f6e8", "vrf_name": "vrf_gw_sample-ha-router-downlink_1025"}),
        "counter_name_in",
        json!("APvrf_name&C_IN"),
    );
    assert_eq!(got, entry("counter_name_in", json!("vrf_gw_sample-ha-router-downlink_1025_IN"), vec![]));
}

#[test]
fn a_concatenates_a_foreign_field_and_a_constant() {
    let w =
        World::new(&[("internet_gateway", json!({"id": "f6e8", "vrf_name": "vrf_gw_sample-ha-router-downlink_1025"}))]);
    let got = w.create(
        "public_ip",
        json!({"id": "pi", "internet_gw_id": "f6e8"}),
        "prefix_list_name",
        json!("AFinternet_gateway+internet_gw_id:vrf_name&C_prefix"),
    );
    assert_eq!(
        got,
        entry(
            "prefix_list_name",
            json!("vrf_gw_sample-ha-router-downlink_1025_prefix"),
            vec![res("internet_gateway", "f6e8")]
        )
    );
}

#[test]
fn object_field() {
    let w = World::new(&[]);
    let got = w.create(
        "firewall",
        json!({"id": "fw", "admin_username": "user-admin"}),
        "admin_username",
        json!({"field": "admin_username"}),
    );
    assert_eq!(got, entry("admin_username", json!("user-admin"), vec![]));
}

#[test]
fn object_field_absent_is_null() {
    let w = World::new(&[]);
    let got = w.create(
        "load_balancer_conf",
        json!({"id": "1d2023e1"}),
        "default_gateway",
        json!({"field": "default_gateway"}),
    );
    assert_eq!(got, entry("default_gateway", Value::Null, vec![]));
}

#[test]
fn path_through_the_relation_map() {
    let w = World::new(&[("vnf_instance", json!({"id": "398d65ba", "management_ip": "100.64.193.3"}))]);
    let got = w.create(
        "load_balancer",
        json!({"id": "b311", "vnf_instance_id": "398d65ba"}),
        "management_ip",
        json!({"field": "management_ip", "path": ["vnf_instance_id"]}),
    );
    assert_eq!(got, entry("management_ip", json!("100.64.193.3"), vec![res("vnf_instance", "398d65ba")]));
}

#[test]
fn path_of_two_relation_steps() {
    let w = World::new(&[
        ("load_balancer", json!({"id": "b311", "vnf_instance_id": "398d65ba"})),
        ("vnf_instance", json!({"id": "398d65ba", "management_ip": "100.64.193.3"})),
    ]);
    let got = w.create(
        "load_balancer_interface",
        json!({"id": "lbi", "load_balancer_id": "b311"}),
        "management_ip",
        json!({"field": "management_ip", "path": ["load_balancer_id", "vnf_instance_id"]}),
    );
    assert_eq!(
        got,
        entry(
            "management_ip",
            json!("100.64.193.3"),
            vec![res("load_balancer", "b311"), res("vnf_instance", "398d65ba")]
        )
    );
}

#[test]
fn path_reads_an_object_value() {
    let credentials = json!({"username": "vfwadmin", "password": "secret"});
    let w = World::new(&[
        ("vnf_instance", json!({"id": "vi", "vnf_template_id": "vt"})),
        ("vnf_template", json!({"id": "vt", "credentials": credentials})),
    ]);
    let got = w.create(
        "firewall",
        json!({"id": "fw", "vnf_instance_id": "vi"}),
        "credentials",
        json!({"field": "credentials", "path": ["vnf_instance_id", "vnf_template_id"]}),
    );
    assert_eq!(got, entry("credentials", credentials, vec![res("vnf_instance", "vi"), res("vnf_template", "vt")]));
}

#[test]
fn typed_path_step() {
    let w = World::new(&[("network", json!({"id": "6e557507"}))]);
    let got = w.create(
        "gw_interface",
        json!({"id": "g", "network_id": "6e557507"}),
        "jinja_force_dependency",
        json!({"field": "id", "path": [{"type": "network", "id": "network_id"}]}),
    );
    assert_eq!(got, entry("jinja_force_dependency", json!("6e557507"), vec![res("network", "6e557507")]));
}

#[test]
fn ignore_missing_with_an_absent_reference() {
    let w = World::new(&[]);
    let mapping = json!({"field": "id", "path": [{"type": "public_ip", "id": "public_ip_id"}], "ignore_missing": true});
    let got = w.create("gw_interface", json!({"id": "g"}), "jinja_dummy_dependency", mapping);
    assert_eq!(got, entry("jinja_dummy_dependency", json!(""), vec![]));
}

#[test]
fn ignore_missing_with_a_present_reference() {
    let w = World::new(&[("public_ip", json!({"id": "d5622781"}))]);
    let mapping = json!({"field": "id", "path": [{"type": "public_ip", "id": "public_ip_id"}], "ignore_missing": true});
    let got =
        w.create("static_route", json!({"id": "sr", "public_ip_id": "d5622781"}), "jinja_dummy_dependency", mapping);
    assert_eq!(got, entry("jinja_dummy_dependency", json!("d5622781"), vec![res("public_ip", "d5622781")]));
}

#[test]
fn path_with_output_key() {
    let w = World::new(&[("vnf_instance", json!({"id": "398d65ba"}))]);
    let got = w.create(
        "load_balancer_conf",
        json!({"id": "c", "vnf_instance_id": "398d65ba"}),
        "server_id",
        json!({"path": ["vnf_instance_id"], "output_key": "server_id"}),
    );
    assert_eq!(
        got,
        json!({"param": "server_id", "type": "output_key",
               "value": {"output_key": "server_id", "resource_type": "vnf_instance", "resource_id": "398d65ba"},
               "resources": [res("vnf_instance", "398d65ba")]})
    );
}

fn subnet_list(name: &str, ids: &[&str]) -> Value {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({"param": name, "type": "output_key", "resources": [], "value": {"output_key": "id", "resource_type": "subnet", "resource_id": id}}))
        .collect();
    let resources: Vec<Value> = ids.iter().map(|id| res("subnet", id)).collect();
    json!({"param": name, "type": "list", "value": items, "resources": resources})
}

#[test]
fn for_field_over_objects_yields_an_output_list() {
    let w = World::new(&[("subnet", json!({"id": "215cb166"}))]);
    let mapping = json!({"for_field": "fixed_ips", "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}});
    let port = json!({"id": "p", "fixed_ips": [{"subnet_id": "215cb166", "ip_address": "10.0.0.3"}]});
    assert_eq!(w.create("port", port, "jinja_subnets", mapping), subnet_list("jinja_subnets", &["215cb166"]));
}

#[test]
fn for_field_visits_a_repeated_reference_twice() {
    // §4.5 cause 1: two fixed_ips on one subnet list the subnet twice, even in a create job.
    let w = World::new(&[("subnet", json!({"id": "67877f2d"}))]);
    let mapping = json!({"for_field": "fixed_ips", "for_mapping": {"path": [{"type": "subnet", "id": "subnet_id"}], "output_key": "id"}});
    let port = json!({"id": "f3867a99", "fixed_ips": [{"subnet_id": "67877f2d"}, {"subnet_id": "67877f2d"}]});
    assert_eq!(
        w.create("port", port, "jinja_subnets", mapping),
        subnet_list("jinja_subnets", &["67877f2d", "67877f2d"])
    );
}

#[test]
fn for_field_over_ids_with_an_empty_id_step() {
    let w = World::new(&[("port", json!({"id": "3a04e6ed"}))]);
    let mapping =
        json!({"for_field": "port_ids", "for_mapping": {"path": [{"type": "port", "id": ""}], "output_key": "id"}});
    let got = w.create(
        "ese_logical_port",
        json!({"id": "l", "port_ids": ["3a04e6ed"]}),
        "virtual_machine_interface_ids",
        mapping,
    );
    assert_eq!(
        got,
        json!({"param": "virtual_machine_interface_ids", "type": "list", "resources": [res("port", "3a04e6ed")],
               "value": [{"param": "virtual_machine_interface_ids", "type": "output_key", "resources": [],
                          "value": {"output_key": "id", "resource_type": "port", "resource_id": "3a04e6ed"}}]})
    );
}

#[test]
fn for_field_given_by_a_mapping_keeps_its_resources() {
    let w =
        World::new(&[("common_function_pool", json!({"id": "2d4a700d", "vrrp_config": [{"vrid": 41}, {"vrid": 42}]}))]);
    let mapping = json!({"for_field": {"field": "vrrp_config", "path": ["common_function_pool_id"]}, "for_mapping": {"field": "vrid"}});
    let got = w.create(
        "common_function_gateway",
        json!({"id": "cfgw", "common_function_pool_id": "2d4a700d"}),
        "jinja_vrids",
        mapping,
    );
    assert_eq!(got, entry("jinja_vrids", json!([41, 42]), vec![res("common_function_pool", "2d4a700d")]));
}

#[test]
fn for_field_with_a_path_per_element() {
    let w = World::new(&[
        ("common_function", json!({"id": "637aa51a", "common_function_number": 1})),
        ("common_function", json!({"id": "b7ff279d", "common_function_number": 2})),
    ]);
    let mapping = json!({"for_field": "common_functions", "for_mapping": {"field": "common_function_number", "path": [{"type": "common_function", "id": "common_function_id"}]}});
    let gateway = json!({"id": "cfgw", "common_functions": [{"common_function_id": "637aa51a"}, {"common_function_id": "b7ff279d"}]});
    let got = w.create("common_function_gateway", gateway, "jinja_common_service_numbers", mapping);
    assert_eq!(
        got,
        entry(
            "jinja_common_service_numbers",
            json!([1, 2]),
            vec![res("common_function", "637aa51a"), res("common_function", "b7ff279d")]
        )
    );
}

fn gw_dependency_mapping() -> Value {
    json!({"if_mapping": {"equal": [{"field": "device_owner"}, {"constant": "network:gw_interface"}]},
           "then_mapping": {"field": "id", "path": [{"type": "gw_interface", "id": "device_id"}]},
           "else_mapping": {"constant": null}})
}

#[test]
fn if_mapping_else_branch() {
    let w = World::new(&[]);
    let got = w.create(
        "port",
        json!({"id": "p", "device_owner": "physical_port", "device_id": "x"}),
        "jinja_force_dependency_gw_interface",
        gw_dependency_mapping(),
    );
    assert_eq!(got, entry("jinja_force_dependency_gw_interface", Value::Null, vec![]));
}

#[test]
fn if_mapping_then_branch() {
    let w = World::new(&[("gw_interface", json!({"id": "ce8831fd"}))]);
    let port = json!({"id": "f3867a99", "device_owner": "network:gw_interface", "device_id": "ce8831fd"});
    let got = w.create("port", port, "jinja_force_dependency_gw_interface", gw_dependency_mapping());
    assert_eq!(
        got,
        entry("jinja_force_dependency_gw_interface", json!("ce8831fd"), vec![res("gw_interface", "ce8831fd")])
    );
}

fn cfg_dependency_mapping() -> Value {
    json!({"if_mapping": {"equal": [{"field": "device_owner"}, {"constant": "network:common_function_gateway"}]},
           "then_mapping": {"field": "id", "path": [{"type": "common_function_gateway", "id": "device_id"}], "ignore_missing": true},
           "else_mapping": {"constant": null}})
}

fn cfg_port() -> Value {
    json!({"id": "343b0257", "device_owner": "network:common_function_gateway", "device_id": "f649736d"})
}

#[test]
fn then_branch_with_ignore_missing_before_the_gateway_exists() {
    let w = World::new(&[]);
    let got = w.create("port", cfg_port(), "jinja_force_dependency_cfg", cfg_dependency_mapping());
    assert_eq!(got, entry("jinja_force_dependency_cfg", json!(""), vec![]));
}

#[test]
fn non_create_jobs_double_every_traversal() {
    let w = World::new(&[("common_function_gateway", json!({"id": "f649736d"}))]);
    let got =
        w.evaluate("port", cfg_port(), "jinja_force_dependency_cfg", cfg_dependency_mapping(), 2, Some(cfg_port()));
    let gateway = res("common_function_gateway", "f649736d");
    assert_eq!(got, entry("jinja_force_dependency_cfg", json!("f649736d"), vec![gateway.clone(), gateway]));
}

#[test]
fn modify_doubles_a_stack_output_reference() {
    let w = World::new(&[]);
    let port = json!({"id": "3a04e6ed", "network_id": "b761b0cd"});
    let got = w.evaluate("port", port.clone(), "virtual_network", json!("Mnetwork:network_id:id"), 2, Some(port));
    assert_eq!(got["resources"], json!([res("network", "b761b0cd"), res("network", "b761b0cd")]));
    assert_eq!(got["value"]["resource_id"], "b761b0cd");
}

#[test]
fn doubling_puts_the_previous_traversal_first() {
    let w = World::new(&[("network", json!({"id": "old"})), ("network", json!({"id": "new"}))]);
    let got = w.evaluate(
        "port",
        json!({"id": "p", "network_id": "new"}),
        "net",
        json!("Mnetwork:network_id:id"),
        3,
        Some(json!({"id": "p", "network_id": "old"})),
    );
    assert_eq!(got["resources"], json!([res("network", "old"), res("network", "new")]));
    assert_eq!(got["value"]["resource_id"], "new");
}

// --- Template selection (§5.1) ---

fn templates(ids: &[&str]) -> TemplateSet {
    let mut set = TemplateSet::default();
    for id in ids {
        set.insert(HeatTemplate {
            id: (*id).to_owned(),
            handler: "heat_worker".into(),
            template_file: "heat_template_version: 2013-05-23\n".into(),
            parameter_mappings: body(json!({"name": "Pid"})),
            watch: Some(Some(Vec::new())),
            tenant_id: None,
        });
    }
    set
}

fn selected(w: &World, set: &TemplateSet, resource_type: &str, resource: Value) -> Result<String, NonWorkable> {
    match select_template(&w.schema.template_mappings, set, w.scope(1), resource_type, &body(resource)) {
        Workability::Workable(t) => Ok(t.template.id.clone()),
        Workability::NonWorkable(reason) => Err(reason),
        Workability::Broken(e) => panic!("broken: {e}"),
    }
}

#[test]
fn template_selection_follows_the_template_mappings() {
    let w = World::new(&[]);
    let set =
        templates(&["port", "firewall_config", "ese_device_existing", "gw_interface_internet", "ese_logical_port"]);
    assert_eq!(selected(&w, &set, "port", json!({"id": "p", "device_owner": "compute:nova"})), Ok("port".into()));
    assert_eq!(selected(&w, &set, "port", json!({"id": "p", "device_owner": ""})), Ok("port".into()));
    assert_eq!(
        selected(&w, &set, "port", json!({"id": "p", "device_owner": "network:dhcp"})),
        Err(NonWorkable::NullTemplate)
    );
    assert_eq!(
        selected(&w, &set, "port", json!({"id": "p", "device_owner": "network:empty"})),
        Err(NonWorkable::NullTemplate)
    );
    assert_eq!(selected(&w, &set, "firewall", json!({"id": "f"})), Ok("firewall_config".into()));
    assert_eq!(selected(&w, &set, "local_subnet", json!({"id": "l"})), Ok("ese_logical_port".into()));
    assert_eq!(
        selected(&w, &set, "ese_device", json!({"id": "d", "existing": "existing"})),
        Ok("ese_device_existing".into())
    );
    assert_eq!(
        selected(&w, &set, "ese_device", json!({"id": "d", "existing": "new"})),
        Err(NonWorkable::TemplateMissing("ese_device_new".into()))
    );
    assert_eq!(
        selected(&w, &set, "gw_interface", json!({"id": "g", "service_type": "internet"})),
        Ok("gw_interface_internet".into())
    );
    assert_eq!(selected(&w, &set, "tenant", json!({"id": "t"})), Err(NonWorkable::Unmapped));
    assert_eq!(
        selected(&w, &set, "qos_option", json!({"id": "q", "service_type": "internet"})),
        Err(NonWorkable::Unmapped)
    );
}

#[test]
fn a_template_with_a_bad_mapping_is_reported_not_used() {
    let w = World::new(&[]);
    let mut set = TemplateSet::default();
    set.insert(HeatTemplate {
        id: "network".into(),
        handler: "heat_worker".into(),
        template_file: String::new(),
        parameter_mappings: body(json!({"name": "Qid"})),
        watch: None,
        tenant_id: None,
    });
    match select_template(&w.schema.template_mappings, &set, w.scope(1), "network", &body(json!({"id": "n"}))) {
        Workability::Broken(e) => {
            assert!(e.contains("template `network`, param `name`") && e.contains("unknown mapping prefix `Q`"), "{e}")
        }
        other => panic!("expected a broken template, got {other:?}"),
    }
}

// --- Evaluation errors name what is wrong ---

fn evaluation_error(w: &World, resource_type: &str, resource: Value, mapping: Value) -> String {
    let mapping = Mapping::parse(&mapping).expect("mapping parses");
    match evaluate_param("p", &mapping, w.scope(1), resource_type, &body(resource), Traversal::Once) {
        Ok(param) => panic!("expected an error, got {param:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn evaluation_errors_name_the_field_or_resource() {
    let w = World::new(&[("ese_physical_port", json!({"id": "pp"}))]);
    let missing = evaluation_error(
        &w,
        "load_balancer",
        json!({"id": "lb", "vnf_instance_id": "gone"}),
        json!({"field": "management_ip", "path": ["vnf_instance_id"]}),
    );
    assert_eq!(missing, "vnf_instance `gone` is not in the config store");
    let absent = evaluation_error(
        &w,
        "load_balancer",
        json!({"id": "lb"}),
        json!({"field": "management_ip", "path": ["vnf_instance_id"]}),
    );
    assert_eq!(absent, "field `vnf_instance_id` of load_balancer is empty or absent");
    let no_relation = evaluation_error(
        &w,
        "load_balancer",
        json!({"id": "lb", "nope_id": "x"}),
        json!({"field": "a", "path": ["nope_id"]}),
    );
    assert_eq!(no_relation, "no relation `nope_id` from type `load_balancer` in the relation map");
    let hop = evaluation_error(
        &w,
        "ese_logical_port",
        json!({"id": "l", "ese_physical_port_id": "pp"}),
        json!("Fese_physical_port+ese_physical_port_id:ese_device+ese_device_id:ip"),
    );
    assert_eq!(hop, "field `ese_device_id` of ese_physical_port is empty or absent");
    let not_a_list = evaluation_error(
        &w,
        "port",
        json!({"id": "p", "fixed_ips": 3}),
        json!({"for_field": "fixed_ips", "for_mapping": {"field": "x"}}),
    );
    assert!(not_a_list.contains("must produce a list"), "{not_a_list}");
    let not_an_id =
        evaluation_error(&w, "subnet", json!({"id": "s", "network_id": 7}), json!("Mnetwork:network_id:id"));
    assert_eq!(not_an_id, "field `network_id` of subnet is a number, not an id");
}
