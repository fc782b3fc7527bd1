"""METEOR's trainer: one fine-tune job, configured by the METEOR_* environment and trl.yaml.

The contract (activities/finetune/job-layout.ts):
  METEOR_TRAINING_KIND       sft | preference
  METEOR_LOSS                dpo | simpo | orpo | kto | margin-ranking (preference only)
  METEOR_TRAINER_CONFIG_DIR  holds trl.yaml (core/trainer-config.ts)
  METEOR_OUTPUT_DIR          receives the PEFT adapter (or the full model) and the tokenizer
  METEOR_METRICS_PATH        one JSON line per logging step: {step, loss, learning_rate, epoch}
  METEOR_BASE_WEIGHTS        Hugging Face id or folder of the weights to start from
  METEOR_PARENT_ADAPTER      the parent's adapter folder; empty for a fine-tune of the base weights

trl.yaml is parsed by TRL's own TrlParser with the dataclasses `trl <command>` uses, so a config
this trainer takes is one the TRL CLI takes. Every metrics line is also printed to stdout as
`METEOR_METRICS {json}`, which backends read from the job's log.

Exit codes: 0 done; 2 bad input (missing environment, unknown loss, missing files; one line on
stderr); 1 training failed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from typing import Any, NoReturn

# transformers 5.x renames (gradient_checkpointing -> activation_checkpointing, …) warn on every
# run; they say nothing about the job and clutter its log.
warnings.filterwarnings("ignore", category=FutureWarning)

METRICS_PREFIX = "METEOR_METRICS "
EXIT_BAD_INPUT = 2

# Preference loss -> TRL trainer, and the loss_type used when trl.yaml names none. Keep in step
# with TRL_LOSS in core/trainer-config.ts.
LOSSES: dict[str, tuple[str, str | None]] = {
    "dpo": ("dpo", "sigmoid"),
    # SimPO is CPO with loss_type simpo and no behaviour-cloning term (cpo_alpha 0).
    "simpo": ("cpo", "simpo"),
    "orpo": ("orpo", None),
    "kto": ("kto", "kto"),
    # No TRL loss of its own: DPO's hinge, a margin ranking loss on DPO's implicit reward.
    "margin-ranking": ("dpo", "hinge"),
}


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"meteor-trainer: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def env(name: str, required: bool = True) -> str:
    value = os.environ.get(name, "").strip()
    if required and not value:
        fail(f"{name} is not set")
    return value


def looks_local(ref: str) -> bool:
    """A folder rather than a Hugging Face id (ids are `org/name`, never absolute or relative)."""
    return ref.startswith(("/", "./", "../", "~")) or os.path.isdir(ref)


def config_classes(command: str) -> tuple[type, ...]:
    """The dataclasses `trl <command>` parses, so trl.yaml means the same here as in the CLI."""
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments

    if command == "sft":
        from trl import SFTConfig as Config
    elif command == "dpo":
        from trl import DPOConfig as Config
    elif command == "kto":
        from trl import KTOConfig as Config
    elif command == "cpo":
        from trl.experimental.cpo import CPOConfig as Config
    elif command == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config
    else:  # pragma: no cover - LOSSES only names the ones above
        raise ValueError(command)
    return (ScriptArguments, Config, ModelConfig, DatasetMixtureConfig)


def trainer_class(command: str) -> type:
    if command == "sft":
        from trl import SFTTrainer

        return SFTTrainer
    if command == "dpo":
        from trl import DPOTrainer

        return DPOTrainer
    if command == "kto":
        from trl import KTOTrainer

        return KTOTrainer
    if command == "cpo":
        from trl.experimental.cpo import CPOTrainer

        return CPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer


def finite(value: Any) -> float | None:
    """JSON has no NaN or Infinity: a non-finite loss is written as null (and noticed)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class MetricsWriter:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # A rerun of the job starts its metrics afresh.
        self.file = open(path, "w", encoding="utf-8")

    def emit(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, allow_nan=False)
        self.file.write(text + "\n")
        self.file.flush()
        print(METRICS_PREFIX + text, flush=True)

    def close(self) -> None:
        self.file.close()


def metrics_callback(writer: MetricsWriter) -> Any:
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            # The end-of-training summary has train_loss but no loss: it becomes the final line.
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            writer.emit(
                {
                    "step": state.global_step,
                    "loss": finite(logs["loss"]),
                    "learning_rate": finite(logs.get("learning_rate")),
                    "epoch": finite(logs.get("epoch", state.epoch)),
                }
            )

    return MetricsCallback()


def main() -> int:
    kind = env("METEOR_TRAINING_KIND")
    if kind not in ("sft", "preference"):
        fail(f"METEOR_TRAINING_KIND must be sft or preference, not {kind!r}")
    loss = env("METEOR_LOSS", required=False)
    if kind == "preference":
        if not loss:
            fail("METEOR_LOSS is not set (a preference fine-tune needs one of " + ", ".join(LOSSES) + ")")
        if loss not in LOSSES:
            fail(f"unsupported preference loss {loss!r}: this trainer supports " + ", ".join(LOSSES))
        command, default_loss_type = LOSSES[loss]
    else:
        command, default_loss_type = "sft", None
    config_dir = env("METEOR_TRAINER_CONFIG_DIR")
    output_dir = env("METEOR_OUTPUT_DIR")
    metrics_path = env("METEOR_METRICS_PATH")
    base = env("METEOR_BASE_WEIGHTS")
    parent = env("METEOR_PARENT_ADAPTER", required=False)

    config_path = os.path.join(config_dir, "trl.yaml")
    if not os.path.isfile(config_path):
        fail(f"no trl.yaml in METEOR_TRAINER_CONFIG_DIR ({config_dir})")
    if looks_local(base) and not os.path.isfile(os.path.join(os.path.expanduser(base), "config.json")):
        fail(f"METEOR_BASE_WEIGHTS {base} is not a model folder (no config.json)")
    if parent and not os.path.isfile(os.path.join(parent, "adapter_config.json")):
        fail(f"METEOR_PARENT_ADAPTER {parent} is not a PEFT adapter (no adapter_config.json)")

    try:
        classes = config_classes(command)
    except ImportError as err:
        fail(f"preference loss {loss!r} needs TRL's {command.upper()} trainer, which this TRL lacks ({err})")

    from trl import TrlParser

    # The environment wins over trl.yaml for what the platform decides: weights and output folder.
    args = ["--config", config_path, "--model_name_or_path", base, "--output_dir", output_dir]
    try:
        script_args, training_args, model_args, dataset_args = TrlParser(classes).parse_args_and_config(
            args, fail_with_unknown_args=True
        )
    except ValueError as err:
        fail(f"trl.yaml is not a valid {command} config: {err}")

    if default_loss_type is not None and not _names_loss_type(config_path):
        training_args.loss_type = [default_loss_type] if command == "dpo" else default_loss_type
        if command == "cpo":
            training_args.cpo_alpha = 0.0
    if not dataset_args.datasets:
        fail("trl.yaml names no datasets")
    for dataset in dataset_args.datasets:
        files = dataset.data_files if isinstance(dataset.data_files, list) else [dataset.data_files]
        for name in files:
            if isinstance(name, str) and dataset.path == "json" and not os.path.isfile(name):
                fail(f"dataset file {name} (trl.yaml datasets) does not exist")
    # Progress bars only clutter a job's log file.
    if not sys.stderr.isatty():
        training_args.disable_tqdm = True

    started = time.time()
    writer = MetricsWriter(metrics_path)
    try:
        train(command, kind, loss, base, parent, output_dir, script_args, training_args, model_args, dataset_args, writer, started)
    finally:
        writer.close()
    return 0


def _names_loss_type(config_path: str) -> bool:
    import yaml

    with open(config_path, encoding="utf-8") as f:
        return "loss_type" in (yaml.safe_load(f) or {})


def train(
    command: str,
    kind: str,
    loss: str,
    base: str,
    parent: str,
    output_dir: str,
    script_args: Any,
    training_args: Any,
    model_args: Any,
    dataset_args: Any,
    writer: MetricsWriter,
    started: float,
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import get_dataset, get_peft_config

    dtype: Any = model_args.dtype
    if dtype not in (None, "auto"):
        dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        base,
        revision=model_args.model_revision,
        dtype=dtype or "auto",
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=training_args.trust_remote_code,
    )
    tokenizer = AutoTokenizer.from_pretrained(base, revision=model_args.model_revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    peft_config = None
    if parent:
        # A child keeps training its parent's adapter on the same base weights (the parent's LoRA
        # shape wins over trl.yaml's). DPO and KTO then use a frozen copy of it as the reference.
        model = PeftModel.from_pretrained(model, parent, is_trainable=True)
        print(f"meteor-trainer: continuing the adapter in {parent} on {base}", file=sys.stderr, flush=True)
    elif model_args.use_peft:
        peft_config = get_peft_config(model_args)

    dataset = get_dataset(dataset_args)[script_args.dataset_train_split]
    if command == "kto" and {"chosen", "rejected"} <= set(dataset.column_names):
        # KTO learns from unpaired rows: each pair gives a desirable and an undesirable completion.
        from trl.data_utils import unpair_preference_dataset

        dataset = unpair_preference_dataset(dataset)

    trainer = trainer_class(command)(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[metrics_callback(writer)],
    )
    result = trainer.train()

    final_model = trainer.model
    if isinstance(final_model, PeftModel) and "ref" in final_model.peft_config:
        # DPO's frozen reference copy of a parent adapter is not part of the result.
        final_model.delete_adapter("ref")
    trainer.save_model(output_dir)
    tokenizer.save_pretrained(output_dir)

    writer.emit(
        {
            "final": True,
            "step": trainer.state.global_step,
            "train_loss": finite(result.training_loss),
            "kind": kind,
            "preference_loss": loss or None,
            "trainer": command,
            "seconds": round(time.time() - started, 2),
        }
    )
    if trainer.state.global_step > 0 and finite(result.training_loss) is None:
        fail("training loss is not finite", code=1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except Exception as err:  # noqa: BLE001 - the job log needs a one-line reason after the traceback
        import traceback

        traceback.print_exc()
        fail(f"training failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", code=1)
