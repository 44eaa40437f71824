"""Console options (``LDTBXH_CONSOLE_*``), separate from the assistant's own settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDTBXH_CONSOLE_", env_file=".env", extra="ignore")

    secure_cookies: bool = True
    """Session cookies are sent over HTTPS only. Turn off only for tests on http://127.0.0.1."""
    same_site: Literal["lax", "strict"] = "lax"
    idle_minutes: float = Field(default=30, gt=0, le=24 * 60)
    """A session unused this long expires (the officer signs in again)."""
    max_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    """A session expires this long after sign-in, used or not."""
    login_max_failures: int = Field(default=5, ge=1, le=100)
    """Failed sign-ins (per user name and address) before sign-in is refused for the window."""
    login_window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    min_password_length: int = Field(default=10, ge=6, le=128)
    group_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    """Cosine similarity above which two unanswered questions are grouped together."""
    max_unanswered: int = Field(default=2000, ge=10, le=100000)
    """How many unanswered questions the queue groups at most (newest first)."""
    utc_offset_hours: float = Field(default=7, ge=-12, le=14)
    """Local time for display and for the dashboard's days (Vietnam: UTC+7)."""
    max_upload_mb: int = Field(default=50, ge=1, le=1000)
    reload_wait_seconds: float = Field(default=60, ge=0, le=600)
    """How long the "switch" request waits for this process to load the new version."""
