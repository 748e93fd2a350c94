"""Add date, commit, CPU flags and load to benchmark result files written before ``save_result`` recorded them.

Idempotent: a file that has every field is left as it is. What git history gives (the commit that added the
file's content and its date) is marked ``"recorded_by": "git history"``; CPU flags or load that were never
recorded become null with a note, never a guess. Run from the repository root after merging a branch whose
result files predate the writer:  python scripts/backfill_result_provenance.py
"""

import json
import subprocess
from pathlib import Path

RES = Path("benchmarks/results")
NOT_RECORDED = "not recorded when this was measured"
for path in sorted(RES.glob("*.json")):
    doc = json.loads(path.read_text())
    log = subprocess.run(["git", "log", "--format=%H,%cI", "--", str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    if not log:
        print(f"{path.name}: not in git history yet; commit it, then run this again")
        continue
    commit, date = log[0].split(",")
    recovered = []
    if "measured_at" not in doc:
        if "started_at" in doc:
            doc["measured_at"] = doc["started_at"]
            doc["measured_at_note"] = "copied from 'started_at' in this file"
        else:
            doc["measured_at"] = date
            recovered.append("measured_at")
    if "git_commit" not in doc:
        doc["git_commit"] = commit
        recovered.append("git_commit")
    m = doc.get("machine")
    if not isinstance(m, dict):
        m = doc["machine"] = {"description": m} if m else {}
    if "cpu_flags" not in m:
        m["cpu_flags"] = None
        m["cpu_flags_note"] = NOT_RECORDED
    if "load_average_1_5_15" not in m:
        src = None
        for key, val in [("load_average_1_5_15", doc.get("load_average_1_5_15")),
                         ("machine.load_average_at_end", m.get("load_average_at_end")),
                         ("load_average_1_5_15min.start", (doc.get("load_average_1_5_15min") or {}).get("start"))]:
            if isinstance(val, list) and len(val) == 3:
                m["load_average_1_5_15"] = [round(x, 2) for x in val]
                src = key
                break
        if src:
            m["load_average_1_5_15_note"] = f"copied from '{src}' in this file"
        else:
            one = {k: v for k, v in [*doc.items(), *m.items()] if "load" in k and not isinstance(v, (dict, list))}
            m["load_average_1_5_15"] = None
            m["load_average_1_5_15_note"] = (f"only a single load figure was recorded: {one}" if one else NOT_RECORDED)
    if recovered:
        doc["recorded_by"] = "git history"
        doc["recovered_from_git"] = {
            "fields": recovered,
            "note": "written before save_result recorded these: 'git_commit' is the commit that added this file's "
                    "content" + (" and 'measured_at' its commit date" if "measured_at" in recovered else "")
                    + f" ({commit[:7]}, {date}); the measurement ran at or before it "
                    f"(git log --format=%H,%cI -- {path})"}
    else:
        doc.setdefault("recorded_by", "save_result")
    text = json.dumps(doc, indent=2, default=str) + "\n"
    if text != path.read_text():
        path.write_text(text)
        print(f"{path.name}: recovered {recovered or 'nothing'} (recorded_by: {doc['recorded_by']})")
