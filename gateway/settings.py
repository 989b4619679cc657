"""Typed, frozen settings from ``config/gateway.yml`` + environment variables.

Every key can be overridden by an environment variable named ``GATEWAY_<SECTION>_<KEY>`` in
upper case, e.g. ``GATEWAY_PIPELINE_REPLY_DEADLINE=3``; lists are comma-separated. Secrets are
read from the environment only (``REDIS_URL``, ``WEBCHAT_JWT_SECRET``) and never printed.
An unknown or mistyped key stops start-up with a message naming the key and the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gateway.yml"


KEY_PREFIX = re.compile(r"[A-Za-z0-9:_./-]{1,64}")  # what a deployment's Redis keys begin with


class SettingsError(ValueError):
    """Configuration that cannot be used; the message names the key and the file."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "var"
    public_url: str = ""  # how customers reach the gateway, for the start-up line; default http://host:port
    shutdown_timeout: float = 8.0
    header_timeout: float = 30.0  # seconds a request's head may take to arrive (slow clients: 408, closed)
    body_timeout: float = 30.0  # seconds its body may take once the gateway reads it (408)
    worker_timeout: float = 30.0  # --workers N: a worker whose event loop is silent this long is killed and restarted
    production: bool = False
    secret_key: str = field(default="", repr=False)  # from GATEWAY_SECRET_KEY; else a key file in data_dir
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-Proto/-For are believed
    metrics_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # who may read /metrics (production)
    metrics_token: str = field(default="", repr=False)  # from METRICS_TOKEN: a bearer token that also admits
    login_max_failures: int = 5  # failed agent sign-ins in a row on one account before it is locked
    login_max_failures_per_address: int = 20  # failed sign-ins from one client address before it is locked
    login_lockout: float = 15.0  # seconds of the first lockout; each further failure doubles it (at most 900)


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = field(default="", repr=False)  # from REDIS_URL; empty → embedded Redis under data_dir
    key_prefix: str = "gw:"
    appendfsync: str = "everysec"  # always | everysec | no
    wait_replicas: str = "auto"  # Cluster: replicas that must have a turn before it is answered (auto | 0 = off | n)
    wait_timeout_ms: int = 300  # how long a turn waits for them; past it, answered anyway and counted


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    reply_deadline: float = 4.5
    conversation_idle_timeout: int = 1800
    dedupe_ttl: int = 86400
    max_message_chars: int = 1000
    order_wait: float = 10.0  # how long a message waits for an earlier one of the same sender
    sender_rate: float = 0.5  # messages a second one sender may keep sending (0 = no limit); past it 429
    sender_burst: int = 20  # messages one sender may send at once before the rate applies


@dataclass(frozen=True, slots=True)
class WebchatSettings:
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 16384
    replay_limit: int = 200
    token_secret: str = field(default="", repr=False)  # from WEBCHAT_JWT_SECRET
    cookie_name: str = "gw_vid"
    max_token_age: int = 86400  # seconds: a customer token valid for longer (exp − iat, or exp − now) is refused
    session_cookie: str = "gw_rest_session"  # the REST channel's secret session (issued by a one-time-code binding)


@dataclass(frozen=True, slots=True)
class SocketioSettings:
    """Rasa's Socket.IO channel for the rasa-webchat widget (gateway/channels/socketio.py)."""

    enabled: bool = True
    path: str = "/socket.io/"  # the widget's socketPath
    user_message_evt: str = "user_uttered"
    bot_message_evt: str = "bot_uttered"
    session_persistence: bool = True  # a session id the widget keeps (a reload, a return) continues its conversation
    pending_limit: int = 200  # messages kept for a session with no socket open, delivered when it connects


@dataclass(frozen=True, slots=True)
class NLUSettings:
    config: str = ""  # an override file for nlu/config.yml
    data: tuple[str, ...] = ()  # extra Rasa-format training files or folders
    # the learning loop (gateway/nlu_review*.py, README "NLU learning loop")
    review_dir: str = ""  # the review file and retrained models; default <data_dir>/nlu-review
    review_threshold: float = 0.5  # a message whose top confidence is below this (or a fallback) is collected
    review_max: int = 5000  # samples waiting for review at most (the oldest make room)
    review_ttl_days: int = 30  # a sample not seen again for this long is dropped
    retrain_data: tuple[str, ...] = ()  # what retraining starts from; default the bundled data + nlu.data
    retrain_folds: int = 3  # cross-validation folds shown before a switch
    retrain_tolerance: float = 0.002  # CV noise: a new model this much worse (base accuracy) is still switched to


@dataclass(frozen=True, slots=True)
class BotSettings:
    backend: str = "demo"  # demo | http
    demo_data: str = ""  # the demo back end's data; default config/demo_bss.yml
    backend_url: str = ""  # for backend: http
    backend_auth: str = field(default="", repr=False)  # from BSS_AUTH_HEADER, e.g. "Authorization: Bearer …"
    backend_timeout: float = 2.0  # seconds per call
    backend_retries: int = 2  # extra attempts for reads (never for writes)
    circuit_failures: int = 5  # failures in a row that open the circuit
    circuit_reset: float = 30.0  # seconds the circuit stays open
    late_answer_timeout: float = 30.0  # how long an answer past the deadline may still arrive
    confirm_ttl: int = 120  # seconds a "please confirm" stays valid
    timezone: str = "Asia/Shanghai"
    sms_max_parts: int = 3
    otp_ttl: int = 300
    otp_attempts: int = 5
    otp_resend_after: int = 60
    binding_ttl_days: int = 180
    # Rasa as the bot (bots/rasa_bot.py, README "Use with Rasa")
    engine: str = "builtin"  # builtin | rasa
    rasa_url: str = ""  # for engine: rasa, e.g. http://rasa:5005
    rasa_token: str = field(default="", repr=False)  # from RASA_TOKEN: Rasa's --auth-token (tracker API only)
    rasa_timeout: float = 8.0  # seconds per call to Rasa
    rasa_handoff_payload: str = "handoff"  # a custom payload with this key true hands over ("" never)
    rasa_handoff_intent: str = ""  # e.g. human_handoff (read from the tracker: rasa run --enable-api)
    rasa_handoff_action: str = ""  # e.g. action_handoff (likewise)
    rasa_resume_message: str = "/restart"  # Rasa gets this when the bot resumes after people ("" nothing)


@dataclass(frozen=True, slots=True)
class SmsSettings:
    enabled: bool = True
    provider: str = "log"  # log (demo: printed, numbers masked) | twilio | http | smpp
    source: str = "10658000"  # the number or short code replies come from
    country_code: str = "86"  # numbers without one are in this country
    default_lang: str = "zh"  # language of replies to a short Latin keyword ("YE", "HELP")
    keywords: str = ""  # another keyword file; default config/sms_keywords.yml
    per_number_interval: float = 1.0  # seconds between two texts to one number
    max_per_second: int = 50  # all texts, all processes (the provider's TPS)
    max_attempts: int = 8  # sends before a text goes to the dead list
    backoff_base: float = 1.0  # first retry after up to this many seconds, doubling each time (max 5 minutes)
    webhook_secret: str = field(default="", repr=False)  # from SMS_WEBHOOK_SECRET: generic webhook's HMAC key
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_messaging_service_sid: str = ""  # instead of ``source``
    twilio_auth_token: str = field(default="", repr=False)  # from TWILIO_AUTH_TOKEN
    http_url: str = ""  # generic HTTP provider's send URL
    http_auth: str = field(default="", repr=False)  # from SMS_HTTP_AUTH_HEADER, e.g. "Authorization: Bearer …"
    smpp_host: str = ""
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = field(default="", repr=False)  # from SMPP_PASSWORD
    smpp_system_type: str = ""
    smpp_enquire_interval: float = 30.0  # seconds of silence before an enquire_link
    smpp_rebind_max: float = 30.0  # longest wait between re-bind attempts
    smpp_submit_timeout: float = 10.0  # seconds to wait for submit_sm_resp


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    enabled: bool = True  # starts when TELEGRAM_BOT_TOKEN is set
    token: str = field(default="", repr=False)  # from TELEGRAM_BOT_TOKEN
    webhook_secret: str = field(default="", repr=False)  # from TELEGRAM_WEBHOOK_SECRET
    api_base_url: str = "https://api.telegram.org/bot"
    set_webhook: bool = False  # call setWebhook with server.public_url at start-up
    per_chat_interval: float = 1.0  # Telegram: about one message a second per chat
    max_per_second: int = 30  # Telegram: 30 messages a second overall
    max_attempts: int = 8
    backoff_base: float = 1.0


@dataclass(frozen=True, slots=True)
class WechatSettings:
    enabled: bool = True  # starts when WECHAT_TOKEN is set
    appid: str = ""
    token: str = field(default="", repr=False)  # from WECHAT_TOKEN: the URL verification token
    app_secret: str = field(default="", repr=False)  # from WECHAT_APP_SECRET: for the access_token
    aes_key: str = field(default="", repr=False)  # from WECHAT_AES_KEY: EncodingAESKey (safe mode)
    previous_aes_key: str = field(default="", repr=False)  # from WECHAT_AES_KEY_PREVIOUS, during a rotation
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"
    passive_budget: float = 4.0  # seconds to answer in the response; then "success" and the API
    window_hours: float = 48.0  # customer-service messages are allowed this long after the customer wrote
    window_quota: int = 20  # customer-service messages per window (set to your account's limit)
    menu: str = ""  # menu CLICK keys → intents; default config/wechat_menu.yml
    max_per_second: int = 100
    max_attempts: int = 8
    backoff_base: float = 1.0


@dataclass(frozen=True, slots=True)
class WeiboSettings:
    enabled: bool = True  # starts when WEIBO_APP_SECRET is set
    uid: str = ""  # the account's Weibo uid (sender of replies)
    app_secret: str = field(default="", repr=False)  # from WEIBO_APP_SECRET: signs the pushes
    access_token: str = field(default="", repr=False)  # from WEIBO_ACCESS_TOKEN: for active replies
    api_base_url: str = "https://m.api.weibo.com/2/"
    passive_budget: float = 4.0  # Weibo waits 5 s for the passive reply, then pushes again
    menu: str = ""  # menu keys → intents; default config/wechat_menu.yml (the same keys)
    max_per_second: int = 20
    max_attempts: int = 8
    backoff_base: float = 1.0


@dataclass(frozen=True, slots=True)
class ForumSettings:
    enabled: bool = True  # Discourse starts when DISCOURSE_WEBHOOK_SECRET is set; the feed when feed_url is
    discourse_url: str = ""  # e.g. https://forum.example.com (replies are posted through its API)
    api_username: str = "support"  # the account replies are posted as (its own posts are ignored)
    api_key: str = field(default="", repr=False)  # from DISCOURSE_API_KEY
    webhook_secret: str = field(default="", repr=False)  # from DISCOURSE_WEBHOOK_SECRET
    ignore_users: tuple[str, ...] = ("system",)  # staff accounts whose posts are not answered
    feed_url: str = ""  # any other forum: an RSS/Atom feed of new posts, polled
    feed_interval: float = 60.0
    feed_answer_backlog: bool = False  # on the very first poll, posts already in the feed count as old
    max_per_second: int = 5
    max_attempts: int = 8
    backoff_base: float = 1.0


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    # the data keys and the index key (gateway/vault.py): GATEWAY_DATA_KEYS + GATEWAY_INDEX_KEY, else this key file
    # (GATEWAY_KEY_FILE overrides it), else $XDG_CONFIG_HOME/gateway/keys — never inside the data dir
    key_file: str = ""
    # marketing consent (gateway/consent.py): opt_out — allowed until the customer withdraws (SMS TD) — or opt_in
    marketing_default: str = "opt_out"
    # retention, days per kind of data (gateway/retention.py: TTLs where keys expire, a daily purge for the rest)
    conversations_days: int = 180  # conversation logs and meta, closed chats with people
    history_days: int = 400  # ended chats' episodes and the history indexes
    surveys_days: int = 400  # survey answers and the survey stream
    callbacks_days: int = 90  # callback requests and the messages customers left
    cases_days: int = 1095  # complaint cases, from their last change (closed ones only)
    broadcasts_days: int = 30  # incident broadcasts' recipient lists
    audit_days: int = 1095  # the audit trail


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    webchat: WebchatSettings = field(default_factory=WebchatSettings)
    socketio: SocketioSettings = field(default_factory=SocketioSettings)
    nlu: NLUSettings = field(default_factory=NLUSettings)
    bots: BotSettings = field(default_factory=BotSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    wechat: WechatSettings = field(default_factory=WechatSettings)
    weibo: WeiboSettings = field(default_factory=WeiboSettings)
    forum: ForumSettings = field(default_factory=ForumSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    source: str = field(default="(defaults)", compare=False)

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def public_url(self) -> str:
        return self.server.public_url or f"http://{self.server.host}:{self.server.port}"

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys changed: ``settings.replace(pipeline={"reply_deadline": 1})``."""
        changed = {name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()}
        return dataclasses.replace(self, **changed)


SECRETS = {
    ("redis", "url"): "REDIS_URL",
    ("server", "secret_key"): "GATEWAY_SECRET_KEY",
    ("server", "metrics_token"): "METRICS_TOKEN",
    ("webchat", "token_secret"): "WEBCHAT_JWT_SECRET",
    ("bots", "backend_auth"): "BSS_AUTH_HEADER",
    ("bots", "rasa_token"): "RASA_TOKEN",
    ("sms", "webhook_secret"): "SMS_WEBHOOK_SECRET",
    ("sms", "twilio_auth_token"): "TWILIO_AUTH_TOKEN",
    ("sms", "http_auth"): "SMS_HTTP_AUTH_HEADER",
    ("sms", "smpp_password"): "SMPP_PASSWORD",
    ("telegram", "token"): "TELEGRAM_BOT_TOKEN",
    ("telegram", "webhook_secret"): "TELEGRAM_WEBHOOK_SECRET",
    ("wechat", "token"): "WECHAT_TOKEN",
    ("wechat", "app_secret"): "WECHAT_APP_SECRET",
    ("wechat", "aes_key"): "WECHAT_AES_KEY",
    ("wechat", "previous_aes_key"): "WECHAT_AES_KEY_PREVIOUS",
    ("weibo", "app_secret"): "WEIBO_APP_SECRET",
    ("weibo", "access_token"): "WEIBO_ACCESS_TOKEN",
    ("forum", "api_key"): "DISCOURSE_API_KEY",
    ("forum", "webhook_secret"): "DISCOURSE_WEBHOOK_SECRET",
}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    origin = get_origin(kind)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise SettingsError(f"{where}: expected a list, got {value!r}")
        return tuple(
            _coerce(v.strip() if isinstance(v, str) else v, get_args(kind)[0], where) for v in items if v != ""
        )
    if origin in (Union, types.UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"1", "true", "yes", "on"}:
            return True
        if str(value).lower() in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{where}: expected true/false, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}") from None


def _section(cls: type, raw: Mapping[str, Any], name: str, source: str, env: Mapping[str, str]) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise SettingsError(
                f"{source}: unknown key '{name}.{key}'; known keys in '{name}': {', '.join(sorted(known))}"
            )
    values: dict[str, Any] = {}
    for key in known:
        secret_env = SECRETS.get((name, key))
        if secret_env:
            if key in raw:
                raise SettingsError(
                    f"{source}: '{name}.{key}' is a secret; set it with the {secret_env} environment variable"
                )
            if env.get(secret_env):
                values[key] = env[secret_env]
            continue
        env_name = f"GATEWAY_{name}_{key}".upper()
        if env_name in env:
            values[key] = _coerce(env[env_name], hints[key], f"environment variable {env_name}")
        elif key in raw:
            values[key] = _coerce(raw[key], hints[key], f"{source}: '{name}.{key}'")
    return cls(**values)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--data-dir``, ``--redis-url``: where a command-line tool finds the deployment."""
    parser.add_argument("--config", type=Path, help="configuration file or its folder (default config/gateway.yml)")
    parser.add_argument("--data-dir", help="runtime data directory, where the embedded Redis lives (default ./var)")
    parser.add_argument("--redis-url", help="external Redis (default: $REDIS_URL, else the embedded one)")


def cli_settings(args: argparse.Namespace) -> Settings:
    """The settings a command-line tool runs with: the configuration, then its ``--data-dir`` and ``--redis-url``."""
    overrides: dict[str, dict[str, object]] = {}
    if args.data_dir:
        overrides["server"] = {"data_dir": args.data_dir}
    if args.redis_url:
        overrides["redis"] = {"url": args.redis_url}
    return load_settings(args.config, **overrides)


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (default ``config/gateway.yml``; a folder means its ``gateway.yml``), apply the environment,
    then ``overrides``. The folder also holds routing.yml, sla.yml and canned.yml (``handoff/config.py``)."""
    env = os.environ if env is None else env
    path = Path(path) if path else DEFAULT_CONFIG
    if path.is_dir():
        path = path / "gateway.yml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SettingsError(f"{path}: configuration file not found") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping of sections at the top level")
    sections = {f.name: f for f in dataclasses.fields(Settings) if f.name != "source"}
    for name in raw:
        if name not in sections:
            raise SettingsError(f"{path}: unknown section '{name}'; known sections: {', '.join(sorted(sections))}")
    hints = get_type_hints(Settings)
    built = {}
    for name in sections:
        section_raw = raw.get(name) or {}
        if not isinstance(section_raw, dict):
            raise SettingsError(f"{path}: section '{name}' must be a mapping")
        built[name] = _section(hints[name], section_raw, name, str(path), env)
    settings = Settings(**built, source=str(path))
    settings = settings.replace(**overrides) if overrides else settings
    if settings.bots.backend not in {"demo", "http"}:
        raise SettingsError(f"{path}: 'bots.backend' must be demo or http, got {settings.bots.backend!r}")
    if settings.bots.backend == "http" and not settings.bots.backend_url:
        raise SettingsError(f"{path}: 'bots.backend' is http but 'bots.backend_url' is empty")
    if settings.bots.engine not in {"builtin", "rasa"}:
        raise SettingsError(f"{path}: 'bots.engine' must be builtin or rasa, got {settings.bots.engine!r}")
    if settings.bots.engine == "rasa" and not settings.bots.rasa_url:
        raise SettingsError(f"{path}: 'bots.engine' is rasa but 'bots.rasa_url' is empty")
    if settings.server.production and not settings.webchat.token_secret:
        raise SettingsError(f"{path}: server.production is true but WEBCHAT_JWT_SECRET is not set")
    if settings.pipeline.sender_rate < 0 or settings.pipeline.sender_burst < 1:
        raise SettingsError(f"{path}: 'pipeline.sender_rate' must be 0 (no limit) or more messages a second and "
                            f"'pipeline.sender_burst' at least 1, got {settings.pipeline.sender_rate} and "
                            f"{settings.pipeline.sender_burst}")  # fmt: skip
    for name in ("header_timeout", "body_timeout", "worker_timeout"):
        if not 0 < getattr(settings.server, name) <= 3600:
            raise SettingsError(f"{path}: 'server.{name}' must be seconds above 0 (at most 3600), got "
                                f"{getattr(settings.server, name)}")  # fmt: skip
    wait = settings.redis
    if not (wait.wait_replicas == "auto" or wait.wait_replicas.isdigit()) or wait.wait_timeout_ms < 1:
        raise SettingsError(f"{path}: 'redis.wait_replicas' must be auto or a number of replicas (0 = off) and "
                            f"'redis.wait_timeout_ms' at least 1, got {wait.wait_replicas!r} and "
                            f"{wait.wait_timeout_ms}")  # fmt: skip
    if not KEY_PREFIX.fullmatch(settings.redis.key_prefix):
        raise SettingsError(f"{path}: 'redis.key_prefix' must be 1–64 letters, digits or : _ . - / (no glob "
                            f"characters, no {{braces}}: they would widen every scan of the deployment's keys or "
                            f"move its Cluster hash tags), got {settings.redis.key_prefix!r}")  # fmt: skip
    check_privacy(settings.privacy, str(path))
    check_channels(settings, str(path))
    return settings


def check_privacy(privacy: PrivacySettings, where: str) -> None:
    if privacy.marketing_default not in {"opt_out", "opt_in"}:
        raise SettingsError(f"{where}: 'privacy.marketing_default' must be opt_out or opt_in, "
                            f"got {privacy.marketing_default!r}")  # fmt: skip
    for name in (f.name for f in dataclasses.fields(privacy) if f.name.endswith("_days")):
        if getattr(privacy, name) < 1:
            raise SettingsError(f"{where}: 'privacy.{name}' must be at least 1 (days)")


def check_channels(settings: Settings, where: str) -> None:
    """What each channel's provider needs, named by key, before anything starts."""
    sms, tg = settings.sms, settings.telegram
    if sms.enabled:
        needs = {
            "log": [],
            "twilio": [
                ("sms.twilio_account_sid", sms.twilio_account_sid),
                ("TWILIO_AUTH_TOKEN", sms.twilio_auth_token),
            ],
            "http": [("sms.http_url", sms.http_url)],
            "smpp": [("sms.smpp_host", sms.smpp_host), ("sms.smpp_system_id", sms.smpp_system_id)],
        }
        if sms.provider not in needs:
            raise SettingsError(f"{where}: 'sms.provider' must be one of {', '.join(needs)}, got {sms.provider!r}")
        missing = [name for name, value in needs[sms.provider] if not value]
        if missing:
            raise SettingsError(f"{where}: sms.provider is {sms.provider} but {', '.join(missing)} is not set")
        if sms.provider == "smpp" and (len(sms.smpp_password) > 8 or len(sms.smpp_system_id) > 15):
            raise SettingsError(f"{where}: SMPP allows at most 8 characters of SMPP_PASSWORD and 15 of "
                                "sms.smpp_system_id")  # fmt: skip
        if settings.server.production and sms.provider == "log":
            raise SettingsError(f"{where}: server.production is true but sms.provider is log (texts are not sent)")
    wx = settings.wechat
    if wx.enabled and wx.token:
        missing = [n for n, v in (("wechat.appid", wx.appid), ("WECHAT_APP_SECRET", wx.app_secret)) if not v]
        if missing:
            raise SettingsError(f"{where}: WECHAT_TOKEN is set but {', '.join(missing)} is not")
        for name, key in (("WECHAT_AES_KEY", wx.aes_key), ("WECHAT_AES_KEY_PREVIOUS", wx.previous_aes_key)):
            if key and len(key) != 43:
                raise SettingsError(f"{where}: {name} must be the 43-character EncodingAESKey")
    wb = settings.weibo
    if wb.enabled and wb.app_secret and not (wb.uid and wb.access_token):
        raise SettingsError(f"{where}: WEIBO_APP_SECRET is set but weibo.uid or WEIBO_ACCESS_TOKEN is not")
    fo = settings.forum
    if fo.enabled and fo.webhook_secret and not (fo.discourse_url and fo.api_key):
        raise SettingsError(f"{where}: DISCOURSE_WEBHOOK_SECRET is set but forum.discourse_url or DISCOURSE_API_KEY "
                            "is not (replies are posted through the Discourse API)")  # fmt: skip
    if tg.enabled and tg.token and settings.server.production and not tg.webhook_secret:
        raise SettingsError(f"{where}: server.production is true but TELEGRAM_WEBHOOK_SECRET is not set")
