"""Run every benchmark module and print one table (see bench/__init__.py for the row format)."""

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).parent
LESSON_TIMES = Path("build/lesson_times.json")


def lesson_rows():
    if not LESSON_TIMES.exists():
        return [{"benchmark": "lesson times", "value": "n/a", "target": "", "note": "run `make test` first"}]
    times = json.loads(LESSON_TIMES.read_text())
    rows = [
        {
            "benchmark": f"lesson {Path(p).stem} (s)",
            "value": f"{s:.1f}",
            "target": "<= 60",
            "note": "last make test",
        }
        for p, s in sorted(times.items())
    ]
    rows.append(
        {
            "benchmark": "all lessons (s)",
            "value": f"{sum(times.values()):.1f}",
            "target": "<= 480",
            "note": "",
        }
    )
    return rows


def main() -> int:
    rows, failed = [], []
    for path in sorted(HERE.glob("bench_*.py")):
        name = f"bench.{path.stem}"
        start = time.perf_counter()
        try:
            rows += importlib.import_module(name).rows()
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"# {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows += lesson_rows()
    widths = {
        k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in ("benchmark", "value", "target")
    }
    w_name, w_value, w_target = widths["benchmark"], widths["value"], widths["target"]
    header = f"{'benchmark':<{w_name}}  {'value':>{w_value}}  {'target':<{w_target}}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['benchmark']:<{widths['benchmark']}}  {str(r['value']):>{widths['value']}}  "
            f"{str(r.get('target', '')):<{widths['target']}}  {r.get('note', '')}"
        )
    if failed:
        print(f"benchmark modules that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
