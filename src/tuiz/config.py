"""Settings from the environment (the same names as the CLI flags)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-change-me"
"""The development default: public (it is in this file), so never good off this machine."""

MIN_JWT_SECRET_CHARS = 32  # Supabase's JWT secrets are at least this long


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False  # a name may resolve to anything: treat it as reachable from outside


class Settings(BaseSettings):
    """Every knob tuiz reads; defaults are the ones DESIGN §1 names."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    host: str = Field(default="127.0.0.1", alias="TUIZ_HOST")
    port: int = Field(default=8000, ge=0, le=65535, alias="TUIZ_PORT")
    jwt_secret: str = Field(default=DEV_JWT_SECRET, alias="TUIZ_JWT_SECRET")
    service_key: str | None = Field(default=None, alias="TUIZ_SERVICE_KEY")
    heartbeat_timeout_ms: int = Field(default=60_000, gt=0, alias="TUIZ_HEARTBEAT_TIMEOUT_MS")
    room_ttl_ms: int = Field(default=3_600_000, gt=0, alias="TUIZ_ROOM_TTL_MS")
    cleanup_interval_ms: int = Field(default=3_600_000, gt=0, alias="TUIZ_CLEANUP_INTERVAL_MS")
    stale_after_minutes: int = Field(default=5, gt=0, alias="TUIZ_STALE_AFTER_MINUTES")
    retention_days: int = Field(default=30, gt=0, alias="TUIZ_RETENTION_DAYS")
    log_events: bool = Field(default=True, alias="TUIZ_LOG_EVENTS")
    data_dir: Path = Field(default=Path(".tuiz"), alias="TUIZ_DATA_DIR")
    log_format: Literal["auto", "json", "console"] = Field(default="auto", alias="TUIZ_LOG_FORMAT")
    log_level: str = Field(default="info", alias="TUIZ_LOG_LEVEL")
    cors_origins: str = Field(default="*", alias="TUIZ_CORS_ORIGINS")
    store: Literal["postgres", "memory"] = Field(default="postgres", alias="TUIZ_STORE")
    trusted_proxies: str = Field(default="", alias="TUIZ_TRUSTED_PROXIES")
    rate_limit_per_sec: float = Field(default=20.0, gt=0, alias="TUIZ_RATE_LIMIT_PER_SEC")
    rate_limit_burst: float = Field(default=40.0, ge=1, alias="TUIZ_RATE_LIMIT_BURST")
    # Failed service-key and JWT attempts per client address and window: then 429.
    auth_fail_limit: int = Field(default=30, ge=1, alias="TUIZ_AUTH_FAIL_LIMIT")
    auth_fail_window_ms: int = Field(default=60_000, ge=100, alias="TUIZ_AUTH_FAIL_WINDOW_MS")
    rate_limit_disconnect_after: int = Field(
        default=100, ge=1, alias="TUIZ_RATE_LIMIT_DISCONNECT_AFTER"
    )
    # Per client address (behind TUIZ_TRUSTED_PROXIES); a per-minute rate of 0 turns one off.
    pin_lookup_limit_per_min: float = Field(
        default=600, ge=0, alias="TUIZ_PIN_LOOKUP_LIMIT_PER_MIN"
    )
    pin_lookup_limit_burst: float = Field(default=600, ge=1, alias="TUIZ_PIN_LOOKUP_LIMIT_BURST")
    pin_miss_limit_per_min: float = Field(default=30, ge=0, alias="TUIZ_PIN_MISS_LIMIT_PER_MIN")
    pin_miss_limit_burst: float = Field(default=30, ge=1, alias="TUIZ_PIN_MISS_LIMIT_BURST")
    join_limit_per_min: float = Field(default=600, ge=0, alias="TUIZ_JOIN_LIMIT_PER_MIN")
    join_limit_burst: float = Field(default=600, ge=1, alias="TUIZ_JOIN_LIMIT_BURST")
    create_limit_per_min: float = Field(default=10, ge=0, alias="TUIZ_CREATE_LIMIT_PER_MIN")
    create_limit_burst: float = Field(default=30, ge=1, alias="TUIZ_CREATE_LIMIT_BURST")
    max_message_bytes: int = Field(default=16_384, gt=0, alias="TUIZ_MAX_MESSAGE_BYTES")
    max_http_buffer_bytes: int = Field(default=100_000, gt=0, alias="TUIZ_MAX_HTTP_BUFFER_BYTES")
    # The largest valid quiz (100 questions, every field at its maximum, Japanese text,
    # JSON with \u escapes) is 4.0 MB; 6.1 MB with its URLs in Japanese too, sent raw.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0, alias="TUIZ_MAX_BODY_BYTES")
    header_timeout_ms: int = Field(default=10_000, gt=0, alias="TUIZ_HEADER_TIMEOUT_MS")
    body_timeout_ms: int = Field(default=60_000, gt=0, alias="TUIZ_BODY_TIMEOUT_MS")
    ping_interval_ms: int = Field(default=25_000, ge=1000, alias="TUIZ_PING_INTERVAL_MS")
    ping_timeout_ms: int = Field(default=20_000, ge=100, alias="TUIZ_PING_TIMEOUT_MS")
    native_websocket: bool = Field(default=True, alias="TUIZ_NATIVE_WEBSOCKET")
    send_buffer_limit_bytes: int = Field(
        default=1_048_576, ge=1024, alias="TUIZ_SEND_BUFFER_LIMIT_BYTES"
    )
    heartbeat_flush_ms: int = Field(default=1000, gt=0, alias="TUIZ_HEARTBEAT_FLUSH_MS")
    host_grace_ms: int = Field(default=30_000, ge=0, alias="TUIZ_HOST_GRACE_MS")
    finished_game_ttl_ms: int = Field(default=600_000, gt=0, alias="TUIZ_FINISHED_GAME_TTL_MS")
    gc_gen0_threshold: int = Field(default=50_000, ge=700, alias="TUIZ_GC_GEN0_THRESHOLD")
    game_lease_ms: int = Field(default=15_000, ge=1000, alias="TUIZ_GAME_LEASE_MS")
    # Cluster (with REDIS_URL): how long a command forwarded to a game's owner may take (an
    # owner that died is noticed within half a second; a busy one is waited for: a command
    # refused as too slow may still be applied), and this process's tag in Engine.IO session
    # ids (the load balancer routes a session by it).
    forward_timeout_ms: int = Field(default=30_000, ge=100, alias="TUIZ_FORWARD_TIMEOUT_MS")
    node: str = Field(default="", pattern=r"^[a-z0-9]{0,16}$", alias="TUIZ_NODE")
    migrate_on_start: bool = Field(default=True, alias="TUIZ_MIGRATE_ON_START")
    # Per pool; a process has two (the REST API's and the live layer's, docs/deploy.md).
    db_pool_max: int = Field(default=10, gt=0, alias="TUIZ_DB_POOL_MAX")
    # Every wait on PostgreSQL is bounded: while it is away, callers get UNAVAILABLE, not a hang.
    db_acquire_timeout_ms: int = Field(default=5000, ge=100, alias="TUIZ_DB_ACQUIRE_TIMEOUT_MS")
    db_query_timeout_ms: int = Field(default=30_000, ge=100, alias="TUIZ_DB_QUERY_TIMEOUT_MS")
    # SIGTERM: sockets drained, the log flushed and the process gone within this time.
    drain_timeout_ms: int = Field(default=10_000, ge=1000, alias="TUIZ_DRAIN_TIMEOUT_MS")
    load_sample: bool = Field(default=True, alias="TUIZ_LOAD_SAMPLE")  # sample quiz at start
    access_token_ttl_s: int = Field(default=3600, ge=60, alias="TUIZ_ACCESS_TOKEN_TTL_S")
    refresh_token_ttl_s: int = Field(default=2_592_000, ge=60, alias="TUIZ_REFRESH_TOKEN_TTL_S")
    login_max_failures: int = Field(default=5, ge=1, alias="TUIZ_LOGIN_MAX_FAILURES")
    login_max_per_ip: int = Field(default=30, ge=1, alias="TUIZ_LOGIN_MAX_PER_IP")
    login_window_s: int = Field(default=900, ge=1, alias="TUIZ_LOGIN_WINDOW_S")
    max_upload_bytes: int = Field(default=10_485_760, ge=1024, alias="TUIZ_MAX_UPLOAD_BYTES")
    public_url: str | None = Field(default=None, alias="TUIZ_PUBLIC_URL")

    def jwt_secret_problem(self) -> str | None:
        """Why `jwt_secret` must not be used where others can connect, or None."""
        if self.jwt_secret == DEV_JWT_SECRET:
            return "TUIZ_JWT_SECRET is not set: the development default is public"
        if len(self.jwt_secret) < MIN_JWT_SECRET_CHARS:
            return f"TUIZ_JWT_SECRET is shorter than {MIN_JWT_SECRET_CHARS} characters"
        return None

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        """Peers whose X-Forwarded-For is believed (addresses or CIDR ranges)."""
        return [
            ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        ]

    @property
    def cors_origin_list(self) -> list[str] | str:
        """`*` means any origin; otherwise a comma-separated list."""
        if self.cors_origins.strip() == "*":
            return "*"
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
