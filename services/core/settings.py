"""Typed settings, read once at start-up. Each has a CHARGELEDGER_* environment variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .log.kafka_topics import prefix_problem
from .zones import zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARGELEDGER_", extra="ignore")

    data_dir: Path = Field(
        Path(".chargeledger"),
        description="Where the embedded PostgreSQL keeps its data (CHARGELEDGER_DATA_DIR).",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL DSN; when unset an embedded server runs under data_dir "
        "(CHARGELEDGER_DATABASE_URL).",
    )
    log: str = Field(
        "postgres",
        description="Event log: 'postgres' or 'kafka://HOST:PORT' (CHARGELEDGER_LOG).",
    )
    ocpp_host: str = Field(
        "0.0.0.0",
        description="Address the OCPP port listens on; all interfaces by default, since stations"
        " are on the network (CHARGELEDGER_OCPP_HOST).",
    )
    ocpp_port: int = Field(9000, description="OCPP WebSocket port (CHARGELEDGER_OCPP_PORT).")
    http_host: str = Field(
        "127.0.0.1",
        description="Address the HTTP API listens on; this machine only by default"
        " (CHARGELEDGER_HTTP_HOST).",
    )
    http_port: int = Field(8080, description="HTTP API port (CHARGELEDGER_HTTP_PORT).")
    tariff: Path | None = Field(
        None,
        description="OCPI 2.2.1 Tariff JSON used as the default tariff; the bundled sample "
        "tariff when unset (CHARGELEDGER_TARIFF).",
    )
    gateway_id: str | None = Field(
        None, description="Name of this gateway process in logged frames; hostname:pid if unset."
    )
    heartbeat_interval_s: int = Field(300, ge=1, description="Interval sent in BootNotification.")
    log_partitions: int = Field(
        8,
        ge=1,
        le=1024,
        description="Partitions per stream, on either log; fixed when the stream is created:"
        " a PostgreSQL log or a Kafka topic with another number is refused at start-up"
        " (CHARGELEDGER_LOG_PARTITIONS).",
    )
    kafka_replication_factor: int = Field(
        1,
        ge=1,
        description="Replicas of each Kafka topic ChargeLedger creates; at most the number of"
        " brokers, and existing topics must have at least as many"
        " (CHARGELEDGER_KAFKA_REPLICATION_FACTOR).",
    )
    kafka_min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of the Kafka topics ChargeLedger creates: an append"
        " (acks=all) is confirmed once this many replicas have it; at most the replication"
        " factor; unset: the broker's default (CHARGELEDGER_KAFKA_MIN_INSYNC_REPLICAS).",
    )
    kafka_topic_prefix: str = Field(
        "",
        description="Put before every Kafka topic name and consumer group id, so that several"
        " deployments share one cluster, e.g. 'site-a.' (CHARGELEDGER_KAFKA_TOPIC_PREFIX).",
    )
    max_frame_bytes: int = Field(
        1 << 20, ge=1024, description="Frames above this size are rejected (logged, answered)."
    )
    max_request_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="HTTP API request bodies above this size are refused with 413, counted while"
        " they arrive (CHARGELEDGER_MAX_REQUEST_BODY_BYTES).",
    )
    websocket_compression: Literal["deflate", "off"] = Field(
        "deflate",
        description="permessage-deflate for stations that offer it, with 512-byte windows"
        " (about 5 KiB a connection), or off: every station then sends uncompressed"
        " (CHARGELEDGER_WEBSOCKET_COMPRESSION).",
    )
    rate_limit_per_s: float = Field(
        50.0, gt=0, description="Frames a connection may send per second, sustained."
    )
    rate_limit_burst: int = Field(200, ge=1, description="Frames a connection may send at once.")
    invoice_issuer: str = Field("CL", description="Prefix of invoice numbers.")
    timezone: str = Field(
        "UTC",
        description="The stations' time zone (IANA name), for tariff restrictions on time of"
        " day and day of week (CHARGELEDGER_TIMEZONE).",
    )
    processor_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        le=64,
        description="Worker processes that run the processors on the embedded runtime"
        " (`up`, `replay`), each on its share of the partitions: one per core by default; 0"
        " runs them in the main process (CHARGELEDGER_PROCESSOR_WORKERS).",
    )
    processor_stuck_after_s: float = Field(
        60.0,
        gt=0,
        description="A processor whose batches have kept failing this long, or that has been on"
        " one batch this long, is stuck: /readyz answers 503"
        " (CHARGELEDGER_PROCESSOR_STUCK_AFTER_S).",
    )
    database_restart_give_up_s: float = Field(
        60.0,
        gt=0,
        description="How long ChargeLedger tries to start its embedded PostgreSQL again after it"
        " stopped before it gives up and exits with the reason"
        " (CHARGELEDGER_DATABASE_RESTART_GIVE_UP_S).",
    )
    transaction_id_lease_size: int = Field(
        100, ge=1, description="Transaction ids a gateway leases from PostgreSQL at a time."
    )
    gateway_lease_s: float = Field(
        15.0,
        ge=1,
        le=3600,
        description="A gateway's presence lease in PostgreSQL, renewed every third of it; when"
        " it runs out (the gateway was killed or lost PostgreSQL), another gateway closes that"
        " gateway's connections in the log (CHARGELEDGER_GATEWAY_LEASE_S).",
    )

    api_auth: bool = Field(
        True,
        description="Every /api/v1 request needs an API token with a role that may make it;"
        " off (--no-api-auth) checks nothing, for trials and tests (CHARGELEDGER_API_AUTH).",
    )
    session_hours: float = Field(
        12.0,
        gt=0,
        le=24 * 30,
        description="How long a console login lasts (CHARGELEDGER_SESSION_HOURS).",
    )
    session_cookie_secure: bool = Field(
        True,
        description="Mark the session cookie Secure: browsers send it only over HTTPS (and to"
        " localhost); off only behind no TLS on a trusted network"
        " (CHARGELEDGER_SESSION_COOKIE_SECURE).",
    )
    metrics_auth: bool = Field(
        False,
        description="/metrics needs an API token too; off: open, like /healthz and /readyz"
        " (CHARGELEDGER_METRICS_AUTH).",
    )

    unknown_stations: Literal["accept", "pending", "reject"] = Field(
        "accept",
        description="BootNotification answer for stations not in the registry: accept (trials),"
        " pending or reject (CHARGELEDGER_UNKNOWN_STATIONS).",
    )
    unknown_tokens: Literal["accept", "reject"] = Field(
        "accept",
        description="Id tokens not in the registry: accept (trials) or reject (production)"
        " (CHARGELEDGER_UNKNOWN_TOKENS).",
    )
    token_cache_ttl_s: float = Field(
        30.0, ge=0, description="How long a gateway trusts what it read about an id token."
    )
    boot_retry_interval_s: int = Field(
        60, ge=0, description="Interval sent with a Pending or Rejected BootNotification answer."
    )
    security_profile: int = Field(
        0,
        ge=0,
        le=3,
        description="OCPP security profile of the OCPP port: 0 none, 1 HTTP Basic auth, 2 TLS +"
        " Basic auth, 3 mutual TLS (CHARGELEDGER_SECURITY_PROFILE).",
    )
    tls_cert_file: Path | None = Field(None, description="Server certificate (PEM), profiles 2-3.")
    tls_key_file: Path | None = Field(None, description="Server private key (PEM), profiles 2-3.")
    tls_client_ca_file: Path | None = Field(
        None, description="CA (PEM) that signs station certificates, profile 3."
    )
    csms_ca_cert_file: Path | None = Field(
        None,
        description="CA certificate (PEM) with which the gateway signs the CSRs stations send in"
        " SignCertificate; unset: SignCertificate is Rejected (CHARGELEDGER_CSMS_CA_CERT_FILE).",
    )
    csms_ca_key_file: Path | None = Field(
        None,
        description="That CA's private key (PEM, unencrypted) (CHARGELEDGER_CSMS_CA_KEY_FILE).",
    )

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.security_profile >= 2 and (self.tls_cert_file is None or self.tls_key_file is None):
            raise ValueError(
                f"security profile {self.security_profile} needs a server certificate and key"
                " (--tls-cert and --tls-key, or CHARGELEDGER_TLS_CERT_FILE and"
                " CHARGELEDGER_TLS_KEY_FILE)"
            )
        if (self.csms_ca_cert_file is None) != (self.csms_ca_key_file is None):
            raise ValueError(
                "signing station certificates needs both the CA certificate and its key"
                " (--csms-ca-cert and --csms-ca-key)"
            )
        if self.security_profile == 3 and self.tls_client_ca_file is None:
            raise ValueError(
                "security profile 3 needs the CA of the stations' certificates (--tls-client-ca"
                " or CHARGELEDGER_TLS_CLIENT_CA_FILE)"
            )
        return self

    @model_validator(mode="after")
    def _check_kafka(self) -> Settings:
        replicas, in_sync = self.kafka_replication_factor, self.kafka_min_insync_replicas
        if in_sync is not None and in_sync > replicas:
            raise ValueError(
                f"kafka_min_insync_replicas is {in_sync}, more than kafka_replication_factor"
                f" {replicas}: no append could be acknowledged; set --kafka-min-insync-replicas"
                f" to at most {replicas}"
            )
        return self

    @field_validator("kafka_topic_prefix")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        problem = prefix_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        zone(value)  # UnknownTimeZone is a ValueError, which pydantic reports
        return value

    @field_validator("log")
    @classmethod
    def _check_log(cls, value: str) -> str:
        if value == "postgres" or (value.startswith("kafka://") and len(value) > len("kafka://")):
            return value
        raise ValueError("log must be 'postgres' or 'kafka://HOST:PORT'")

    @property
    def kafka_bootstrap(self) -> str | None:
        return self.log.removeprefix("kafka://") if self.log.startswith("kafka://") else None
