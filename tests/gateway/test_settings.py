"""Typed settings: file + environment, loud failures naming the key and the file."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.settings import SettingsError, load_settings


def write(tmp_path, text):
    path = tmp_path / "gateway.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_come_from_the_bundled_file():
    settings = load_settings(env={})
    assert settings.server.port == 8080
    assert settings.pipeline.reply_deadline == 4.5
    assert settings.redis.url == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_production_needs_the_token_secret():
    with pytest.raises(SettingsError, match="WEBCHAT_JWT_SECRET"):
        load_settings(env={"GATEWAY_SERVER_PRODUCTION": "true"})
    env = {"GATEWAY_SERVER_PRODUCTION": "true", "WEBCHAT_JWT_SECRET": "x" * 32, "GATEWAY_SMS_ENABLED": "false"}
    assert load_settings(env=env).server.production


def test_production_refuses_the_demo_sms_provider_and_an_unsigned_telegram_webhook():
    """The demo SMS provider prints one-time codes to the log: never in production."""
    env = {"GATEWAY_SERVER_PRODUCTION": "true", "WEBCHAT_JWT_SECRET": "x" * 32}
    with pytest.raises(SettingsError, match=r"sms\.provider is log"):
        load_settings(env=env)
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        load_settings(env={**env, "GATEWAY_SMS_PROVIDER": "twilio", "GATEWAY_SMS_TWILIO_ACCOUNT_SID": "AC1"})
    with pytest.raises(SettingsError, match=r"'sms\.provider' must be one of"):
        load_settings(env={"GATEWAY_SMS_PROVIDER": "carrier-pigeon"})
    env = {**env, "GATEWAY_SMS_ENABLED": "false", "TELEGRAM_BOT_TOKEN": "1:x"}
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings(env=env)
    assert load_settings(env={**env, "TELEGRAM_WEBHOOK_SECRET": "s"}).telegram.token == "1:x"


def test_environment_overrides_any_key():
    env = {
        "WEBCHAT_JWT_SECRET": "s" * 32,
        "GATEWAY_SERVER_PORT": "9001",
        "GATEWAY_PIPELINE_REPLY_DEADLINE": "3.5",
        "GATEWAY_WEBCHAT_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "GATEWAY_SERVER_PRODUCTION": "yes",
        "GATEWAY_SMS_PROVIDER": "http",
        "GATEWAY_SMS_HTTP_URL": "https://sms.example/send",
    }
    settings = load_settings(env=env)
    assert settings.server.port == 9001
    assert settings.pipeline.reply_deadline == 3.5
    assert settings.webchat.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.server.production is True


def test_secrets_come_from_the_environment_and_are_not_printed():
    settings = load_settings(env={"REDIS_URL": "redis://:hunter2@db:6379/0", "WEBCHAT_JWT_SECRET": "s3cret-value"})
    assert settings.redis.url.endswith("/0")
    assert "hunter2" not in repr(settings) and "s3cret-value" not in repr(settings)


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "pipeline:\n  reply_dedline: 3\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path, env={})
    assert "pipeline.reply_dedline" in str(info.value) and str(path) in str(info.value)


def test_unknown_section_and_wrong_type(tmp_path):
    with pytest.raises(SettingsError, match="unknown section 'telegramm'"):
        load_settings(write(tmp_path, "telegramm: {}\n"), env={})
    with pytest.raises(SettingsError, match=r"server\.port.*expected int"):
        load_settings(write(tmp_path, "server:\n  port: eighty\n"), env={})
    with pytest.raises(SettingsError, match="GATEWAY_SERVER_PORT"):
        load_settings(env={"GATEWAY_SERVER_PORT": "x"})


def test_a_secret_in_the_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="WEBCHAT_JWT_SECRET"):
        load_settings(write(tmp_path, "webchat:\n  token_secret: abc\n"), env={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yml", env={})


@pytest.mark.parametrize("prefix", ["", "gw*:", "gw?:", "gw[1]:", "gw\\:", "{gw}:", "gw :", "gw\n:", "网关:", "x" * 65])
def test_a_key_prefix_that_would_widen_scans_or_move_hash_tags_is_refused(prefix):
    # a glob character in the prefix would make every scan of the deployment (retention, key rotation, data-subject
    # requests) match other keys; a brace would become the Cluster hash tag of every key
    with pytest.raises(SettingsError, match=r"redis\.key_prefix"):
        load_settings(env={"GATEWAY_REDIS_KEY_PREFIX": prefix})


@pytest.mark.parametrize("prefix", ["gw:", "cs-prod:", "operator_a.gw/1:", "x" * 64])
def test_ordinary_key_prefixes_are_taken(prefix):
    assert load_settings(env={"GATEWAY_REDIS_KEY_PREFIX": prefix}).redis.key_prefix == prefix
