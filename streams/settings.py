"""The one place that reads the environment (SPEC §5 settings), via pydantic-settings."""

from __future__ import annotations

import ssl
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.metrics import COVERAGE_TARGET


class Settings(BaseSettings):
    """Settings from `MUSTER_*` environment variables and a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="MUSTER_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers; the embedded broker listens here"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every muster process talks to Kafka: TLS, SASL, both"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="The SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)"
    )
    kafka_username: str = Field("", description="The SASL user")
    kafka_password: str = Field("", description="The SASL user's password", repr=False)
    kafka_ca_file: Path | None = Field(
        None, description="CA certificates Kafka's TLS certificate is checked against "
        "(default: the system's)"
    )  # fmt: skip
    clickhouse_url: str = Field(
        "",
        description="Store URL: empty for the embedded store under MUSTER_DATA_DIR, "
        "chdb:///abs/path, or http(s)://user:pass@host:8123/database for a ClickHouse server",
    )
    data_dir: Path = Field(Path("./.muster"), description="Embedded store and worker state")
    topic_prefix: str = Field("muster.", description="Prefix of every topic name")
    tz: str = Field("Asia/Shanghai", description="Time zone of 'today' (on_post_today)")
    max_shift_hours: float = Field(12, gt=0, description="Maximum shift length (SPEC §3)")
    # Not in SPEC §5: operational knobs with sane defaults.
    database: str = Field("muster", description="ClickHouse database name")
    coverage_target: float = Field(
        COVERAGE_TARGET,
        ge=0,
        le=1,
        description="Coverage the command centre expects: below it the screens show red",
    )
    events_partitions: int = Field(4, ge=1, description="Partitions of the events topic")
    store_port: int = Field(
        8123, ge=1, le=65535, description="`muster store`: port of its ClickHouse HTTP interface"
    )
    store_host: str = Field(
        "127.0.0.1", description="`muster store`: address it listens on (0.0.0.0: every one)"
    )
    worker_port: int = Field(6066, ge=1, le=65535, description="Worker HTTP port (queries)")
    worker_host: str = Field(
        "127.0.0.1",
        description="Address the worker's HTTP port listens on (0.0.0.0 in a container, where "
        "probes and other hosts reach it)",
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Replicas of every topic muster creates (events, sites, dlq, internal and "
        "table changelogs): 1 on the embedded broker, 3 on a Kafka cluster",
    )
    gateway_port: int = Field(8000, ge=1, le=65535, description="Ingest gateway HTTP port")
    ingest_tokens: Path | None = Field(
        None, description="The gateway's token file (default MUSTER_DATA_DIR/tokens.json)"
    )
    token: str = Field("", description="The gateway token `muster emit --url` sends")
    embedded: bool = Field(
        True, description="Tune Kafka client timeouts for the embedded single-node broker"
    )
    broker_storage: Literal["disk", "memory"] = Field(
        "disk",
        description="Where the embedded broker keeps topics: on disk under "
        "MUSTER_DATA_DIR/broker (kept between runs), or in memory (gone when it stops)",
    )

    @property
    def kafka_tls(self) -> ssl.SSLContext | None:
        """The TLS context for Kafka (SSL and SASL_SSL), or None."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        cafile = None if self.kafka_ca_file is None else str(self.kafka_ca_file)
        return ssl.create_default_context(cafile=cafile)

    def kafka_options(self) -> dict[str, Any]:
        """What kafka-python's clients need beyond the bootstrap servers to reach Kafka."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_username,
                "sasl_plain_password": self.kafka_password,
            }
        if (tls := self.kafka_tls) is not None:
            options["ssl_context"] = tls
        return options

    @field_validator("kafka_ca_file")
    @classmethod
    def _readable_ca(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"MUSTER_KAFKA_CA_FILE={str(value)!r} is not a file")
        return value

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"MUSTER_TZ={value!r} is not a known IANA time zone") from exc
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def max_shift(self) -> timedelta:
        return timedelta(hours=self.max_shift_hours)

    @property
    def store_url(self) -> str:
        """The ClickHouse DSN: MUSTER_CLICKHOUSE_URL, else the `muster store` serving the
        data dir, else the embedded chdb store in it (sinks/store.py)."""
        from sinks.store import store_url

        return store_url(self.clickhouse_url, self.data_dir)

    @property
    def store_is_embedded(self) -> bool:
        return self.store_url.startswith("chdb://")

    @property
    def tokens_path(self) -> Path:
        """Where the gateway's token hashes live (SPEC §7 `MUSTER_INGEST_TOKENS`)."""
        return self.ingest_tokens or self.data_dir / "tokens.json"

    def topic(self, name: str) -> str:
        """Full topic name: `events`, `sites`, `dlq`, or an internal one."""
        return f"{self.topic_prefix}{name}"
