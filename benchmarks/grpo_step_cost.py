"""What a GRPO step costs at the paper's group size: generation, reward (RM scoring + the scoring path), update.

One run of ``configs/grpo_smollm2_lora.yaml`` (SmolLM2-135M-Instruct + LoRA r16, G = 8, one prompt of 8 completions
per step) through the project's own trainer builder (``promedical.rl.grpo.build_trainer``), with the reward from a
reward-model checkpoint (default: the recommended recipe's). The split is measured, not estimated: the trainer's
generation call and its reward call are timed where TRL makes them (the instance's ``_generate`` and
``_calculate_rewards``), and each optimiser step's wall time by a callback; update = step - generation - reward.
The first step (warm-up: model loading, tokenizer caches) is reported but left out of the means.

    nice -n 10 python benchmarks/grpo_step_cost.py --rm runs/rm/model --steps 4 --out /tmp/grpo_step_cost.json

The reward's share of the step is the figure to watch (target: at most 15%). The load average before and after is
recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promedical.machine import Conditions

ROOT = Path(__file__).resolve().parents[1]


def timed(owner: Any, name: str, bucket: list[float]) -> None:
    """Wrap ``owner.name`` so every call adds its wall time to ``bucket``."""
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rm", required=True, help="Reward-model checkpoint (rm train's model/ dir).")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--completion-tokens", type=int, default=64)
    parser.add_argument("--rubrics", default=str(ROOT / "promedical" / "samples" / "rubrics.jsonl"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from transformers import TrainerCallback

    from promedical.config import load_settings
    from promedical.rl.config import GRPOSettings
    from promedical.rl.grpo import build_trainer

    steps: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            steps.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as work, Conditions() as conditions:
        settings = load_settings(GRPOSettings, ROOT / "configs" / "grpo_smollm2_lora.yaml", [
            f"rubrics=[{args.rubrics}]", f"reward.judge=rm:{args.rm}", f"output_dir={work}/run",
            f"num_generations={args.generations}", f"per_device_train_batch_size={args.generations}",
            f"max_steps={args.steps}", f"max_completion_length={args.completion_tokens}", "save_steps=1000",
            "learning_rate=5e-5", "resume=false"])
        trainer, _, _ = build_trainer(settings, extra_callbacks=[StepClock()])
        generation: list[float] = []
        reward: list[float] = []
        timed(trainer, "_generate", generation)
        timed(trainer, "_calculate_rewards", reward)
        trainer.train()
    if len(steps) < 2 or len(generation) != len(steps) or len(reward) != len(steps):
        raise SystemExit(f"expected one generation and one reward call per step: steps {len(steps)}, "
                         f"generation {len(generation)}, reward {len(reward)}")
    rows = [{"step": i + 1, "seconds": s, "generation": g, "reward": r, "update": s - g - r}
            for i, (s, g, r) in enumerate(zip(steps, generation, reward, strict=True))]
    measured = rows[1:]  # the first step warms up
    mean = {k: statistics.fmean(r[k] for r in measured) for k in ("seconds", "generation", "reward", "update")}
    result = {"rm": args.rm, "generations": args.generations, "completion_tokens": args.completion_tokens,
              "steps": rows, "mean_after_warmup": mean,
              "share": {k: mean[k] / mean["seconds"] for k in ("generation", "reward", "update")},
              "conditions": conditions.as_dict()}
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    print(f"reward share of the step: {result['share']['reward']:.1%} (generation {result['share']['generation']:.1%},"
          f" update {result['share']['update']:.1%}); {conditions.markdown()}", file=sys.stderr)


if __name__ == "__main__":
    main()
