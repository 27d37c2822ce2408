"""One Settings object (env prefix PARLEY_). Built in create_app() and passed in; nothing else reads os.environ."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_RUNS = {
    "qa-demo": "worlds.qa_data_collection",
    "chat-demo": "worlds.chat_demo",
}

MAKE_TOKEN = 'Make one with: python -c "import secrets; print(secrets.token_urlsafe(24))"'


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", env_file=None, extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = ""  # default: SQLite (WAL) at {data_dir}/parley.db
    # Where this process listens (`make run`, `parley serve` and `parley run` bind here), and the address
    # workers' browsers reach; unset, it is the listening address (http://{host}:{port}).
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    # Which MTurk the HIT manager talks to: the built-in sandbox (default), MTurk's sandbox, or live.
    provider: Literal["builtin", "sandbox", "live"] = "builtin"
    # Runs started with the server: run id -> task module. Set to {} to start none.
    demo_runs: dict[str, str] = Field(default_factory=lambda: dict(DEMO_RUNS))
    token_ttl_s: float = 24 * 3600
    heartbeat_s: float = 10.0
    hello_timeout_s: float = 10.0
    max_frame_bytes: int = 64 * 1024
    max_message_chars: int = 5000
    # Per-connection flood limit: a burst of `rate_burst` frames, refilled at `rate_per_s`.
    rate_per_s: float = 10.0
    rate_burst: int = 30
    # The garbage collector's generation thresholds once the server has started ("" keeps Python's own).
    # Thousands of live sockets make each full collection long; collecting less often halved the relay's
    # CPU per message in the benchmark. A young generation of 200,000: at 10,000 workers every socket's
    # pending receive is young (renewed with each frame), so any young collection scans some 250,000
    # objects and pauses 90-250 ms; fewer of them took the steady p99 from 44-58 ms to 33 ms
    # (docs/performance.md).
    gc_thresholds: str = "200000,50,1000"
    # MTurk: endpoint override (default by provider), seconds between HIT manager passes, run ids to publish
    # at start-up (built-in or MTurk's sandbox only; live runs are published by `parley run --live`), and
    # their budget cap in USD (0 = no cap).
    mturk_endpoint_url: str = ""
    mturk_sync_s: float = 10.0
    mturk_publish: list[str] | None = None  # None: the demo runs, on the built-in sandbox only
    mturk_budget_usd: float = 0.0
    admin_token: str = ""
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Run ownership (server/ownership.py): a run's lease lasts `lease_s` and is renewed every third of it;
    # another instance takes a run over only after its lease lapsed. `instance_id` names this process in logs
    # and /healthz ("" picks host:pid:random).
    lease_s: float = 15.0
    instance_id: str = ""
    # Several instances (docs/deploy.md, "Scaling out"): the Redis that carries sockets and calls between
    # them ("" = one process, nothing shared), and the prefix of its channel names (one per deployment).
    redis_url: str = ""
    redis_prefix: str = "parley"
    # The address other instances reach this one at (the sandbox proxy, the CLI): "" is the listening
    # address, right on one machine; in containers, the container's own address (deploy/compose.yaml).
    instance_url: str = ""
    # The dead man's switch: HITs are published with this lifetime and extended by the run's owner while it
    # lives and publishes, so a server that dies leaves no HIT acceptable for longer than this.
    hit_lifetime_s: int = 20 * 60
    # Prolific (docs/prolific.md). The API: empty means Prolific's own (https://api.prolific.com/api/v1) once
    # a token is set, else the built-in emulator ({public_url}/sandbox/prolific/api/v1, served while the
    # provider is `builtin` and no Prolific is configured).
    # The token is sent as `Authorization: Token ...` (any value on the emulator). The budget counts Prolific's
    # service fee on rewards and bonuses and the VAT on that fee, at these rates: the defaults are the highest
    # Prolific publishes (docs/prolific.md says where); set your account's own.
    prolific_api_url: str = ""
    prolific_api_token: str = ""
    prolific_fee_percent: float = 42.8
    prolific_vat_percent: float = 20.0
    # Runs to recruit on the built-in Prolific at start-up, and their budget cap in the account's currency
    # (0 = no cap). Runs on Prolific's own API are planned by `parley run --provider prolific --live`.
    prolific_publish: list[str] = Field(default_factory=list)
    prolific_budget: float = 0.0

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if not self.public_url:
            self.public_url = self.listen_url
        if self.provider == "live" and not self.public_url.startswith("https://"):
            raise ValueError("PARLEY_PUBLIC_URL must be https:// when PARLEY_PROVIDER=live (MTurk frames HTTPS only)")
        if self.provider == "live" and len(self.admin_token) < 16:
            raise ValueError(f"PARLEY_ADMIN_TOKEN must be set (16+ characters) when PARLEY_PROVIDER=live. {MAKE_TOKEN}")
        if self.provider != "builtin" and self.admin_token and len(self.admin_token) < 16:
            # The dashboard is reachable and the server is not a local one: a short token is guessable.
            raise ValueError(
                f"PARLEY_ADMIN_TOKEN must be 16+ characters when PARLEY_PROVIDER={self.provider}. {MAKE_TOKEN}"
            )
        return self

    @property
    def listen_url(self) -> str:
        """The address this process listens on, as a client on this machine reaches it."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"

    @property
    def runs_to_publish(self) -> list[str]:
        if self.mturk_publish is not None:
            return list(self.mturk_publish)
        return list(self.demo_runs) if self.provider == "builtin" else []

    @property
    def sandbox_enabled(self) -> bool:
        return self.provider == "builtin"
