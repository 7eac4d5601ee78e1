"""Mutation fuzzing of `tidegate check -c`: class counts and every bug signature.

    python bench/fuzz_check.py --cases 10000 --seed 1

Each case is a mutated configuration (see `tests/fuzzconfig.py` for the seeds and mutations)
checked in a worker process with a time bound. Exit status 1 if any case ended in a traceback,
an error without a position, a crash or a hang.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzzconfig import BUGS, Outcome
from tests.fuzzrun import run_cases, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--show", type=int, default=0,
                        help="print the output of the first N bug cases")
    args = parser.parse_args()
    started = time.monotonic()
    done = 0

    def progress(outcome: Outcome) -> None:
        nonlocal done
        done += 1
        if outcome.kind in BUGS:
            print(f"[{done}] {outcome.kind}: {outcome.signature}", flush=True)
        elif done % 500 == 0:
            print(f"[{done}] {time.monotonic() - started:.0f} s", flush=True)

    outcomes = run_cases(args.seed, args.cases, timeout=args.timeout, progress=progress)
    elapsed = time.monotonic() - started
    print(f"\n{len(outcomes)} cases, seed {args.seed}, {elapsed:.0f} s "
          f"(slowest case {max(o.seconds for o in outcomes):.2f} s)")
    print(summary(outcomes))
    for o in sorted(outcomes, key=lambda o: -o.seconds)[:3]:
        print(f"slow: {o.seconds:.2f} s case {o.case.index} ({o.kind}): "
              f"{'; '.join(o.case.what)[:200]}")
    shown = 0
    for o in outcomes:
        if o.kind in BUGS and shown < args.show:
            shown += 1
            print(f"\n--- case {o.case.index} ({o.kind}): {'; '.join(o.case.what)}")
            print((o.stdout + o.stderr)[-3000:])
    return 1 if any(o.kind in BUGS for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
