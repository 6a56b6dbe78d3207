"""Run every benchmark, each in a fresh process; exit non-zero if one fails."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if len(sys.argv) > 1:
        names = [n for n in names if any(arg in n for arg in sys.argv[1:])]
    failed = []
    for name in names:
        print(f"\n=== {name}", flush=True)
        result = subprocess.run([sys.executable, "-m", f"tests.benchmarks.{name}"], check=False)
        if result.returncode:
            failed.append(name)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
