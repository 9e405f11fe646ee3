"""Which stack the operator commands work on (issue #17, part 1): --stack, then BATCHRECS_STACK, then
samconfig.toml's stack_name for the environment, then batchrecs."""

from __future__ import annotations

from pathlib import Path

from batchrecs.operate.stack import stack_name

from tests.conftest import ROOT


def test_the_stack_name_comes_from_the_option_the_variable_samconfig_then_the_default(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "recs-dev"\n'
        '[prod.deploy.parameters]\nstack_name = "recs-prod"\n'
    )
    variable = {"BATCHRECS_STACK": "from-variable"}
    assert stack_name("given", config, environ=variable) == "given"
    assert stack_name(None, config, environ=variable) == "from-variable"
    assert stack_name(None, config, environ={}) == "recs-dev"
    assert stack_name(None, config, "prod", environ={}) == "recs-prod"
    assert stack_name(None, tmp_path / "none.toml", environ={}) == "batchrecs"
    # the shipped samconfig.toml names the stack local up answers for
    assert stack_name(None, ROOT / "samconfig.toml", environ={}) == "batchrecs"
