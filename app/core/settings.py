"""All configuration, read once from the environment (prefix ``INTAKE_``) and validated.

The embedded default needs no configuration at all: SQLite and a SQLite-backed Celery broker
under ``var/``, e-mails written as files, and a master key generated once into ``var/``.
Production sets ``INTAKE_ENV=production`` and must then name PostgreSQL, Redis, SMTP and a
master key explicitly; a missing or malformed one stops start-up with a message naming it.
"""

from __future__ import annotations

import base64
import binascii
import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "INTAKE_"


class SettingsError(Exception):
    """Configuration that cannot work; the message names each bad variable."""


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def parse_master_key(raw: str) -> tuple[str, bytes]:
    """``<key id>:<base64 of 32 bytes>`` -> (key id, key). The id lets keys rotate."""
    key_id, sep, b64 = raw.strip().partition(":")
    if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError("must look like '<key id>:<base64 of 32 random bytes>'")
    try:
        key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the part after ':' is not valid base64") from exc
    if len(key) != 32:
        raise ValueError(f"the key must be 32 bytes (AES-256), got {len(key)}")
    return key_id, key


PASSWORD_HASH_MIN_MEMORY_KIB = 19456
PASSWORD_HASH_MIN_TIME_COST = 2


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", env_file=None, validate_default=True
    )

    env: Literal["development", "production", "test"] = Field(
        "development", description="production enforces explicit PostgreSQL, Redis, SMTP, key"
    )
    data_dir: Path = Field(Path("var"), description="embedded files: database, broker, mail, key")
    # Unset: the address the API is served on (api_host/api_port, which `run` and `api` set from
    # their --host/--port), so links work on a developer's machine; production must set it.
    public_url: str = Field("", description="base of links in e-mails; default: the served address")

    database_url: str = Field("", description="default: SQLite file under data_dir")
    broker_url: str = Field("", description="default: kombu SQLAlchemy transport over SQLite")
    master_key: SecretStr | None = Field(None, description="'<id>:<base64 32 bytes>'")
    # Keys that data keys may still be wrapped with during a rotation, same format, comma list.
    old_master_keys: SecretStr | None = None

    # Mail: written as .eml files unless an SMTP host is set.
    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # Extra CA bundle for a relay with a private certificate authority.
    smtp_ca_file: Path | None = None
    mail_from: str = "Expert Reports <no-reply@localhost>"
    # Used when the requester asked for discretion: nothing in it hints at asylum.
    mail_from_discreet: str = "Notifications <no-reply@localhost>"

    log_format: Literal["console", "json"] | None = Field(None, description="json in production")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list)

    # Sign-in.
    user_token_ttl_minutes: int = Field(480, ge=5, le=7 * 24 * 60)
    invite_ttl_hours: int = Field(72, ge=1, le=24 * 30)
    password_reset_ttl_minutes: int = Field(60, ge=5, le=24 * 60)
    login_slow_after_failures: int = Field(3, ge=1)
    login_lock_after_failures: int = Field(10, ge=2)
    login_lock_minutes: int = Field(15, ge=1)
    login_failure_window_minutes: int = Field(15, ge=1)
    # Password hashing (argon2id). Defaults: RFC 9106's second recommended profile (64 MiB,
    # 3 passes, 4 lanes). Only the test environment may go below the floor checked below: the
    # suite hashes hundreds of passwords and would spend most of its time here.
    password_hash_memory_kib: int = Field(65536, ge=8, le=4 * 1024 * 1024)
    password_hash_time_cost: int = Field(3, ge=1, le=20)
    password_hash_parallelism: int = Field(4, ge=1, le=64)

    # Outbox (all outbound work: e-mail, later Zoom).
    outbox_poll_seconds: float = Field(3.0, gt=0, le=60)
    outbox_batch_size: int = Field(50, ge=1, le=1000)
    outbox_commit_every: int = Field(
        10,
        ge=1,
        le=1000,
        description="Sent rows are recorded together, this many per commit: a worker killed "
        "in between sends at most this many again (per pool process).",
    )
    outbox_lease_seconds: int = Field(
        15,
        ge=5,
        description="How long a claim holds without renewal; the pump renews it while it "
        "works, so a killed worker's rows come back about this long after it died.",
    )
    outbox_max_attempts: int = Field(8, ge=1, le=50)
    outbox_backoff_base_seconds: float = Field(10.0, gt=0)
    outbox_backoff_max_seconds: float = Field(1800.0, gt=0)

    # Operations (app/ops): workers and beat write a heartbeat this often; one older than
    # heartbeat_stale_seconds no longer counts as live (/readyz, /metrics). The API e-mails the
    # admins once when no worker or no beat has been live for watchdog_silent_minutes (0: never).
    heartbeat_seconds: float = Field(15.0, ge=0.1, le=300)
    heartbeat_stale_seconds: float = Field(60.0, ge=1, le=3600)
    watchdog_silent_minutes: float = Field(5.0, ge=0, le=24 * 60)
    watchdog_check_seconds: float = Field(30.0, ge=0.1, le=3600)

    # Only honoured with env=test: a file holding a clock offset in seconds, read by every process.
    test_clock_file: Path | None = None

    # Applicant intake.
    sla_first_response_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    sla_due_soon_minutes: int = Field(15, ge=1, le=24 * 60)
    # Reminders to the expert and on-duty staff, minutes after arrival (JSON list); the
    # escalation to supervisors comes at the target itself.
    sla_reminder_minutes: list[int] = Field(default_factory=lambda: [30, 45])
    # Escalation chain: an unacknowledged level goes to the next after this long.
    escalation_ack_minutes: int = Field(15, ge=1, le=24 * 60)
    # How long a one-click acknowledgement link in an escalation e-mail stays valid.
    escalation_link_hours: int = Field(72, ge=1, le=24 * 30)
    ack_cap_per_address_per_day: int = Field(3, ge=1, le=1000)
    privacy_notice_version: str = Field("2026-11", min_length=1, max_length=32)
    max_request_body_bytes: int = Field(65536, ge=1024, le=10 * 1024 * 1024)
    request_link_window_hours: int = Field(24, ge=1, le=24 * 30)
    # Retention: requests that ended as spam, declined or withdrawn are erased this
    # many days after they ended; closed ones after the longer period. Open ones never.
    retention_ended_days: int = Field(90, ge=1, le=3650)
    retention_closed_days: int = Field(730, ge=1, le=36500)

    # Online meetings for consultations (app/meetings). None: "zoom" when the three
    # INTAKE_ZOOM_* credentials are set, else "link" (personal link or meeting_link_template).
    meeting_provider: Literal["zoom", "link", "fake"] | None = None
    zoom_account_id: str = ""
    zoom_client_id: str = ""
    zoom_client_secret: SecretStr | None = None
    zoom_webhook_secret_token: SecretStr | None = None
    zoom_api_base_url: str = "https://api.zoom.us"
    zoom_oauth_base_url: str = "https://zoom.us"
    zoom_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # Self-hosted meeting server, e.g. https://meet.example.org/{room}; the room is random.
    meeting_link_template: str = ""

    # WhatsApp Business Cloud API (app/whatsapp; README "Connecting a WhatsApp number"): the
    # system user's access token, the business number's phone number id, the Meta app's secret
    # (signs every webhook: X-Hub-Signature-256) and the verify token of the webhook handshake.
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str = ""
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = Field("v21.0", pattern=r"^v\d+\.\d+$")
    whatsapp_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # Media larger than this (WhatsApp allows up to 100 MB documents) is left out of the case.
    whatsapp_media_max_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    # Webhook events older than this are stale (Meta retries a failed delivery for up to 7 days).
    whatsapp_max_event_age_hours: int = Field(7 * 24, ge=1, le=30 * 24)

    # Experts, documents and routing.
    document_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    document_storage: Literal["db", "path"] = Field("db", description="where document bytes live")
    document_dir: Path | None = Field(
        None, description="storage 'path': default data_dir/documents"
    )
    offer_response_minutes: int = Field(15, ge=1, le=24 * 60)
    offer_sweep_seconds: float = Field(30.0, ge=1, le=3600)
    # Booking: a chosen time is held for its requester this long while they confirm.
    slot_hold_minutes: int = Field(5, ge=1, le=60)

    # Documents and reminders to requesters: minutes after submission at which the
    # sample report and CV go out if no expert accepted the request sooner.
    documents_wait_minutes: int = Field(20, ge=0, le=7 * 24 * 60)

    # Inbound e-mail: the webhook's shared secret (header X-Inbound-Secret), the daily
    # cap of acknowledgements per sender, the largest message whose attachments are kept, and
    # the IMAP mailbox polled every imap_poll_seconds when imap_host is set.
    inbound_webhook_secret: SecretStr | None = None
    # Bearer token a Prometheus scraper must send to /metrics; unset: /metrics is open.
    metrics_token: SecretStr | None = None
    inbound_ack_daily_cap: int = Field(3, ge=0, le=1000)
    inbound_max_message_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # Mail set aside (auto-replies, list mail, bounces, ...): its trace and encrypted copy are
    # deleted by the daily retention run this many days after it arrived.
    inbound_set_aside_days: int = Field(30, ge=1, le=3650)
    imap_host: str = ""
    imap_port: int = Field(993, ge=1, le=65535)
    imap_tls: Literal["none", "starttls", "ssl"] = "ssl"
    imap_user: str = ""
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_processed_folder: str = ""
    imap_poll_seconds: float = Field(60.0, ge=1, le=3600)
    imap_timeout_seconds: float = Field(30.0, gt=0, le=600)

    # Public pages.
    quick_exit_url: str = Field(
        "https://www.bbc.com/weather", description="the neutral site the quick-exit button opens"
    )
    # Honour X-Forwarded-Proto / X-Forwarded-For: only when the app is reachable through your
    # own proxy alone. Off, uvicorn ignores them too; on, uvicorn takes them from the peers in
    # its FORWARDED_ALLOW_IPS (default 127.0.0.1).
    trust_proxy_headers: bool = False
    form_min_fill_seconds: float = Field(3.0, ge=0, le=600)
    # Submissions (page and POST /api/v1/requests) per client address per window.
    submit_rate_limit: int = Field(20, ge=1, le=100000)
    submit_rate_window_minutes: int = Field(60, ge=1, le=24 * 60)

    @field_validator("sla_reminder_minutes")
    @classmethod
    def _check_reminder_minutes(cls, v: list[int]) -> list[int]:
        if any(m < 1 or m > 7 * 24 * 60 for m in v):
            raise ValueError("each reminder is 1 to 10080 minutes after arrival")
        return sorted(set(v))

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str) -> str:
        if not v:
            return v
        try:
            url = make_url(v)
        except ArgumentError as exc:
            raise ValueError("not a database URL (e.g. postgresql://user@host/db)") from exc
        backend = url.get_backend_name()
        if backend not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database '{backend}': use postgresql or sqlite")
        if backend == "postgresql" and url.get_driver_name() not in ("psycopg", "psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        elif backend == "postgresql" and url.get_driver_name() == "psycopg2":
            raise ValueError("use the psycopg (3) driver: postgresql+psycopg://")
        return url.render_as_string(hide_password=False)

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "sqla+", "amqp://", "memory://")):
            raise ValueError("must be redis://host:port/db (or sqla+sqlite:///file for embedded)")
        return v

    @field_validator("master_key")
    @classmethod
    def _check_master_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            parse_master_key(v.get_secret_value())
        return v

    @field_validator("old_master_keys")
    @classmethod
    def _check_old_keys(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            for part in v.get_secret_value().split(","):
                if part.strip():
                    parse_master_key(part)
        return v

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _public_url_follows_the_server(self) -> Settings:
        if not self.public_url:
            self.public_url = served_url(self.api_host, self.api_port)
            self._public_url_derived = True
        return self

    @model_validator(mode="after")
    def _password_hashing_is_strong(self) -> Settings:
        # OWASP's floor for argon2id: 19 MiB and 2 passes.
        if self.env != "test" and (
            self.password_hash_memory_kib < PASSWORD_HASH_MIN_MEMORY_KIB
            or self.password_hash_time_cost < PASSWORD_HASH_MIN_TIME_COST
        ):
            raise ValueError(
                f"{_env_name('password_hash_memory_kib')} must be at least "
                f"{PASSWORD_HASH_MIN_MEMORY_KIB} and {_env_name('password_hash_time_cost')} at "
                f"least {PASSWORD_HASH_MIN_TIME_COST} outside tests: weaker hashes are quick to "
                "crack from a stolen database"
            )
        return self

    @model_validator(mode="after")
    def _production_is_explicit(self) -> Settings:
        if self.env != "production":
            return self
        missing = []
        if not self.database_url.startswith("postgresql"):
            missing.append(("database_url", "production needs PostgreSQL (postgresql://...)"))
        if not self.broker_url.startswith(("redis://", "rediss://")):
            missing.append(("broker_url", "production needs Redis (redis://host:6379/0)"))
        if not self.smtp_host:
            missing.append(("smtp_host", "production sends mail over SMTP: set the host"))
        if self.master_key is None:
            missing.append(("master_key", "production must set its own master key"))
        if missing:
            raise ValueError("; ".join(f"{_env_name(f)}: {m}" for f, m in missing))
        return self

    @field_validator("quick_exit_url")
    @classmethod
    def _check_quick_exit_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL of a neutral site, e.g. a weather page")
        return v

    @field_validator("zoom_api_base_url", "zoom_oauth_base_url")
    @classmethod
    def _check_zoom_urls(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (e.g. https://api.zoom.us)")
        return v.rstrip("/")

    @field_validator("whatsapp_api_base_url")
    @classmethod
    def _check_whatsapp_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (e.g. https://graph.facebook.com)")
        return v.rstrip("/")

    @field_validator("meeting_link_template")
    @classmethod
    def _check_meeting_link_template(cls, v: str) -> str:
        if v and (not v.startswith(("http://", "https://")) or "{room}" not in v):
            raise ValueError(
                "must be an http(s) URL containing {room}, e.g. https://meet.example.org/{room}"
            )
        return v

    @model_validator(mode="after")
    def _meetings_are_configured(self) -> Settings:
        creds = {
            "zoom_account_id": bool(self.zoom_account_id),
            "zoom_client_id": bool(self.zoom_client_id),
            "zoom_client_secret": bool(
                self.zoom_client_secret and self.zoom_client_secret.get_secret_value()
            ),
        }
        missing = [_env_name(f) for f, present in creds.items() if not present]
        if self.meeting_provider == "zoom" and missing:
            raise ValueError(
                f"INTAKE_MEETING_PROVIDER=zoom needs the Zoom Server-to-Server OAuth app's "
                f"credentials: set {', '.join(missing)}"
            )
        if self.meeting_provider is None and missing and len(missing) < len(creds):
            raise ValueError(
                f"Zoom is half configured: set {', '.join(missing)} "
                "(or INTAKE_MEETING_PROVIDER=link to use links instead)"
            )
        return self

    _public_url_derived: bool = PrivateAttr(default=False)

    # Derived values -----------------------------------------------------------------------
    @property
    def public_url_is_derived(self) -> bool:
        """True when INTAKE_PUBLIC_URL is unset and links use the served host and port."""
        return self._public_url_derived

    def public_url_warning(self) -> str | None:
        """What to warn about at start-up when links are guessed from the served address."""
        if not self._public_url_derived:
            return None
        if self.env == "production":
            return (
                f"{_env_name('public_url')} is not set: production must set it to the address "
                f"people reach the service at; links in e-mails use {self.public_url} meanwhile"
            )
        return (
            f"{_env_name('public_url')} is not set: links in e-mails use {self.public_url} "
            f"(from {_env_name('api_host')}/{_env_name('api_port')}); set it when people reach "
            "the service at another address"
        )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'intake.sqlite3').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_document_dir(self) -> Path:
        return self.document_dir or self.data_dir / "documents"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def mail_backend(self) -> Literal["file", "smtp"]:
        return "smtp" if self.smtp_host else "file"

    @property
    def resolved_meeting_provider(self) -> Literal["zoom", "link", "fake"]:
        if self.meeting_provider is not None:
            return self.meeting_provider
        return "zoom" if self.zoom_account_id and self.zoom_client_id else "link"

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        return self.log_format or ("json" if self.env == "production" else "console")

    def describe(self) -> dict[str, Any]:
        """What the configuration resolves to, secrets masked (for `asylum-intake check`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            out[_env_name(name)] = value
        out[_env_name("database_url")] = mask_url(self.resolved_database_url)
        out[_env_name("broker_url")] = mask_url(self.resolved_broker_url)
        out["mail backend"] = self.mail_backend
        if self.master_key is None:
            out[_env_name("master_key")] = f"(generated, {self.data_dir / 'master.key'})"
        return out


def served_url(host: str, port: int) -> str:
    """The http base of a server bound to host:port; a wildcard bind is reached as localhost."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def mask_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def format_validation_error(exc: ValidationError) -> str:
    lines = ["Invalid configuration:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"  {_env_name(field)}: {msg}" if field else f"  {msg}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
