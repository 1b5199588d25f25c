"""The README's API tour runs exactly as written, and its commands are the CI's."""

from __future__ import annotations

import pathlib
import re
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_api_tour_runs_as_written():
    blocks = re.findall(r"```python\n(.*?)```", _section("API tour"), flags=re.S)
    assert blocks, "the README's API tour has no python block"
    module = types.ModuleType("readme_tour")  # dataclasses need a registered module
    sys.modules[module.__name__] = module
    try:
        exec(compile(blocks[0], "README.md (API tour)", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    namespace = module.__dict__
    assert 0.0 <= namespace["history"][-1]["test_accuracy"] <= 1.0
    assert namespace["grads"] is not None


def test_ci_runs_the_readme_commands():
    commands = re.findall(r"```bash\n(.*?)```", _section("Quick start"), flags=re.S)[0]
    install, test = [line.strip() for line in commands.strip().splitlines()]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pip_part = [p.strip() for p in install.split("&&") if p.strip().startswith("pip install")][0]
    assert pip_part.replace("pip install", "pip install --quiet") in ci
    assert re.search(rf"^{re.escape(test)}$", ci, flags=re.M), test
    assert "plastax train" in install
