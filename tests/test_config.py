from pathlib import Path

import pytest
from conftest import config_dict, write_config

from raspberry.errors import ConfigError
from raspberry.llm.config import resolve_api_key
from raspberry.stages.config import load_config


def _error(tmp_path: Path, data: dict | str) -> str:
    path = tmp_path / "c.yaml"
    if isinstance(data, str):
        path.write_text(data)
    else:
        write_config(tmp_path, data, "c.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_config_loads(tmp_path):
    config = load_config(write_config(tmp_path, config_dict(tmp_path)))
    assert config.models["teacher"].model == "sim-teacher"
    assert config.questions.shards == 2


def test_misspelt_key_is_named_with_the_file(tmp_path):
    data = config_dict(tmp_path)
    data["dialogues"]["max_turn"] = 3
    message = _error(tmp_path, data)
    assert "c.yaml" in message and "dialogues.max_turn" in message and "unknown key" in message


def test_misspelt_top_level_section(tmp_path):
    data = config_dict(tmp_path)
    data["questons"] = data.pop("questions")
    message = _error(tmp_path, data)
    assert "questons" in message


def test_wrong_type_names_key(tmp_path):
    data = config_dict(tmp_path)
    data["questions"]["shards"] = "four"
    message = _error(tmp_path, data)
    assert "questions.shards" in message and "integer" in message


def test_negative_count_rejected(tmp_path):
    data = config_dict(tmp_path)
    data["questions"]["reasoning_gym"][0]["count"] = -5
    assert "questions.reasoning_gym.0.count" in _error(tmp_path, data)


def test_unknown_role_rejected(tmp_path):
    data = config_dict(tmp_path)
    data["models"]["critic"] = {"provider": "sim_openai", "model": "x"}
    assert "models.critic" in _error(tmp_path, data)


def test_role_pointing_at_unknown_provider(tmp_path):
    data = config_dict(tmp_path)
    data["models"]["judge"]["provider"] = "nowhere"
    assert "'nowhere'" in _error(tmp_path, data)


def test_missing_role_used_by_build(tmp_path):
    """The roles a build needs come from its stages: preflight names the missing one."""
    from raspberry.pipeline.preflight import preflight
    from raspberry.stages import registry

    data = config_dict(tmp_path)
    del data["models"]["rewriter"]
    config = load_config(write_config(tmp_path, data, "c.yaml"))
    with pytest.raises(ConfigError, match=r"roles \['rewriter'\] are used by the build"):
        preflight(config, registry.names(), str(tmp_path / "out"))


def test_api_key_in_yaml_is_refused_as_a_secret(tmp_path):
    data = config_dict(tmp_path)
    data["providers"]["sim_openai"]["api_key"] = "sk-live-123"
    message = _error(tmp_path, data)
    assert "secret" in message and "sk-live-123" not in message


def test_malformed_yaml_gives_line(tmp_path):
    message = _error(tmp_path, "name: x\nquestions: [unclosed\n")
    assert "invalid YAML" in message and "line" in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_api_key_from_environment_only(tmp_path, monkeypatch):
    data = config_dict(tmp_path)
    data["providers"]["real"] = {"kind": "anthropic"}
    config = load_config(write_config(tmp_path, data))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        resolve_api_key("real", config.providers["real"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert resolve_api_key("real", config.providers["real"]) == "sk-ant-test"


def test_stage_key_follows_its_section_only(tmp_path):
    from raspberry.stages import registry

    base = config_dict(tmp_path)
    a = load_config(write_config(tmp_path, base, "a.yaml"))
    base["sft"] = {"max_rewrite_attempts": 5}
    b = load_config(write_config(tmp_path, base, "b.yaml"))
    dialogues, sft = registry.stage("dialogues"), registry.stage("sft")
    assert dialogues.key(a) == dialogues.key(b)
    assert sft.key(a) != sft.key(b)


def test_build_id_is_the_date_in_the_schedule_timezone(make_config):
    import datetime as dt

    late_utc = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)
    assert make_config().build_id_for(late_utc) == "test-20261127"  # default: UTC
    auckland = make_config(schedule={"cron": "0 2 * * *", "timezone": "Pacific/Auckland"})
    assert auckland.build_id_for(late_utc) == "test-20261128"
    assert auckland.schedule.cron == "0 2 * * *"


def test_a_config_is_parsed_once_per_process_while_it_is_unchanged(tmp_path, monkeypatch):
    import os

    import yaml

    from raspberry.stages import config as config_module

    parses = []
    real = yaml.load
    monkeypatch.setattr(
        config_module.yaml, "load", lambda *a, **k: parses.append(1) or real(*a, **k)
    )
    path = write_config(tmp_path, config_dict(tmp_path))
    first, second = load_config(path), load_config(path)
    assert len(parses) == 1 and first == second and first is not second
    path.write_text(path.read_text().replace("name: test", "name: edited"))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert load_config(path).name == "edited" and len(parses) == 2


def test_every_paid_model_needs_a_price_and_zero_marks_one_free(tmp_path):
    from raspberry.pipeline.preflight import check_prices
    from raspberry.stages import registry

    data = config_dict(tmp_path)
    data["providers"]["vllm"] = {"kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}
    data["models"]["rewriter"] = {"provider": "vllm", "model": "my-rewriter"}
    config = load_config(write_config(tmp_path, data))
    with pytest.raises(ConfigError, match="models.rewriter: model 'my-rewriter' has no price"):
        check_prices(config, registry.names())
    check_prices(config, ["candidates", "questions"])  # stages that do not ask the rewriter
    data["prices"] = {"my-rewriter": 0}
    config = load_config(write_config(tmp_path, data))
    check_prices(config, registry.names())
    assert config.prices["my-rewriter"].output_per_mtok == 0
