"""The quickstart: the whole ProMedical loop on the bundled sample set, through the same commands a user runs.

rubrics -> split -> judge (+ agreement with the expert labels) -> preferences -> criterion-conditioned RM
(train, eval) -> GRPO -> bench before/after -> comparison and HTML report.

Every stage is a ``promedical`` command run as a subprocess and printed first, so the user sees the real CLI. A
stage that finished with the same command line is skipped on a re-run (its summary is kept under
``<out>/.quickstart/``), and the commands themselves resume from their caches and checkpoints, so an interrupted
quickstart picks up where it stopped. ``tiny`` mode swaps every model for the random 2-layer test model: the same
mechanics in a few minutes, for CI (no quality claims).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promedical import samples
from promedical.data.blind import shared_data_dir
from promedical.hashing import content_hash
from promedical.io import atomic_writer, write_json

SPLIT_SALT = "promedical-quickstart/v1"
JUDGE_PORT = 8737  # preferred loopback port of the judge server: a stable URL keeps the judge cache valid


@dataclass(frozen=True)
class Profile:
    """Models and budgets of one quickstart mode."""

    name: str
    policy: str  # a name resolve_model accepts
    rm_backbone: str
    judge_demo: str  # "llama.cpp" (SmolLM2 GGUF server) or a judge spec
    judge_max_tokens: int
    judge_limit: int  # held-out responses the judge demo grades (fixed-seed slice)
    rm_epochs: float
    rm_max_rows: int
    rm_max_length: int
    grpo_steps: int
    grpo_generations: int
    grpo_completion_tokens: int
    grpo_lora: bool
    bench_max_tokens: int
    resamples: int
    # The tiny profile's judge is a random model: every verdict is unscored by construction, which the judge's
    # unscored-rate gate would rightly refuse; the mechanics run lifts the gate and says so. The full profile
    # keeps the default gate.
    judge_max_unscored_rate: float | None = None
    # The recommended RM recipe (configs/rm_recommended.yaml: constructed supervision + an evidence head fitted on
    # physician labels) when the shared data folder is there; rm_max_rows is its smaller budget here.
    rm_recipe: bool = True
    # Mechanics runs use a random RM that cannot beat the majority class: they lift the gate, loudly.
    allow_weak_rm: bool = False


FULL = Profile(
    name="full", policy="smollm2", rm_backbone="minilm", judge_demo="llama.cpp", judge_max_tokens=1024,
    judge_limit=4, rm_epochs=1.0, rm_max_rows=120, rm_max_length=192, grpo_steps=12, grpo_generations=4,
    grpo_completion_tokens=64, grpo_lora=True, bench_max_tokens=128, resamples=10_000,
)
TINY = Profile(
    name="tiny", policy="tiny-llama", rm_backbone="tiny-llama", judge_demo="hf:tiny-llama", judge_max_tokens=32,
    judge_limit=6, rm_epochs=1.0, rm_max_rows=40, rm_max_length=128, grpo_steps=2, grpo_generations=2,
    grpo_completion_tokens=12, grpo_lora=False, bench_max_tokens=12, resamples=1000, judge_max_unscored_rate=1.0,
    rm_recipe=False, allow_weak_rm=True,
)
RECOMMENDED_MAX_ROWS = 400  # configs/rm_recommended.yaml
INDEPENDENT_JUDGE = "lexical:0.5"  # no model, never optimised against: the bench's second opinion


@dataclass
class Step:
    name: str
    title: str
    args: list[str]
    key_args: list[str] | None = None  # what identifies the work, when args hold incidental parts (a port)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False


class WeakRewardModel(RuntimeError):
    """The RM's held-out accuracy is not above the majority class: GRPO and the bench would optimise noise."""


class StepFailed(RuntimeError):
    def __init__(self, step: Step, code: int) -> None:
        super().__init__(f"stage '{step.name}' failed (exit {code}): promedical {shlex.join(step.args)}")
        self.step, self.code = step, code


def _yaml(path: Path, value: dict[str, Any]) -> Path:
    with atomic_writer(path) as handle:
        yaml.safe_dump(value, handle, sort_keys=False)
    return path


class Quickstart:
    def __init__(self, out: Path, profile: Profile, echo: Callable[[str], None], allow_weak_rm: bool = False) -> None:
        self.out, self.profile, self.echo = out.resolve(), profile, echo
        self.allow_weak_rm = allow_weak_rm or profile.allow_weak_rm
        self.state = self.out / ".quickstart"
        self.steps: list[Step] = []

    # -- running ---------------------------------------------------------------------------------------------
    def train(self, group: str, name: str, title: str, settings: dict[str, Any]) -> tuple[dict[str, Any], Path]:
        """``promedical <group> train`` on ``settings`` written as YAML; returns its summary and output folder.

        One output folder per distinct config: a changed config never resumes from another config's checkpoint.
        """
        out_dir = self.out / group / content_hash(settings, 8)
        config = _yaml(self.out / "configs" / f"{group}.yaml", {**settings, "output_dir": str(out_dir)})
        args = [group, "train", "--config", str(config), "--json"]
        return self.run(Step(name, title, args, [*args, config.read_text()])), out_dir

    def run(self, step: Step) -> dict[str, Any]:
        """Run ``promedical <args> --json`` unless the same command already finished; return its summary."""
        self.steps.append(step)
        key = content_hash(step.key_args or step.args)
        self.echo(f"\n[{len(self.steps)}] {step.title}\n$ promedical {shlex.join(step.args)}")
        saved = self.finished(step.name, key)
        if saved is not None:
            step.summary, step.reused, step.seconds = saved, True, 0.0
            self.echo("  (finished in an earlier run: reused)")
            return step.summary
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "promedical", *step.args], stdout=subprocess.PIPE, text=True,
                              check=False)
        step.seconds = time.monotonic() - start
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0:
            if lines:
                self.echo("\n".join(lines[-5:]))
            raise StepFailed(step, proc.returncode)
        try:
            step.summary = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            step.summary = {"output": lines[-1]}
        write_json(self.state / f"{step.name}.json",
                   {"key": key, "args": step.args, "summary": step.summary, "seconds": step.seconds})
        self.echo(f"  done in {step.seconds:.0f} s")
        return step.summary

    def finished(self, name: str, key: str) -> dict[str, Any] | None:
        marker = self.state / f"{name}.json"
        if not marker.exists():
            return None
        saved = json.loads(marker.read_text())
        return saved["summary"] if saved.get("key") == key else None

    # -- the loop --------------------------------------------------------------------------------------------
    def loop(self) -> dict[str, Any]:
        p, out = self.profile, self.out
        out.mkdir(parents=True, exist_ok=True)
        rubrics, responses, labels = samples.rubrics_path(), samples.responses_path(), samples.verdicts_path()
        split = out / "split"
        self.run(Step("validate", "Validate the bundled rubrics (20 instructions, three tiers)",
                      ["rubrics", "validate", str(rubrics), "--json"]))
        self.run(Step("split", "Split rubrics, responses and expert labels by content hash (train / held-out)",
                      ["data", "split-rubrics", "-r", str(rubrics), "-x", str(responses), "-v", str(labels),
                       "-f", "train=0.7", "-f", "test=0.3", "--salt", SPLIT_SALT, "-o", str(split), "--json"]))
        judge = self._judge_demo(split / "test", labels)
        self.run(Step("prefs", "Lexicographic preference pairs and criterion-expanded rows (expert labels)",
                      ["data", "prefs", "-r", str(split / "train" / "rubrics.jsonl"),
                       "-x", str(split / "train" / "responses.jsonl"), "-v", str(split / "train" / "verdicts.jsonl"),
                       "-o", str(out / "prefs"), "--json"]))
        rm_settings: dict[str, Any] = {
            "backbone": p.rm_backbone, "template": "explicit/1", "max_length": p.rm_max_length,
            "train_data": [str(out / "prefs" / "criterion_pairs.records.jsonl"), str(split / "train")],
            "val_data": [str(split / "train")], "pointwise_weight": 1.0,
            "derive_pairs": False, "max_rows": p.rm_max_rows, "epochs": p.rm_epochs, "batch_size": 8,
            "learning_rate": 1e-4, "warmup_ratio": 0.1, "save_steps": 50, "logging_steps": 5, "seed": 0,
        }
        recipe = p.rm_recipe and (shared_data_dir() / "k-qa").is_dir()
        if recipe:
            rm_settings.update(supervision=["kqa-answers"], evidence={"physician_labels": ["kqa-nli"], "folds": 5},
                               input="windows/1", windows={"max_windows": 8, "overlap": 0.25},
                               pointwise_weight=0.0, derive_pairs=True, max_pairs_per_criterion=6)
            title = (f"Train ProMedical-RM, the recommended recipe on a smaller budget ({p.rm_max_rows} rows of "
                     f"{RECOMMENDED_MAX_ROWS}): encoder + evidence head fitted on K-QA physician labels")
        else:
            title = "Train ProMedical-RM (criterion injected, Bradley-Terry + pointwise)"
            if p.rm_recipe:
                self.echo(f"no shared data folder at {shared_data_dir()}: training the RM on the samples only "
                          "(no physician labels, no held-out agreement with physicians)")
        trained, rm_dir = self.train("rm", "rm-train", title, rm_settings)
        checkpoint = str(trained.get("checkpoint") or rm_dir / "final")
        rm_eval = self.run(Step("rm-eval", "Evaluate the RM on held-out expert labels (bootstrap CIs)",
                                ["rm", "eval", "--model", checkpoint, "--data", str(split / "test"),
                                 "--resamples", str(min(p.resamples, 2000)), "-o", str(out / "rm-eval.json"),
                                 "--json"]))
        gate = self.rm_gate(trained.get("evidence"), rm_eval)
        grpo: dict[str, Any] = {
            "policy": p.policy, "rubrics": [str(split / "train" / "rubrics.jsonl")],
            # probability credit: SmolLM2's short answers rarely meet a criterion outright, so 0/1 verdicts leave
            # most groups tied (docs/grpo.md, "Probability credit")
            "reward": {"mode": "hierarchical", "judge": f"rm:{checkpoint}", "credit": "probability"},
            "num_generations": p.grpo_generations, "per_device_train_batch_size": p.grpo_generations,
            "max_completion_length": p.grpo_completion_tokens, "max_steps": p.grpo_steps,
            "learning_rate": 5e-5 if p.grpo_lora else 1e-5, "save_steps": max(1, p.grpo_steps // 2),
            "logging_steps": 1,
        }
        if p.grpo_lora:
            grpo["lora"] = {"r": 16, "alpha": 32}
        trained_policy, grpo_dir = self.train("grpo", "grpo",
                                              "GRPO with r = clip(S1 + a*S2, 0, 1+b) - l*S3, graded by the RM", grpo)
        aligned = str(trained_policy.get("final_policy") or grpo_dir / "final")
        bench = split / "test" / "rubrics.jsonl"
        # The policy trained against the RM: the bench also grades it with a judge it never optimised against.
        common = ["--judge", f"rm:{checkpoint}", "--also-judge", INDEPENDENT_JUDGE, "--max-tokens",
                  str(p.bench_max_tokens), "--resamples", str(p.resamples), "--train",
                  str(split / "train" / "rubrics.jsonl"), "--json"]
        before = self.run(Step("bench-base", "Bench the starting policy on the held-out rubrics",
                               ["bench", "run", "--bench", str(bench), "--policy", f"hf:{p.policy}",
                                "-o", str(out / "bench" / "base"), *common]))
        after = self.run(Step("bench-aligned", "Bench the aligned policy on the same rubrics, same judge",
                              ["bench", "run", "--bench", str(bench), "--policy", f"hf:{aligned}",
                               "-o", str(out / "bench" / "aligned"), *common]))
        compare = self.run(Step("compare", "Paired comparison, aligned vs starting policy, and the HTML report",
                                ["bench", "compare", str(out / "bench" / "aligned"), str(out / "bench" / "base"),
                                 "-o", str(out / "bench" / "compare"), "--resamples", str(p.resamples), "--json"]))
        result = {"profile": p.name, "out": str(out), "judge": judge, "rm": rm_eval, "grpo": trained_policy,
                  "independent_judge": INDEPENDENT_JUDGE,
                  "rm_held_out": trained.get("evidence"), "rm_gate": gate, "rm_recipe": recipe,
                  "rm_budget": {"max_rows": p.rm_max_rows, "recommended_max_rows": RECOMMENDED_MAX_ROWS},
                  "bench_base": before,
                  "bench_aligned": after, "compare": compare, "checkpoint": checkpoint, "aligned_policy": aligned,
                  "report": str(out / "bench" / "compare" / "report.html"),
                  "stages": [{"name": s.name, "seconds": round(s.seconds, 1), "reused": s.reused}
                             for s in self.steps]}
        write_json(out / "quickstart.json", result)
        return result

    def rm_gate(self, held_out: dict[str, Any] | None, rm_eval: dict[str, Any]) -> dict[str, Any]:
        """Refuse an RM whose held-out accuracy is not above the majority class (unless allowed, loudly).

        The held-out figure is the out-of-fold agreement with physicians when the RM has an evidence head, else its
        pointwise accuracy on the quickstart's held-out expert labels."""
        if held_out:
            basis = "physician labels, out of fold"
            accuracy, majority = held_out["out_of_fold"]["accuracy"], held_out["out_of_fold"]["majority_class"]
        else:
            basis = "held-out expert labels of the samples"
            accuracy = (rm_eval.get("pointwise_accuracy") or {}).get("value")
            majority = rm_eval.get("majority_class")
        passed = accuracy is not None and majority is not None and accuracy > majority
        gate = {"basis": basis, "accuracy": accuracy, "majority_class": majority, "passed": passed,
                "overridden": False}
        if not passed:
            message = (f"the reward model's held-out accuracy ({basis}) is {accuracy} against a majority class of "
                       f"{majority}: it is no better than always giving the commoner label")
            if not self.allow_weak_rm:
                raise WeakRewardModel(f"{message}; GRPO and the bench would optimise and measure noise. Pass "
                                      "--allow-weak-rm to go on anyway")
            gate["overridden"] = True
            self.echo(f"\nWARNING: {message}. Going on because --allow-weak-rm is set (or this is a mechanics "
                      "run): every GRPO and bench figure below is graded by a reward model that is not better "
                      "than chance.\n")
        return gate

    def _judge_demo(self, test_dir: Path, labels: Path) -> dict[str, Any]:
        """Judge the held-out responses with a small LLM judge and measure its agreement with the expert labels."""
        out, p = self.out, self.profile
        verdicts = out / "judge" / "verdicts.jsonl"

        def steps(spec: str) -> tuple[Step, Step]:
            judge_args = ["judge", "run", "-r", str(test_dir / "rubrics.jsonl"),
                          "-x", str(test_dir / "responses.jsonl"), "--judge", spec, "-o", str(verdicts),
                          "--max-tokens", str(p.judge_max_tokens), "--limit", str(p.judge_limit), "--json"]
            if p.judge_max_unscored_rate is not None:
                judge_args[-1:-1] = ["--max-unscored-rate", str(p.judge_max_unscored_rate)]
            stable = [a if a != spec else p.judge_demo for a in judge_args]
            meta_args = ["judge", "meta-eval", "--labels", str(test_dir / "verdicts.jsonl"), "--verdicts",
                         str(verdicts), "-r", str(test_dir / "rubrics.jsonl"), "--resamples", "1000",
                         "-o", str(out / "judge" / "meta-eval.json"), "--json"]
            return (Step("judge", "Judge every (response, criterion) with the criteria injected", judge_args, stable),
                    Step("meta-eval", "Judge-vs-expert agreement on the held-out labels", meta_args))

        def run_judge(spec: str) -> dict[str, Any]:
            judge_step, meta_step = steps(spec)
            return {"spec": spec, "run": self.run(judge_step), "agreement": self.run(meta_step)}

        if p.judge_demo != "llama.cpp":
            return run_judge(p.judge_demo)
        from promedical.llm import llamacpp
        from promedical.models import smollm2_gguf

        if not llamacpp.available():
            self.echo("llama-cpp-python is not installed: judging with local transformers instead")
            return run_judge("hf:smollm2")
        server = llamacpp.LlamaServer(smollm2_gguf(), out / "judge" / "llama-server.log",
                                      port=llamacpp.preferred_port(JUDGE_PORT))
        if all(self.finished(s.name, content_hash(s.key_args or s.args)) is not None for s in steps(server.spec())):
            return run_judge(server.spec())  # both reused: no server needed
        self.echo(f"\nStarting a real OpenAI-compatible judge server on loopback:\n$ {shlex.join(server.command)}")
        with server:
            return run_judge(server.spec())
