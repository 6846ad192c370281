"""The one resolver: argument > environment > file > default, else a ConfigError naming the setting."""

import pytest

from comms.config import Settings, setting
from comms.errors import ConfigError


def test_argument_beats_environment_beats_file_beats_default(home, monkeypatch):
    (home / "comms.toml").write_text('base_url = "https://file.example.com"\n')
    settings = Settings.load(home)
    assert settings.get("base_url", default="https://default.example.com") == "https://file.example.com"
    monkeypatch.setenv("COMMS_BASE_URL", "https://env.example.com")
    assert settings.get("base_url", default="x") == "https://env.example.com"
    assert settings.get("base_url", "https://arg.example.com") == "https://arg.example.com"


def test_missing_setting_without_default_names_the_variable(home):
    with pytest.raises(ConfigError, match="COMMS_SENDGRID_API_KEY"):
        setting("sendgrid_api_key", home=home)


def test_broken_config_file_is_one_clear_error(home):
    (home / "comms.toml").write_text("base_url = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(home).get("base_url", default="x")


def test_embedded_default_keeps_everything_under_home(home):
    s = Settings.load(home)
    assert s.database_url == f"sqlite:///{home / 'comms.db'}"
    for path in (s.snapshots_dir, s.artifacts_dir, s.outbox_dir, s.models_dir):
        assert path.is_relative_to(home)


def test_bad_cast_is_a_config_error(home, monkeypatch):
    monkeypatch.setenv("COMMS_LINK_TTL_DAYS", "soon")
    with pytest.raises(ConfigError, match="COMMS_LINK_TTL_DAYS"):
        Settings.load(home).link_ttl_days
