"""The one settings object: flat environment names per group, ``.env``, one error message naming the
variable, documented names, parameters built only from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, env_names, load_settings
from tests.support import REPO


def test_groups_read_their_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDTBXH_MAX_MESSAGE_CHARS", "700")
    monkeypatch.setenv("LDTBXH_DEPT_HOTLINE", "0203 111 222")
    monkeypatch.setenv("LDTBXH_AGENCY_MERIT", "Sở Nội vụ tỉnh Thử Nghiệm")
    monkeypatch.setenv("LDTBXH_RELOAD_SECONDS", "3")
    monkeypatch.setenv("LDTBXH_DOSSIER_HTTP_HEADERS", '{"x-api-key": "k"}')
    monkeypatch.setenv("LDTBXH_TELEGRAM_MODE", "polling")
    monkeypatch.setenv("LDTBXH_ZALO_APP_ID", "42")
    monkeypatch.setenv("LDTBXH_CONSOLE_IDLE_MINUTES", "5")
    s = load_settings(serve={"outbox_poll_seconds": 2})  # keyword groups merge with the environment
    assert (s.max_message_chars, s.serve.outbox_poll_seconds, s.serve.reload_seconds) == (700, 2, 3)
    assert s.department.dept_hotline == "0203 111 222"
    assert s.department.placeholders()["agency_merit"] == "Sở Nội vụ tỉnh Thử Nghiệm"
    assert s.serve.reload_seconds == 3 and s.dossiers.dossier_http_headers == {"x-api-key": "k"}
    assert (s.telegram.mode, s.zalo.app_id, s.console.idle_minutes) == ("polling", "42", 5)


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("LDTBXH_DEPT_NAME=Sở từ .env\nLDTBXH_CONSOLE_MAX_UPLOAD_MB=7\nLDTBXH_MAX_MESSAGE_CHARS=500\n",
                   encoding="utf-8")
    monkeypatch.setitem(Settings.model_config, "env_file", str(env))
    monkeypatch.setenv("LDTBXH_CONSOLE_MAX_UPLOAD_MB", "9")
    s = load_settings()
    assert s.department.dept_name == "Sở từ .env" and s.max_message_chars == 500
    assert s.console.max_upload_mb == 9


@pytest.mark.parametrize(("var", "value", "named"), [
    ("LDTBXH_RELOAD_SECONDS", "abc", "LDTBXH_RELOAD_SECONDS"),
    ("LDTBXH_EMBEDDING_BACKEND", "onnx-someday", "LDTBXH_EMBEDDING_BACKEND"),
    ("LDTBXH_SQLITE_SYNCHRONOUS", "OFF", "LDTBXH_SQLITE_SYNCHRONOUS"),
    ("LDTBXH_DOSSIER_SOURCE", "soap", "LDTBXH_DOSSIER_SOURCE"),
    ("LDTBXH_TELEGRAM_SECRET_TOKEN", "có dấu", "LDTBXH_TELEGRAM_SECRET_TOKEN"),
    ("LDTBXH_CONSOLE_SAME_SITE", "none", "LDTBXH_CONSOLE_SAME_SITE"),
    ("LDTBXH_DATABASE_URL", "not a url", "LDTBXH_DATABASE_URL"),
])
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                        named: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value) and str(err.value).startswith("Cấu hình không hợp lệ")


def test_every_variable_is_unique_and_documented() -> None:
    names = env_names()
    assert len(set(names.values())) == len(names)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = sorted(v for loc, v in names.items() if v not in readme and loc != ("test_embedder",))
    assert not missing, f"not in README.md: {missing}"
