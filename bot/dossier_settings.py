"""Settings of the dossier lookup and follow-up features (same ``LDTBXH_`` environment prefix)."""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RECEIPT_PATTERN = (
    r"(?<![A-Z0-9.])(?=[A-Z0-9.]*\d)[A-Z0-9]{1,6}(?:\.[A-Z0-9]{1,6}){0,5}[-. ]\d{6}[-. ]\d{3,6}(?![0-9])"
)
"""Matches e.g. ``H41.22-241105-0012`` and ``000.00.20.H41-240927-0001`` in normalised (upper-case) text."""


class DossierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDTBXH_", env_file=".env", extra="ignore")

    receipt_pattern: str = DEFAULT_RECEIPT_PATTERN
    """Regular expression of a receipt number, applied to upper-cased text with dashes unified."""
    receipt_example: str = "H41.22-241105-0012"
    """Shown to citizens as an example of a receipt number."""

    lookup_limit_per_hour: int = Field(default=10, ge=1, le=1000)
    """Dossier lookups (and failed verifications) allowed per chat in any rolling hour."""
    lookup_verify_attempts: int = Field(default=3, ge=1, le=10)
    """Wrong answers to the last-4-digits question before the verification is abandoned."""

    dossier_source: str = "local"
    """``local`` (the imported table) or ``http`` (the province's one-stop lookup API)."""
    dossier_http_url: str | None = None
    """URL template with ``{receipt}``, e.g. ``https://motcua.example.gov.vn/api/hoso/{receipt}``."""
    dossier_http_fields: dict[str, str] = Field(default_factory=dict)
    """JSON: our field -> dotted path in the API's JSON answer, e.g. ``{"status_label": "data.trangThai"}``.
    Fields: receipt, procedure, applicant_name, applicant_phone, received_at, due_date, status_label, note,
    updated_at. Missing keys use the same name as the field."""
    dossier_http_headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers (e.g. an API key) as JSON."""
    dossier_http_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds before the one-stop system is considered down."""

    followup_sla: str = "trong vòng 1 ngày làm việc"
    """When a citizen can expect the officer's call (shown after a follow-up request is stored)."""

    @field_validator("receipt_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @field_validator("dossier_source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v not in {"local", "http"}:
            raise ValueError("must be 'local' or 'http'")
        return v

    @model_validator(mode="after")
    def _http(self) -> DossierSettings:
        if self.dossier_source == "http" and (
            not self.dossier_http_url or "{receipt}" not in self.dossier_http_url
        ):
            raise ValueError("LDTBXH_DOSSIER_HTTP_URL must be set and contain {receipt} when the source is http")
        return self


@lru_cache(maxsize=1)
def get_dossier_settings() -> DossierSettings:
    return DossierSettings()
