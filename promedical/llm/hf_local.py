"""Local transformers chat models, batched with left padding; spec ``hf:<name-or-path>``.

Names go through ``promedical.models.resolve_model`` (``hf:smollm2``, ``hf:tiny-llama``, a local checkpoint dir).
The model loads on first use. Temperature 0 decodes greedily; otherwise sampling is seeded per batch with
``GenerationParams.seed`` so runs repeat.

Structured output: when a request carries ``json_schema`` and ``lm-format-enforcer`` is installed, decoding is
constrained to the schema with its character-level JSON-schema parser (its own transformers adapter does not import
under transformers 5, so the small token-table adapter lives here). Without the library the schema only shapes the
prompt, and the caller validates and re-asks. Requests in one batch share decoding parameters; mixed parameters
are split into separate batches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from promedical.llm.protocol import Completion, GenerationParams, Request


def _format_enforcer_available() -> bool:
    try:
        import lmformatenforcer  # noqa: F401
    except ImportError:
        return False
    return True


class HFLocalGenerator:
    """A transformers causal LM generating for batches of chat requests on the local CPU/GPU."""

    def __init__(self, name: str, *, batch_size: int = 4, constrained: bool = True, device: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.name = name
        self.batch_size = batch_size
        self.concurrency = 1
        self.constrained = constrained and _format_enforcer_available()
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._token_data: Any = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        # Unconstrained decoding answers differently, so it is part of the name (and of cache keys).
        return f"hf:{self.name}" if self.constrained else f"hf:{self.name}#constrained=0"

    def _load(self) -> None:
        if self._model is not None:
            return
        from promedical.models import load_causal_lm

        self._tokenizer, self._model = load_causal_lm(self.name)
        if self.device:
            self._model.to(self.device)

    def _enforcer_data(self) -> Any:
        """The tokenizer table lm-format-enforcer needs (built once: decodes the vocabulary)."""
        if self._token_data is None:
            from lmformatenforcer import TokenEnforcerTokenizerData

            tok = self._tokenizer
            zero = tok.encode("0", add_special_tokens=False)[-1]
            special = set(tok.all_special_ids)
            size = len(tok)
            regular = []
            for idx in range(size):
                if idx in special:
                    continue
                after_zero = tok.decode([zero, idx])[1:]
                alone = tok.decode([idx])
                regular.append((idx, after_zero, len(after_zero) > len(alone)))

            def decode(ids: list[int]) -> str:
                return str(tok.decode(ids)).rstrip("\ufffd")

            self._token_data = TokenEnforcerTokenizerData(regular, decode, tok.eos_token_id, False, size)
        return self._token_data

    def _prefix_fn(self, schema: dict[str, Any]) -> Callable[[int, Any], list[int]]:
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer

        enforcer = TokenEnforcer(self._enforcer_data(), JsonSchemaParser(schema))

        def allowed(batch_id: int, sent: Any) -> list[int]:
            return list(enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens)

        return allowed

    def _render(self, request: Request) -> str:
        messages = [dict(m) for m in request.messages]
        schema = request.params.json_schema
        if schema is not None and not self.constrained:
            hint = "Answer with JSON only, matching this JSON schema:\n" + json.dumps(schema)
            messages = [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] + "\n\n" + hint}]
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def _batch(self, requests: Sequence[Request]) -> list[Completion]:
        import torch

        params: GenerationParams = requests[0].params
        tok, model = self._tokenizer, self._model
        texts = [self._render(r) for r in requests]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": tok.pad_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            torch.manual_seed(params.seed)
        else:
            kwargs.update(do_sample=False)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        if params.json_schema is not None and self.constrained:
            kwargs["prefix_allowed_tokens_fn"] = self._prefix_fn(params.json_schema)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        width = enc["input_ids"].shape[1]
        results = []
        eos = {tok.eos_token_id, tok.pad_token_id}
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            new = row[width:].tolist()
            while new and new[-1] == tok.pad_token_id:
                new.pop()
            finished = bool(new) and new[-1] in eos
            text = tok.decode(new, skip_special_tokens=True)
            results.append(Completion(
                text=text,
                prompt_tokens=int(mask.sum()),
                completion_tokens=len(new),
                finish_reason="stop" if finished or len(new) < params.max_tokens else "length",
                calls=1,
                meta={"batch": len(requests), "constrained": "prefix_allowed_tokens_fn" in kwargs},
            ))
        return results

    def generate(
        self, requests: Sequence[Request], on_done: Callable[[int], None] | None = None
    ) -> list[Completion]:
        results: list[Completion | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(json.dumps(request.params.cache_fields(), sort_keys=True), []).append(i)
        with self._lock:
            try:
                self._load()
            except (OSError, ValueError, ImportError, RuntimeError) as exc:
                # a missing or unreadable model is a configuration error, but still a value per request
                error = f"cannot load {self.name}: {type(exc).__name__}: {exc}"[:300]
                if on_done is not None:
                    on_done(len(requests))
                return [Completion(text=None, error=error, calls=0) for _ in requests]
            for indices in groups.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    try:
                        done = self._batch([requests[i] for i in chunk])
                    except (RuntimeError, ValueError, IndexError, MemoryError) as exc:
                        # model-side failures (out of memory, an input too long for the position table, a
                        # decoding constraint that cannot be met): every request in the batch fails as a value.
                        # Programming errors (TypeError, AttributeError, KeyError...) propagate.
                        error = f"generation failed: {type(exc).__name__}: {exc}"[:300]
                        done = [Completion(text=None, error=error) for _ in chunk]
                    for i, completion in zip(chunk, done, strict=True):
                        results[i] = completion
                    if on_done is not None:
                        on_done(len(chunk))
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._token_data = None
