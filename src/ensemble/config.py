"""Configuration: every setting comes from the environment (``ENSEMBLE_*``).

Defaults need nothing external: an embedded Postgres and a local-filesystem
object store in the data directory, the offline answerer.  Setting a variable
switches that part to the real service.  Invalid values fail at start with one
line naming the setting (:func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
import re
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from ensemble.errors import ConfigError

__all__ = ["Settings", "load_settings", "describe_settings", "settings_markdown"]

_NUMBER = r"\d+(?:\.\d+)?"
_PRICE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:-]*={_NUMBER}/{_NUMBER}/{_NUMBER}/{_NUMBER}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENSEMBLE_",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # -- process -------------------------------------------------------------
    data_dir: Path = Field(Path(".ensemble"), description="Where embedded Postgres, local objects and keys live.")
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the server listens on (0 = any free port).")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = JSON unless stderr is a terminal."
    )
    shutdown_timeout_s: float = Field(10.0, gt=0, le=120, description="Grace period on SIGTERM/SIGINT.")

    # -- Postgres ------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None, description="postgresql://… of an external Postgres; unset = embedded Postgres in data_dir."
    )
    db_pool_min: int = Field(2, ge=1, le=100, description="asyncpg pool minimum size.")
    db_pool_max: int = Field(10, ge=1, le=200, description="asyncpg pool maximum size.")
    db_statement_timeout_s: float = Field(30.0, gt=0, description="Per-statement timeout.")

    # -- object storage --------------------------------------------------------
    s3_endpoint: str | None = Field(None, description="S3/MinIO/R2 endpoint URL; unset = local filesystem store.")
    s3_bucket: str = Field("ensemble", min_length=3, max_length=63, description="Bucket name.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key: SecretStr | None = Field(None, description="S3 access key id.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key.")
    signing_key: SecretStr | None = Field(
        None, description="Key for signed local download URLs and tokens; generated into data_dir when unset."
    )

    # -- auth ------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        None, description="HMAC secret for access tokens; generated once into data_dir when unset."
    )
    access_token_ttl_s: int = Field(900, ge=30, le=86400, description="Access token lifetime.")
    refresh_token_ttl_s: int = Field(30 * 86400, ge=300, description="Refresh token lifetime.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed CORS origins, comma-separated (or * for any)."
    )
    argon2_time_cost: int = Field(3, ge=1, le=20, description="Argon2id passes per password hash.")
    argon2_memory_kib: int = Field(65536, ge=1024, le=4 << 20, description="Argon2id memory per hash, KiB.")
    argon2_parallelism: int = Field(4, ge=1, le=16, description="Argon2id lanes per hash.")
    argon2_max_concurrency: int = Field(
        2, ge=1, le=64, description="Password hashes computed at once (each takes argon2_memory_kib)."
    )
    metrics_token: SecretStr | None = Field(
        None, description="If set, /metrics requires 'Authorization: Bearer <token>'; unset = open (restrict at the proxy)."
    )
    hub_claim_code_ttl_s: int = Field(600, ge=60, le=86400, description="How long a hub claim code stays valid.")
    hub_offline_after_s: float = Field(
        300.0, gt=0, le=86400, description="Silence after which a hub counts as offline and its tenant is alerted."
    )
    hub_command_ttl_s: float = Field(
        600.0, gt=0, le=7 * 86400, description="How long a hub command waits for its ack before it fails."
    )
    hub_heartbeat_s: int = Field(30, ge=1, le=3600, description="How often hubs send a heartbeat.")
    hub_handshake_skew_s: float = Field(
        60.0, gt=0, le=3600, description="Clock difference allowed between a hub's signed hello and the server."
    )
    telemetry_max_points: int = Field(
        10_000, ge=100, le=10_000_000, description="Most points one telemetry query may return (else 413)."
    )

    # -- rate limits (token buckets in process; burst = the per-period amount) -----
    rate_limit_auth_per_minute: int = Field(10, ge=1, description="Auth endpoint requests per client IP per minute.")
    rate_limit_user_per_minute: int = Field(100, ge=1, description="API requests per user per minute.")
    rate_limit_tenant_per_minute: int = Field(1000, ge=1, description="API requests per tenant per minute.")
    rate_limit_uploads_per_hour: int = Field(20, ge=1, description="File uploads per tenant per hour.")
    rate_limit_max_buckets: int = Field(
        100_000, ge=100, description="Most rate-limit buckets kept in memory; idle ones are evicted first."
    )

    # -- limits ----------------------------------------------------------------
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest JSON/msgpack request body.")
    max_upload_bytes: int = Field(25 << 20, ge=1024, description="Largest file upload.")
    max_ws_message_bytes: int = Field(64 << 10, ge=512, description="Largest WebSocket frame accepted.")
    upload_content_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "image/jpeg", "image/png", "image/webp", "image/gif", "image/heic",
            "application/pdf", "text/plain", "text/markdown", "text/csv", "video/mp4",
            "model/3mf", "application/vnd.ms-package.3dmanufacturing-3dmodel+xml",
            # G-code, as browsers and slicers label it (it is plain text)
            "text/x.gcode", "text/x-gcode",
        ],
        description="Content types accepted for file uploads, comma-separated (type/* allowed).",
    )
    signed_url_ttl_s: int = Field(900, ge=10, le=7 * 86400, description="Lifetime of signed download URLs.")

    # -- actors ----------------------------------------------------------------
    actor_mailbox_size: int = Field(256, ge=1, le=1_000_000, description="Bounded mailbox per actor.")
    actor_idle_timeout_s: float = Field(300.0, gt=0, description="Passivate actors idle this long.")
    actor_snapshot_every: int = Field(200, ge=1, description="Snapshot every N events.")
    actor_retained_events: int = Field(
        10_000, ge=100, description="Events kept per actor for since-recovery; older gaps get resync."
    )
    actor_subscriber_buffer: int = Field(256, ge=1, description="Outbound frames buffered per connection.")

    # -- AI ----------------------------------------------------------------------
    anthropic_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "ENSEMBLE_ANTHROPIC_API_KEY"),
        description="Anthropic API key; unset = offline answerer.",
    )
    ai_assistant: Literal["auto", "offline", "echo"] = Field(
        "auto",
        description="Who answers AI questions: auto = Claude when ANTHROPIC_API_KEY is set, else quoted manual "
        "excerpts; offline = always excerpts; echo = a deterministic stand-in (tests).",
    )
    ai_model: str = Field("claude-sonnet-4-6", min_length=1, max_length=100, description="Anthropic model for answers.")
    ai_max_tokens: int = Field(1024, ge=16, le=64_000, description="Longest answer, in output tokens.")
    ai_timeout_s: float = Field(
        45.0, gt=0, le=600, description="Time for one complete model answer (keep below ENSEMBLE_SESSION_AI_TIMEOUT_S)."
    )
    ai_connect_timeout_s: float = Field(10.0, gt=0, le=120, description="Time to connect to the Anthropic API.")
    ai_max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed model request before it starts streaming.")
    ai_base_url: str | None = Field(
        None, description="Anthropic API base URL (a proxy or AI gateway); unset = the SDK's default."
    )
    ai_context_passages: int = Field(5, ge=1, le=20, description="Manual passages retrieved into each prompt.")
    ai_cache_ttl_s: int = Field(3600, ge=0, le=30 * 86400, description="How long a model answer is reused (0 = no cache).")
    ai_requests_per_hour: int = Field(
        1000, ge=1, description="Model requests per tenant per clock hour (cache hits and excerpts do not count)."
    )
    ai_prices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "claude-opus-4-5=5/25/6.25/0.5",
            "claude-opus-4-0=15/75/18.75/1.5",
            "claude-opus-4-1=15/75/18.75/1.5",
            "claude-opus-4-20250514=15/75/18.75/1.5",
            "claude-sonnet-4=3/15/3.75/0.3",
            "claude-3-7-sonnet=3/15/3.75/0.3",
            "claude-3-5-sonnet=3/15/3.75/0.3",
            "claude-haiku-4-5=1/5/1.25/0.1",
            "claude-3-5-haiku=0.8/4/1/0.08",
        ],
        description="USD per million tokens by model-name prefix, comma-separated "
        "model=input/output/cache_write/cache_read; the longest matching prefix wins.",
    )
    knowledge_embedding_model: Path | None = Field(
        None, description="Local sentence-transformers model directory for embeddings; unset = the hashing embedder."
    )

    @field_validator("database_url")
    @classmethod
    def _check_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if not raw.startswith(("postgresql://", "postgres://")):
                raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for origin in value:
                if origin != "*" and not re.match(r"^https?://[^/\s]+$", str(origin)):
                    raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value

    @field_validator("upload_content_types", mode="before")
    @classmethod
    def _split_content_types(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip().lower() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for item in value:
                if not re.match(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/([a-z0-9][a-z0-9!#$&^_.+-]*|\*)$", str(item)):
                    raise ValueError(f"{item!r} is not a content type like image/png or image/*")
        return value

    @field_validator("ai_prices", mode="before")
    @classmethod
    def _split_prices(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for item in value:
                if not _PRICE.match(str(item)):
                    raise ValueError(f"{item!r} is not like claude-sonnet-4=3/15/3.75/0.3")
        return value

    @field_validator("ai_base_url")
    @classmethod
    def _check_ai_url(cls, value: str | None) -> str | None:
        if value is not None and value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("s3_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @model_validator(mode="after")
    def _check_pool(self) -> "Settings":
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        return self

    # -- derived -------------------------------------------------------------------
    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def object_store_kind(self) -> Literal["local", "s3"]:
        return "s3" if self.s3_endpoint else "local"

    @property
    def ai_price_table(self) -> dict[str, tuple[float, float, float, float]]:
        """``ai_prices`` parsed: model prefix -> USD per million (input, output, cache write, cache read)."""
        table: dict[str, tuple[float, float, float, float]] = {}
        for item in self.ai_prices:
            name, _, numbers = item.partition("=")
            a, b, c, d = (float(x) for x in numbers.split("/"))
            table[name.strip()] = (a, b, c, d)
        return table


def _setting_name(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "ENSEMBLE_*"
    field = str(loc[0])
    if field == "anthropic_api_key":
        return "ANTHROPIC_API_KEY"
    return f"ENSEMBLE_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; one clear ``ConfigError`` on bad input."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        match = re.search(r'field "([a-z0-9_]+)"', str(exc))
        name = _setting_name((match[1],)) if match else "ENSEMBLE_*"
        raise ConfigError(f"invalid setting {name}: cannot parse the value") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = _setting_name(tuple(first.get("loc", ())))
        raise ConfigError(f"invalid setting {name}: {first['msg']}") from None


def describe_settings(settings: Settings) -> dict[str, Any]:
    """The effective configuration with secrets masked (for ``ensemble config``)."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "********"
        elif isinstance(value, Path):
            value = str(value)
        out[_setting_name((name,))] = value
    return out


def settings_markdown() -> str:
    """The configuration reference (docs/configuration.md is this, verbatim)."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable; the defaults need nothing external.",
        "Generated by `ensemble config --markdown`; a test keeps this file in step with the code.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default)
        shown = "(unset)" if default is None else f"`{default}`"
        if isinstance(default, list):
            shown = f"`{','.join(default)}`" if default else "(none)"
        lines.append(f"| `{_setting_name((name,))}` | {shown} | {field.description or ''} |")
    return "\n".join(lines) + "\n"
