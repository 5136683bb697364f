"""The README's code runs as written, and its set-up commands are the ones CI runs."""

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write figures where they run
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["per_image"].shape == (8,)
    assert "decay" in namespace["variables"]["params"]["LearnableLIF_0"]
    assert {"rasters.png", "encoder_maps.png", "membrane.png"} <= {p.name for p in tmp_path.iterdir()}


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
