"""``report_to`` of the training configs (reward model, GRPO, DPO): where transformers sends the training curves.

The value is what TRL and transformers accept: ``"none"`` (the default), one integration (``"tensorboard"``,
``"wandb"``, ``"trackio"``, ...), ``"all"``, or a list of integrations. It is checked when the config is loaded: an
unknown name, or an integration whose package is not installed, is one line naming the field and the pip package,
never a traceback from inside the trainer. TensorBoard writes its event files under ``<output_dir>/runs``
(transformers' default ``logging_dir``); ``tensorboard --logdir <output_dir>`` shows them.
"""

from __future__ import annotations

import importlib.util

ReportTo = str | list[str]

# integration -> (import names, any of which will do; the pip package that provides one)
PACKAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "trackio": (("trackio",), "trackio"),
    "mlflow": (("mlflow",), "mlflow"),
    "comet_ml": (("comet_ml",), "comet-ml"),
    "neptune": (("neptune",), "neptune"),
    "clearml": (("clearml",), "clearml"),
    "dvclive": (("dvclive",), "dvclive"),
    "swanlab": (("swanlab",), "swanlab"),
    "codecarbon": (("codecarbon",), "codecarbon"),
    "azure_ml": (("azureml",), "azureml-sdk"),
    "dagshub": (("dagshub",), "dagshub"),
    "flyte": (("flytekit",), "flytekit"),
    "kubeflow": (("kubeflow",), "kubeflow-training"),
}


def integrations() -> list[str]:
    """The integrations this transformers knows (its own table when importable, else ours)."""
    try:
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
    except ImportError:  # pragma: no cover - transformers comes with the train extra
        return sorted(PACKAGES)
    return sorted(INTEGRATION_TO_CALLBACK)


def _installed(names: tuple[str, ...]) -> bool:
    return any(importlib.util.find_spec(name) is not None for name in names)


def check_report_to(value: ReportTo) -> ReportTo:
    """The value unchanged when valid; ``ValueError`` (one line) otherwise. ``"all"`` and ``"none"`` pass as is
    (with ``"all"`` transformers picks whatever integrations are installed)."""
    names = [value] if isinstance(value, str) else list(value)
    if isinstance(value, list) and ("none" in names or "all" in names) and len(names) > 1:
        raise ValueError(f"{value!r}: 'none' and 'all' stand alone, not in a list")
    known = integrations()
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in known:
            raise ValueError(f"unknown integration {name!r}; one of none, all, {', '.join(known)} (or a list)")
        modules, package = PACKAGES.get(name, ((name,), name))
        if not _installed(modules):
            raise ValueError(f"{name!r} needs the {package!r} package, which is not installed: "
                             f"pip install {package} (or report_to: none)")
    return value
