from pathlib import Path

import pytest

from tutelage.config import load_config
from tutelage.errors import ConfigError


def test_packaged_quickstart_loads_with_three_rounds_on_the_embedded_model() -> None:
    cfg = load_config(None)
    assert cfg.loop.rounds == 3
    assert cfg.student.provider == "local" and cfg.teacher.provider == "local"
    assert cfg.suite.name == "banking77"


def test_overrides_parse_yaml_values() -> None:
    cfg = load_config(None, ["loop.rounds=2", "student.temperature=0.5", "loop.search_k=[1, 3]"])
    assert (cfg.loop.rounds, cfg.student.temperature, cfg.loop.search_k) == (2, 0.5, (1, 3))


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("loop:\n  roundz: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'loop\.roundz'"):
        load_config(path)


def test_missing_file_and_bad_value_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="loop.rounds"):
        load_config(None, ["loop.rounds=0"])


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        cfg.loop.rounds = 5  # type: ignore[misc]


def test_every_shipped_config_validates_and_the_quickstart_copy_matches_the_package() -> None:
    root = Path(__file__).parent.parent / "configs"
    for path in root.glob("*.yaml"):
        load_config(path)
    assert load_config(root / "quickstart.yaml") == load_config(None)


def test_verify_off_survives_yamls_boolean_reading() -> None:
    assert load_config(None, ["memory.verify=off"]).memory.verify == "off"
    assert load_config(None, ["memory.verify=probe"]).memory.verify == "probe"
