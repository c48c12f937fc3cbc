"""GRPO with the hierarchical reward: a thin builder around TRL's ``GRPOTrainer`` (wrapped, never forked).

Read top to bottom: settings -> prompt set (one row per prompt: chat ``prompt`` + ``rubric_id``) -> reward
function (``RubricReward`` through a judge, or the scalar implicit-RM baseline) -> ``GRPOConfig`` with the paper's
values set explicitly -> policy (optionally LoRA via PEFT) -> ``GRPOTrainer`` -> train (resuming from the last
checkpoint in the run directory) -> final policy (LoRA merged) under ``<run>/final`` -> resolved config and
manifest in the run directory (``grpo.config.json``, ``grpo.manifest.json``). Policy loading, checkpoints and the
final save are shared with DPO (``promedical.rl.trainer``); the scalar baseline's reward is in
``promedical.rl.baselines``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promedical.io import UserError, iter_jsonl, read_rubrics, write_json
from promedical.rl.baselines import ScalarRMReward
from promedical.rl.config import GRPOSettings, RewardSettings
from promedical.rl.monitor_callback import MonitorCallback, TrainScorer
from promedical.rl.rewards import RewardHistory, RubricReward, load_reward_judge
from promedical.rl.signal import SignalTracker, Warn, signal_callback, with_rates
from promedical.rl.trainer import (
    final_metrics,
    last_checkpoint,
    load_policy,
    on_cpu,
    peft_config,
    quiet_printer,
    save_final,
    write_log_history,
)
from promedical.rubrics.schema import Rubric
from promedical.runs import write_manifest

STAGE = "grpo"


def chat_prompt(rubric: Rubric) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in rubric.prompt]


def load_rubric_map(paths: list[str]) -> dict[str, Rubric]:
    return {r.id: r for r in read_rubrics(paths)}


def read_prompt_rows(path: str, rubrics: dict[str, Rubric]) -> list[dict[str, Any]]:
    """Rows ``{"prompt": [...], "rubric_id": ...}`` from a prompt-set JSONL; every rubric id must be known."""
    rows: list[dict[str, Any]] = []
    for line, value, problem in iter_jsonl(path):
        if problem is not None:
            raise UserError(str(problem))
        rid = value.get("rubric_id") if isinstance(value, dict) else None
        if not isinstance(rid, str) or not rid:
            raise UserError(f"{path}:{line}: -: rubric_id: missing (every prompt must name its rubric)")
        if rid not in rubrics:
            raise UserError(f"{path}:{line}: {rid}: rubric_id: no rubric with this id in the configured rubrics")
        assert isinstance(value, dict)
        prompt = value.get("prompt")
        if not (isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "content" in m for m in prompt)):
            prompt = chat_prompt(rubrics[rid])  # a row may omit its prompt: the rubric holds it
        rows.append({"prompt": prompt, "rubric_id": rid})
    if not rows:
        raise UserError(f"{path}: -: -: no prompts")
    return rows


def prompt_rows(settings: GRPOSettings, rubrics: dict[str, Rubric]) -> list[dict[str, Any]]:
    if settings.prompts:
        rows = read_prompt_rows(settings.prompts, rubrics)
    else:
        rows = [{"prompt": chat_prompt(r), "rubric_id": r.id} for r in rubrics.values()]
    return rows[: settings.max_prompts] if settings.max_prompts else rows


def build_reward(reward: RewardSettings, rubrics: dict[str, Rubric], policy_name: str,
                 history: RewardHistory) -> Any:
    """The reward function the settings name (hierarchical rubric reward, or the scalar implicit-RM baseline)."""
    if reward.mode == "scalar":
        return ScalarRMReward.from_spec(reward.judge, rubrics, history=history,
                                        max_unscored_rate=reward.max_unscored_rate)
    judge = load_reward_judge(reward.judge, concurrency=reward.concurrency, timeout=reward.timeout,
                              retries=reward.retries)
    return RubricReward(rubrics, judge, reward.params, policy_name=policy_name, history=history,
                        max_unscored_rate=reward.max_unscored_rate, credit=reward.credit)


def grpo_args(s: GRPOSettings) -> Any:
    """``GRPOConfig`` with every paper value set explicitly (TRL's defaults differ: beta 0.0, loss dapo)."""
    from trl import GRPOConfig

    g = s.generation
    vllm: dict[str, Any] = {}
    if g.backend == "vllm":
        vllm = {"use_vllm": True, "vllm_mode": g.vllm_mode,
                "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization}
        if g.vllm_server_base_url:
            vllm["vllm_server_base_url"] = g.vllm_server_base_url
    return GRPOConfig(
        output_dir=s.output_dir,
        num_generations=s.num_generations,
        beta=s.kl_coef,
        learning_rate=s.learning_rate,
        loss_type=s.loss_type,
        scale_rewards=s.scale_rewards,
        per_device_train_batch_size=s.per_device_train_batch_size or s.num_generations,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        max_steps=s.max_steps,
        num_train_epochs=s.num_train_epochs,
        max_completion_length=s.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        bf16=s.bf16,  # TRL defaults to True
        activation_checkpointing=s.gradient_checkpointing,  # TRL defaults to True (slower on CPU)
        deepspeed=s.deepspeed,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        logging_steps=s.logging_steps,
        report_to=s.report_to,
        use_cpu=on_cpu(),
        seed=s.seed,
        log_completions=False,
        disable_tqdm=True,
        **vllm,
    )


def train_scorer(reward: Any) -> TrainScorer:
    """The training reward as a probe scorer: rubric reward (hierarchical) or scalar RM (baseline)."""
    if isinstance(reward, RubricReward):
        def hierarchical(rubrics: list[Rubric], answers: list[str], step: int) -> list[float | None]:
            probe = RubricReward({**reward.rubrics, **{r.id: r for r in rubrics}}, reward.judge, reward.params,
                                 policy_name=reward.policy_name, history=RewardHistory())
            return [s.reward if s else None for s in probe.score_texts([r.id for r in rubrics], answers, step)]
        return hierarchical

    def scalar(rubrics: list[Rubric], answers: list[str], step: int) -> list[float | None]:
        return list(reward.score_texts([r.instruction for r in rubrics], answers))
    return scalar


def monitor_callback(s: GRPOSettings, reward: Any, history: RewardHistory, policy_name: str) -> MonitorCallback:
    """Monitors; with ``monitors.probe_rubrics`` and ``probe_judge``, the held-out probe as well."""
    m = s.monitors
    probes: list[Rubric] = []
    heldout = None
    if m.probe_rubrics and m.probe_judge:
        probes = read_rubrics(m.probe_rubrics)[: m.probe_n]
        judge = load_reward_judge(m.probe_judge, concurrency=s.reward.concurrency, timeout=s.reward.timeout,
                                  retries=s.reward.retries)
        heldout = RubricReward({r.id: r for r in probes}, judge, s.reward.params, policy_name=policy_name,
                               history=RewardHistory())
    return MonitorCallback(s.output_dir, history, train_scorer=train_scorer(reward) if heldout else None,
                           heldout_reward=heldout, probe_rubrics=probes, probe_every=m.probe_every,
                           max_new_tokens=m.probe_max_new_tokens or s.max_completion_length)


def signal_tracker(s: GRPOSettings, warn: Warn | None = None) -> SignalTracker:
    g = s.signal
    tracker = SignalTracker(s.num_generations, max_zero_std_share=g.max_zero_std_share, warn_after=g.warn_after,
                            stop_after_dead_steps=g.stop_after_dead_steps)
    if warn is not None:
        tracker.warn = warn
    return tracker


def build_trainer(s: GRPOSettings, extra_callbacks: list[Any] | None = None,
                  warn: Warn | None = None) -> tuple[Any, Any, MonitorCallback]:
    """Everything wired, nothing run: ``(trainer, reward_function, monitor_callback)``; the reward function's
    ``signal`` is the run's group-signal tracker (``warn`` prints its warning; default: stderr)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    rubrics = load_rubric_map(s.rubrics)
    rows = prompt_rows(s, rubrics)
    history = RewardHistory()
    policy_name = f"grpo:{s.policy}"
    reward = build_reward(s.reward, rubrics, policy_name, history)
    monitor = monitor_callback(s, reward, history, policy_name)
    reward.signal = signal_tracker(s, warn)
    model, tokenizer = load_policy(s.policy)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=grpo_args(s),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(s.lora),
        callbacks=[monitor, signal_callback(reward.signal), *(extra_callbacks or [])],
    )
    quiet_printer(trainer)
    return trainer, reward, monitor


def run(s: GRPOSettings, extra_callbacks: list[Any] | None = None, warn: Warn | None = None) -> dict[str, Any]:
    """Train (resuming when the run directory has a checkpoint) and write the final policy, config and manifest.

    When ``signal.stop_after_dead_steps`` stopped the run, the manifest (with the signal series) is still written,
    no final policy is saved, and ``UserError`` says what to change."""
    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{STAGE}.config.json", s.model_dump(mode="json"))  # before training: visible while it runs
    trainer, reward, _monitor = build_trainer(s, extra_callbacks, warn)
    resume = last_checkpoint(s.output_dir) if s.resume else None
    result = trainer.train(resume_from_checkpoint=resume)
    stopped = reward.signal.stop_reason
    save = s.merge_final and trainer.is_world_process_zero() and not stopped
    final = save_final(trainer, out) if save else None
    summary = {
        "output_dir": str(out),
        "final_policy": str(final) if final else None,
        "resumed_from": resume,
        "global_step": trainer.state.global_step,
        "world_size": trainer.args.world_size,
        "train_runtime": result.metrics.get("train_runtime"),
        "metrics": final_metrics(trainer.state.log_history),
        "monitors_summary": str(out / "monitors_summary.json"),
        "signal": with_rates(reward.signal.summary(), trainer.state.log_history),
        "log_history": str(out / f"{STAGE}.log_history.json"),
    }
    if trainer.is_world_process_zero():
        write_log_history(out, STAGE, trainer.state.log_history)
        inputs = [*s.rubrics, *([s.prompts] if s.prompts else [])]
        write_manifest(out, STAGE, s.model_dump(mode="json"), inputs=inputs, seed=s.seed,
                       counts={"prompts": len(trainer.train_dataset), "steps": trainer.state.global_step,
                               "scored_completions": len(reward.history.rewards)},
                       extra={"summary": summary})
    if stopped:
        raise UserError(f"{s.output_dir}: -: {stopped}")
    return summary
