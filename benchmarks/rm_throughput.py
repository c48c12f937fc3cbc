"""Scored (response, criterion) pairs per second: prefix-shared vs naive scoring, in the same run.

K criteria (default 10) against responses of about 300 tokens, on a decoder backbone (default SmolLM2-135M;
``tiny-llama`` for a quick check). The reward head is untrained: the cost of a forward pass does not depend on
the head's weights, and the check that both paths give the same scores is just as strict. Naive scoring runs the
K full sequences as one padded batch; prefix-shared runs the instruction+response once and the K criterion
suffixes as one batch over the copied KV cache. Prints one JSON object with wall-clock rates and CPU-time rates
(process time: on a machine shared with other jobs, wall time mostly measures the neighbours) and the load
average and core count before and after (``conditions``).

    nice -n 10 python benchmarks/rm_throughput.py --backbone smollm2 --criteria 10 --response-tokens 300
"""

from __future__ import annotations

import argparse
import json
import time

from promedical.machine import Conditions

CRITERIA = [
    "Recognises the symptoms as a possible heart attack that needs emergency care now",
    "Explains that aspirin may be chewed while waiting for help unless the user is allergic",
    "Tells the user not to drive themselves to the hospital",
    "Answers the user's actual question directly: do not sleep it off",
    "Puts the single most important action first, in short clear steps",
    "Shows empathy for the user's fear without delaying the advice",
    "Claims to be a doctor or to have examined patients",
    "Recommends a specific prescription drug dose without a clinician",
    "Mentions that symptoms last week may have been a warning sign",
    "Asks whether anyone is with the user who can help",
    "Explains what the emergency team is likely to do on arrival",
    "Avoids jargon or explains any medical term it uses",
]
RESPONSE_SENTENCE = (
    "Chest pressure spreading to the arm with sweating and nausea can be a heart attack, so call emergency "
    "services now rather than waiting. "
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--criteria", type=int, default=10)
    parser.add_argument("--response-tokens", type=int, default=300)
    parser.add_argument("--responses", type=int, default=4, help="responses timed per path")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 is robust on a shared machine; OpenMP spin-waits otherwise)")
    args = parser.parse_args()

    import torch

    from promedical.reward.inputs import CriterionInput, Group
    from promedical.reward.model import fresh_rm
    from promedical.reward.score import score_naive, score_shared

    torch.set_num_threads(args.threads)
    rm = fresh_rm(args.backbone, "explicit/1", max_length=4096)
    tok = rm.tokenizer
    words = (RESPONSE_SENTENCE * 40).split()
    response = ""
    for n in range(1, len(words) + 1):  # the shortest prefix of the text reaching the token target
        response = " ".join(words[:n])
        if len(tok(response, add_special_tokens=False)["input_ids"]) >= args.response_tokens:
            break
    criteria = [CRITERIA[i % len(CRITERIA)] + ("" if i < len(CRITERIA) else f" (variant {i})")
                for i in range(args.criteria)]
    tiers = ["proficiency", "bonus", "veto"]
    groups = [
        Group(f"Case {r}: I'm 58 and have heavy chest pressure going into my left arm. Should I sleep it off?",
              response,
              tuple(CriterionInput(c, tiers[i % 3], "prohibited" if tiers[i % 3] == "veto" else "required")
                    for i, c in enumerate(criteria)))
        for r in range(args.responses)
    ]
    enc = rm.encoder
    prefix_len = len(enc.prefix(groups[0].instruction, response))
    suffix_lens = [len(enc.suffix(c.text, c.tier, c.polarity)) for c in groups[0].criteria]
    score_shared(rm, groups[:1], batch_size=args.criteria)  # warm-up both paths
    score_naive(rm, groups[:1], batch_size=args.criteria)
    conditions = Conditions()
    conditions.start()
    timings: dict[str, list[float]] = {"naive": [], "shared": []}
    cpu: dict[str, list[float]] = {"naive": [], "shared": []}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("naive", score_naive), ("shared", score_shared)):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = fn(rm, groups, batch_size=args.criteria)
            timings[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    conditions.stop()
    pairs = args.responses * args.criteria
    diff = max(abs(a - b) for ga, gb in zip(results["naive"], results["shared"], strict=True)
               for a, b in zip(ga, gb, strict=True))
    best = {k: min(v) for k, v in timings.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    print(json.dumps({
        "backbone": args.backbone,
        "criteria_per_response": args.criteria,
        "response_tokens": len(tok(response, add_special_tokens=False)["input_ids"]),
        "prefix_tokens": prefix_len,
        "suffix_tokens_mean": sum(suffix_lens) / len(suffix_lens),
        "pairs_scored_per_path": pairs,
        "naive_pairs_per_s": pairs / best["naive"],
        "shared_pairs_per_s": pairs / best["shared"],
        "speedup": best["naive"] / best["shared"],
        "naive_pairs_per_cpu_s": pairs / best_cpu["naive"],
        "shared_pairs_per_cpu_s": pairs / best_cpu["shared"],
        "speedup_cpu_time": best_cpu["naive"] / best_cpu["shared"],
        "cpu_s": cpu,
        "max_abs_score_diff": diff,
        "timings_s": timings,
        "threads": torch.get_num_threads(),
        "conditions": conditions.as_dict(),
    }, indent=2))


if __name__ == "__main__":
    main()
