#!/usr/bin/env python3
"""seed-stacks.py -- add stacks straight into a standalone Heat's SQLite database.

Creating 10,000 stacks through the API takes about half an hour on 2 CPUs (6 a second); a
benchmark or test that only needs Heat to *list* many stacks copies one real stack's row
instead. Each new stack shares the model's template and credentials and differs in id, name,
creation time and status; Heat lists it like any other (it never loads its template to list).

Usage: seed-stacks.py --db HEAT.sqlite --model STACK_ID < lines
  each line: NAME [STATUS]   (STATUS: COMPLETE (default) or FAILED; the model's action is kept)
"""
import argparse
import datetime
import sqlite3
import sys
import uuid


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--model", required=True, help="the id of a stack to copy")
    args = parser.parse_args()
    db = sqlite3.connect(args.db, timeout=30)
    columns = [row[1] for row in db.execute("pragma table_info(stack)")]
    model = db.execute("select * from stack where id = ?", (args.model,)).fetchone()
    if model is None:
        sys.exit(f"no stack {args.model} in {args.db}")
    model = dict(zip(columns, model))
    # Newer than the model, a microsecond apart: Heat pages by (created_at, id), and SQLite
    # compares the text, so every value keeps the microseconds Heat writes.
    start = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    rows = []
    for n, line in enumerate(sys.stdin):
        fields = line.split()
        if not fields:
            continue
        row = dict(model)
        row["id"] = str(uuid.uuid4())
        row["name"] = fields[0]
        row["status"] = fields[1] if len(fields) > 1 else "COMPLETE"
        row["created_at"] = (start + datetime.timedelta(microseconds=n + 1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        row["current_traversal"] = str(uuid.uuid4())
        rows.append(tuple(row[c] for c in columns))
    placeholders = ",".join("?" * len(columns))
    with db:
        db.executemany(f"insert into stack ({','.join(columns)}) values ({placeholders})", rows)
    print(len(rows))


if __name__ == "__main__":
    main()
