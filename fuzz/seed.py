#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/<target>/) from the conformance corpus.

Run from anywhere: `python3 fuzz/seed.py [CONFORMANCE_DIR]` (default: tests/conformance). The
corpora are not committed (fuzz/.gitignore): they are rebuilt by this script, then grown by
libFuzzer. Each seed is named by the hash of its content, so running it twice adds nothing.
"""

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "conformance"
CORPUS = ROOT / "fuzz" / "corpus"


def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def raw(value):
    """An etcd value as the corpus shows it, back to bytes: text records are JSON strings."""
    return value if isinstance(value, str) else json.dumps(value)


def lines(path):
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


prefix_to_type = {p.strip("/"): t for t, p in json.loads((ROOT / "config" / "resource_types.json").read_text()).items()}
relations = json.loads((ROOT / "config" / "relations.json").read_text())
template_mappings = json.loads((ROOT / "config" / "template_mappings.json").read_text())

# Every (key, value) the corpus shows: curated pages, timelines, the watchers' raw values.
records = []
for page in CONFORMANCE.glob("scenarios/*/records/*/*.json"):
    records += [(p["key"], raw(p["value"])) for p in json.loads(page.read_text())["points"] if p.get("key")]
for timeline in CONFORMANCE.glob("scenarios/*/timeline.jsonl"):
    records += [(e["key"], raw(e["value"])) for e in lines(timeline) if "key" in e and "value" in e]
for watch in CONFORMANCE.glob("scenarios/*/watch/*.jsonl"):
    records += [(e["key"], e["raw"]) for e in lines(watch) if e.get("key") and isinstance(e.get("raw"), str)]
templates = [json.loads(p.read_text()) for p in sorted(CONFORMANCE.glob("heat_templates/*.json"))]
records += [(t["key"], raw(t["value"])) for t in templates]

for key, value in records:
    seed("record", f"{key}\n{value}")
    if key.startswith("/jobs/"):
        seed("job_id", key.rsplit("/", 1)[-1])

# Resources by type, the latest body of each: the world the mappings are evaluated in.
index = {}
for key, value in records:
    parts = key.split("/")  # /config/<prefix...>/<id>
    if parts[1:2] != ["config"] or "heat_templates" in key:
        continue
    resource_type = prefix_to_type.get("/".join(parts[2:-1]))
    try:
        body = json.loads(value).get("body")
        body = json.loads(body) if isinstance(body, str) else body
    except (ValueError, AttributeError):
        continue
    if resource_type and isinstance(body, dict):
        index.setdefault(resource_type, {})[parts[-1]] = body

# A template is named after the type it serves in the corpus (`load_balancer`, …): its
# mappings are seeded with a resource of that type as the current object, when there is one.
for template in templates:
    body = template["value"]["body"]
    body = json.loads(body) if isinstance(body, str) else body
    resource_type = body["id"]
    current = next(iter(index.get(resource_type, {}).values()), {})
    for mapping in body.get("parameter_mappings", {}).values():
        # Only the types one relation away, to keep seeds small (libFuzzer mutates whole inputs).
        near = {resource_type, *relations.get(resource_type, {}).values()}
        world = {
            "mapping": mapping,
            "type": resource_type,
            "current": current,
            "relations": {t: relations[t] for t in sorted(near) if t in relations},
            "index": {t: index[t] for t in sorted(near) if t in index and t != resource_type},
        }
        seed("mapping", compact(world))
    context = {}
    seed("render", "{}\n" + body.get("template_file", ""))
    for key, value in records:
        if not key.startswith("/jobs/all/"):
            continue
        try:
            spec = json.loads(value)[1]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        if isinstance(spec, dict) and spec.get("job_name", "").startswith(resource_type + ":"):
            context = {p["param"]: p.get("value") for p in spec.get("params", []) if p.get("param", "").startswith("jinja_")}
            break
    seed("render", compact(context) + "\n" + body.get("template_file", ""))
for handler, types in template_mappings.items():
    for mapping in types.values():
        seed("mapping", compact({"mapping": mapping, "relations": relations}))
seed("mapping", compact({"mapping": template_mappings}))

# Heat's answers: the stacks the corpus shows, as `GET /stacks/<name>/<id>` would.
for shown in CONFORMANCE.glob("scenarios/*/heat_stacks/*.json"):
    stack = json.loads(shown.read_text())
    answer = {
        "stack": {
            "id": "5f1d3a8e-0000-4000-8000-000000000001",
            "stack_name": stack["stack_name"],
            "stack_status": "CREATE_COMPLETE",
            "stack_status_reason": "Stack CREATE completed successfully",
            "updated_time": None,
            "parameters": stack["parameters"],
            "outputs": stack["outputs"],
            "timeout_mins": 60,
        }
    }
    seed("heat_json", json.dumps(answer))
# The events and preview shapes of Heat 27 (PROTOCOL.md and src/heat/mod.rs document them).
event = {
    "id": "e1",
    "resource_name": "probe",
    "physical_resource_id": "",
    "resource_status": "CREATE_FAILED",
    "resource_status_reason": "ValueError: resources.probe: Test Resource failed probe",
    "event_time": "2026-12-01T06:37:50Z",
}
stack_event = dict(event, id="e0", resource_name="s", physical_resource_id="5f1d", resource_status_reason="Resource CREATE failed: ValueError")
seed("heat_json", json.dumps({"stack": {"id": "5f1d", "stack_name": "s", "stack_status": "CREATE_FAILED"}, "events": [stack_event, event]}))
resource = {"resource_name": "port", "resource_type": "OS::Neutron::Port", "physical_resource_id": "p1"}
seed("heat_json", json.dumps({"resource_changes": {"added": [], "deleted": [], "replaced": [resource], "updated": [], "unchanged": [resource]}}))

# Heat's and Keystone's answers as the client reads them (`heat_answer`): a real Heat's, recorded
# by heat_answers.py; the corpus's stacks as a list page, a show and their outputs; a 500 as
# tests/heat_failure.rs sees it (Heat's database gone); Keystone's token and refusal.
def http(call, status, body, **headers):
    head = f"{call} {status}\n" + "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in headers.items())
    seed("heat_answer", head + "\n" + (body if isinstance(body, str) else json.dumps(body)))


for recorded in sorted((ROOT / "fuzz" / "heat_answers").glob("*.http")):
    seed("heat_answer", recorded.read_bytes())
listed = []
for n, shown in enumerate(sorted(CONFORMANCE.glob("scenarios/*/heat_stacks/*.json"))):
    stack = json.loads(shown.read_text())
    outputs = stack.get("outputs") or []
    stack_id = f"5f1d3a8e-0000-4000-8000-{n:012d}"
    listed.append({"id": stack_id, "stack_name": stack["stack_name"], "stack_status": "CREATE_COMPLETE"})
    http("show", 200, {"stack": dict(listed[-1], parameters=stack["parameters"], outputs=outputs)})
    http("outputs", 200, {"outputs": [{"output_key": o.get("output_key"), "description": "No description given"} for o in outputs]})
    for output in outputs:
        http("output", 200, {"output": output})
    http("find", 302, "", Location=f"http://127.0.0.1:8004/v1/admin/stacks/{stack['stack_name']}/{stack_id}")
http("stacks", 200, {"stacks": listed})
error = {"type": "OperationalError", "traceback": None, "message": "(sqlite3.OperationalError) unable to open database file"}
for call in ["find", "create", "update"]:
    http(call, 500, {"code": 500, "title": "Internal Server Error", "error": error,
                     "explanation": "The server has either erred or is incapable of performing the requested operation."})
http("show", 503, "<html><body><h1>503 Service Unavailable</h1></body></html>", Content_Type="text/html")
catalog = [
    {"type": "identity", "name": "keystone", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": "http://127.0.0.1:5000/v3"}]},
    {"type": "orchestration", "name": "heat", "endpoints": [
        {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://127.0.0.1:8004/v1/p1"},
        {"interface": "internal", "region_id": "RegionOne", "region": "RegionOne", "url": "http://heat.internal:8004/v1/p1/"}]},
]
token = {"token": {"methods": ["password"], "expires_at": "2026-12-01T18:00:00.000000Z", "issued_at": "2026-12-01T17:00:00.000000Z",
                   "project": {"id": "p1", "name": "p1", "domain": {"id": "default", "name": "Default"}}, "catalog": catalog}}
http("token", 201, token, Content_Type="application/json", X_Subject_Token="gAAAAABnFuzzSeedToken")
http("token", 401, {"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})

# The monitor API's bodies, shaped as tests/monitor.rs sends them.
snmp = {"device_ip": "lb.example", "community_name": "public"}
for kind, properties, etcd in [
    ("snmp_device", snmp, {"status": {"key": "load_balancer"}}),
    ("snmp_ports", dict(snmp, if_name="0/1"), {"status": {"key": "interface"}}),
    ("snmp_ports", dict(snmp, if_name="0/1"), {"status": {"key": "logical_port"}, "hold_options": {"positive_status": ["UP", "DOWN"], "time_seconds": 3}}),
    ("snmp_device", snmp, None),
]:
    body = {
        "type": kind, "resource_type": "ports", "resource_id": "p-1", "field_name": "f", "tenant_id": "t",
        "version": 2, "properties": properties,
        "syncer_properties": {"etcd": etcd, "tsdb": {"cpu.usage": {"metric": "cpu.percents"}}},
    }
    seed("monitor_target", json.dumps(body))

for directory in sorted(CORPUS.iterdir()):
    print(f"{directory.name}: {sum(1 for _ in directory.iterdir())} seeds")
