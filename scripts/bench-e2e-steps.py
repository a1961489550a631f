#!/usr/bin/env python3
"""Where the first jobs of each bench-e2e phase spend their overhead, step by step.

Reads a run kept with BENCH_KEEP=1 and the controller's planner and worker logs at debug:

    BENCH_KEEP=1 BENCH_CONTROLLER_LOG="info,heat_reconciler::planner::pipeline=debug,heat_reconciler::worker::run=debug" \\
        ./target/bench-release/heat-reconciler bench-e2e --stacks 200 --concurrency 8
    python3 scripts/bench-e2e-steps.py <the run's directory> [jobs per phase, default 10]

Columns, in milliseconds: the config write's commit (the benchmark's put), the watch hop to the
planner and its queueing (until the plan transaction is sent), the plan's commit, the hop to
the worker (until it sends the claim), the claim's commit, the worker's preparing (rendering)
until Heat is called, and Heat's answer to the /state seen by the benchmark (results commit and
a watch hop). A job claimed only when a slot came free shows its wait in the hop column. A job
claimed in its plan (the planner and the worker in one process, with a free slot) has no hop to
the worker and no claim of its own: its plan ends when the worker receives it, the hop is 0, and
the claim column holds only the start of the job's task.
"""
import datetime
import json
import sys


def seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(run, shown):
    timeline = [json.loads(line) for line in open(f"{run}/timeline.jsonl")]
    log = []
    for line in open(f"{run}/controller.log"):
        try:
            log.append(json.loads(line))
        except ValueError:
            pass
    for version, action in ((1, "create"), (2, "modify")):
        rows = {t["id"]: t for t in timeline if t["version"] == version}
        start = min(t["written"] for t in rows.values())
        steps = {}
        for entry in log:
            message, at = entry.get("message"), seconds(entry["timestamp"])
            if message == "transaction sent":
                for job in json.loads(entry.get("jobs", "[]")):
                    if job.startswith(action + ":"):
                        steps.setdefault(job.split(":")[3], {}).setdefault("sent", at)
                continue
            job = entry.get("job", "")
            if job.startswith(action + ":"):
                step = steps.setdefault(job.split(":")[3], {})
                step[message] = at
                if "heat_ms" in entry:
                    step["heat_ms"] = entry["heat_ms"]
        print(f"{action}: id, written at | write, to planner, plan, to worker, claim, prepare, to /state = overhead")
        for resource in sorted(rows)[:shown]:
            row, step = rows[resource], steps.get(resource, {})
            try:
                calling = step["job finished"] - step["heat_ms"] / 1000
                handed = step.get("claimed in its plan")
                planned, claiming = (handed, handed) if handed else (step["planned job"], step["claiming"])
                marks = [row["written"], row["committed"], step["sent"], planned, claiming,
                         step["Checking job status"], calling]
                parts = [b - a for a, b in zip(marks, marks[1:])] + [row["state"] - step["job finished"]]
            except (KeyError, TypeError) as missing:
                print(f"  {resource}: no {missing} (were the debug logs on?)")
                continue
            cells = "  ".join(f"{p * 1000:5.1f}" for p in parts)
            print(f"  {resource} {(row['written'] - start) * 1000:6.1f} | {cells} = {sum(parts) * 1000:5.1f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10)
