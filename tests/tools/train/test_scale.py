"""Scale-out configs: accelerate itself reads and checks every config in knowledge/configs/ (no GPU, no DeepSpeed
run): the launcher's own validation, then the FSDP and DeepSpeed plugins built from the environment it would
hand to the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CONFIGS = Path(__file__).resolve().parents[3] / "knowledge" / "configs"


def _validated(path: Path) -> tuple[Any, Any]:
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    return args, defaults


def _plugin_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(("FSDP", "ACCELERATE"))}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_accelerate_reads_every_config(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / name))
    args, _ = _validated(CONFIGS / name)
    assert args.num_processes == cfg.num_processes >= 1


def test_fsdp_config_builds_accelerates_fsdp_plugin() -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin, patch_environment
    from accelerate.utils.launch import prepare_multi_gpu_env

    args, _ = _validated(CONFIGS / "accelerate_fsdp.yaml")
    assert args.use_fsdp and args.num_processes == 8
    with patch_environment(**_plugin_env(prepare_multi_gpu_env(args))):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"


def test_deepspeed_config_builds_accelerates_deepspeed_plugin() -> None:
    from accelerate.utils import DeepSpeedPlugin, patch_environment
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args, defaults = _validated(CONFIGS / "accelerate_deepspeed_zero2.yaml")
    assert args.use_deepspeed
    args.deepspeed_fields_from_accelerate_config = list(defaults.deepspeed_config)  # as `accelerate launch` does
    _, env = prepare_deepspeed_cmd_env(args)
    with patch_environment(**_plugin_env(env)):
        plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == 2
    assert plugin.deepspeed_config["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert plugin.deepspeed_config["gradient_clipping"] == 1.0


def test_a_broken_config_is_refused(tmp_path: Path) -> None:
    """The checks above can fail: a wrong FSDP wrap policy and an unknown key are errors."""
    from accelerate.utils import FullyShardedDataParallelPlugin, patch_environment
    from accelerate.utils.launch import prepare_multi_gpu_env

    text = (CONFIGS / "accelerate_fsdp.yaml").read_text()
    bad = tmp_path / "bad_fsdp.yaml"
    bad.write_text(text.replace("TRANSFORMER_BASED_WRAP", "TRANSFORMER_WRAPPING"))
    args, _ = _validated(bad)
    with pytest.raises(ValueError), patch_environment(**_plugin_env(prepare_multi_gpu_env(args))):
        FullyShardedDataParallelPlugin()
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("num_processes: 8", "num_procesess: 8"))
    with pytest.raises(ValueError, match="unknown keys"):
        _validated(typo)
