"""Bootstrap speed: 10,000 percentile-bootstrap resamples of a mean over 5,000 items, ours against
``scipy.stats.bootstrap`` in the same run (same data; wall-clock best of ``--repeats``).

    nice -n 10 python benchmarks/bootstrap_speed.py

Two data shapes: continuous rewards (index-matrix path) and 0/1 safety flags (multinomial path). The JSON carries
the load average and core count before and after (``conditions``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as sps

from promedical.machine import Conditions
from promedical.stats import bootstrap_mean, paired_comparison


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = {"continuous": rng.normal(0.5, 0.3, size=args.items), "binary": (rng.random(args.items) < 0.8) * 1.0}
    out: dict[str, Any] = {"items": args.items, "resamples": args.resamples}
    conditions = Conditions()
    conditions.start()
    for name, x in data.items():
        ours_t, ours = best_of(args.repeats, lambda x=x: bootstrap_mean(x, n_resamples=args.resamples))
        ref_t, ref = best_of(args.repeats, lambda x=x: sps.bootstrap(
            (x,), np.mean, n_resamples=args.resamples, method="percentile", vectorized=True,
            rng=np.random.default_rng(1)))
        out[name] = {"ours_s": round(ours_t, 4), "scipy_s": round(ref_t, 4), "speedup": round(ref_t / ours_t, 1),
                     "ours_ci": [round(ours.low, 5), round(ours.high, 5)],
                     "scipy_ci": [round(float(ref.confidence_interval.low), 5),
                                  round(float(ref.confidence_interval.high), 5)]}
    y = data["continuous"] + rng.normal(0, 0.1, size=args.items)
    paired_t, _ = best_of(args.repeats, lambda: paired_comparison(data["continuous"], y,
                                                                  n_resamples=args.resamples))
    out["paired_bootstrap_plus_permutation_s"] = round(paired_t, 4)
    conditions.stop()
    out["conditions"] = conditions.as_dict()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
