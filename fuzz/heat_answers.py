#!/usr/bin/env python3
"""Records a real Heat's answers to each call of the client, as seeds of the `heat_answer` target.

`python3 fuzz/heat_answers.py http://127.0.0.1:8004` against a standalone Heat
(`heat/start-heat.sh --port 8004 --fresh`): creates, shows, previews, updates, fails and deletes
stacks in a tenant of its own (`fuzz-seeds`) and writes each answer to
fuzz/heat_answers/<call>_<status>[_<what>].http in the target's input form: `<call> <status>`,
the headers, an empty line, the body. Those files are committed; seed.py copies them into the
corpus. Run again when Heat's version changes.
"""

import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

OUT = Path(__file__).resolve().parent / "heat_answers"
TENANT = "fuzz-seeds"
# Heads that vary from run to run and tell the client nothing.
SKIPPED = {"date", "x-openstack-request-id"}

base = urlsplit(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8004")


def call(method, path, body=None):
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    headers = {"Accept": "application/json", "X-Auth-Project": TENANT, "X-Is-Admin-Project": "False"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection.request(method, f"/v1/{TENANT}{path}", body=data, headers=headers)
    response = connection.getresponse()
    answer = (response.status, [(k, v) for k, v in response.getheaders() if k.lower() not in SKIPPED], response.read())
    connection.close()
    return answer


def record(name, answer):
    status, headers, body = answer
    call_name = name.split("_")[0]
    head = f"{call_name} {status}\n" + "".join(f"{k}: {v}\n" for k, v in headers)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.http").write_bytes(head.encode() + b"\n" + body)
    return json.loads(body) if body.startswith(b"{") else None


def template(fail=False, value="blue"):
    return {
        "heat_template_version": "2018-08-31",
        "parameters": {"admin_password": {"type": "string", "hidden": True, "default": "RBvaP4je2j5Q"}},
        "resources": {"probe": {"type": "OS::Heat::TestResource", "properties": {"value": value, "fail": fail}}},
        "outputs": {"colour": {"value": {"get_attr": ["probe", "output"]}, "description": "the probe's value"}},
    }


def settle(name, stack_id):
    for _ in range(120):
        status, _, body = call("GET", f"/stacks/{name}/{stack_id}?resolve_outputs=False")
        stack = json.loads(body)["stack"]
        if not stack["stack_status"].endswith("IN_PROGRESS"):
            return
        time.sleep(0.5)
    sys.exit(f"{name} did not settle")


request = {"stack_name": "lb_1", "template": template(), "parameters": {}, "timeout_mins": 5, "disable_rollback": True}
record("stacks_200_empty", call("GET", "/stacks?limit=500"))
record("find_404", call("GET", "/stacks/lb_1"))
created = record("create_201", call("POST", "/stacks", request))
stack_id = created["stack"]["id"]
record("create_409_exists", call("POST", "/stacks", request))
bad = dict(request, stack_name="lb_bad", template={"heat_template_version": "2018-08-31", "resources": {"x": {"type": "OS::No::Such"}}})
record("create_400_invalid", call("POST", "/stacks", bad))
settle("lb_1", stack_id)
record("find_302", call("GET", "/stacks/lb_1"))
record("show_200", call("GET", f"/stacks/lb_1/{stack_id}"))
record("show_200_unresolved", call("GET", f"/stacks/lb_1/{stack_id}?resolve_outputs=False"))
record("show_404", call("GET", f"/stacks/lb_1/00000000-0000-0000-0000-000000000000"))
record("outputs_200", call("GET", f"/stacks/lb_1/{stack_id}/outputs"))
record("output_200", call("GET", f"/stacks/lb_1/{stack_id}/outputs/colour"))
record("output_404", call("GET", f"/stacks/lb_1/{stack_id}/outputs/nothing"))
record("template_200", call("GET", f"/stacks/lb_1/{stack_id}/template"))
update = dict(request, template=template(value="red"))
del update["stack_name"]
record("preview_200", call("PUT", f"/stacks/lb_1/{stack_id}/preview", update))
record("preview_400", call("PUT", f"/stacks/lb_1/{stack_id}/preview", dict(update, template={"heat_template_version": "x"})))
record("update_202", call("PUT", f"/stacks/lb_1/{stack_id}", update))
settle("lb_1", stack_id)
record("update_400_invalid", call("PUT", f"/stacks/lb_1/{stack_id}", dict(update, template=bad["template"])))
failing = record("create_201_failing", call("POST", "/stacks", dict(request, stack_name="lb_2", template=template(fail=True))))
settle("lb_2", failing["stack"]["id"])
events = f"/stacks/lb_2/{failing['stack']['id']}/events?resource_status=FAILED&sort_keys=event_time&sort_dir=desc&limit=3"
record("events_200", call("GET", events))
record("show_200_failed", call("GET", f"/stacks/lb_2/{failing['stack']['id']}"))
record("stacks_200", call("GET", "/stacks?limit=500"))
record("stacks_200_marker", call("GET", f"/stacks?limit=1&marker={stack_id}"))
record("delete_204", call("DELETE", f"/stacks/lb_2/{failing['stack']['id']}"))
record("delete_204_first", call("DELETE", f"/stacks/lb_1/{stack_id}"))
settle("lb_1", stack_id)
record("delete_404", call("DELETE", f"/stacks/lb_1/{stack_id}"))
print(f"{len(list(OUT.iterdir()))} answers in {OUT}")
