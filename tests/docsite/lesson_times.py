"""Keep the lesson times of the last test run for the site: copy build/lesson_times.json (written by
tests/lesson_timer.py during `make test`) to tests/docsite/lesson_times.json with when and where it was
measured. The site shows a fresh build/lesson_times.json first, else this committed copy, else no time.

    .venv/bin/python -m tests.docsite.lesson_times     # after a full `make test`
"""

import datetime
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "build" / "lesson_times.json"
COMMITTED = Path(__file__).with_name("lesson_times.json")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu})"


def main() -> None:
    seconds = {Path(k).name: round(v, 1) for k, v in json.loads(RUN.read_text()).items()}
    measured = datetime.date.fromtimestamp(RUN.stat().st_mtime).isoformat()
    record = {"measured": measured, "machine": machine(), "seconds": dict(sorted(seconds.items()))}
    COMMITTED.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(seconds)} lesson times from {RUN.name} ({measured}, {record['machine']}) -> {COMMITTED.name}"
    )


if __name__ == "__main__":
    main()
