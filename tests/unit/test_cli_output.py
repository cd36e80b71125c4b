"""What the CLI prints about the stack carries no secret: URL passwords and keys are hidden
(issue 14 defect 8), and the next steps after `subsidy up` name the addresses a newcomer needs."""

from __future__ import annotations

from pathlib import Path

from cli.output import HIDDEN, next_steps, redact_url, redacted

ENV = {
    "DATABASE_URL": "postgresql://subsidy:s3cr3t-pw@127.0.0.1:5432/subsidy",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "OIDC_ISSUER": "http://127.0.0.1:8400",
    "TEMPORAL_NAMESPACE": "default",
    "WEBHOOK_KEYS": '{"gdzwfw": "k-123"}',
    "PERSONAL_DATA_KEYS": '{"k1": "abc"}',
}


def test_the_password_of_a_url_is_replaced_and_the_rest_kept() -> None:
    assert redact_url(ENV["DATABASE_URL"]) == "postgresql://subsidy:***@127.0.0.1:5432/subsidy"
    assert redact_url("postgres://u:p%40ss@db/x?sslmode=require") == "postgres://u:***@db/x?sslmode=require"
    assert redact_url("postgresql://db/x?user=u&password=pw&sslmode=require") == "postgresql://db/x?user=u&password=***&sslmode=require"
    assert redact_url("see postgresql://a:b@h/d and amqp://c:d@h2") == "see postgresql://a:***@h/d and amqp://c:***@h2"
    # Nothing to hide: unchanged.
    for plain in ("postgresql://subsidy@127.0.0.1/subsidy", "127.0.0.1:9092", "http://127.0.0.1:8400", "postgresql://u:@h/d"):
        assert redact_url(plain) == plain


def test_the_printed_settings_hold_no_secret() -> None:
    shown = redacted(ENV)
    assert shown["DATABASE_URL"] == "postgresql://subsidy:***@127.0.0.1:5432/subsidy"
    assert shown["WEBHOOK_KEYS"] == HIDDEN and shown["PERSONAL_DATA_KEYS"] == HIDDEN
    assert shown["KAFKA_BOOTSTRAP_SERVERS"] == ENV["KAFKA_BOOTSTRAP_SERVERS"]
    text = repr(shown)
    assert "s3cr3t-pw" not in text and "k-123" not in text and "abc" not in text


def test_the_next_steps_name_console_temporal_ui_demo_token_and_logs_and_no_secret(tmp_path: Path) -> None:
    lines = "\n".join(next_steps(ENV, {"intake": 1001, "review": 1002, "notify": 1003, "worker": 1004}, tmp_path, 7233))
    assert "http://127.0.0.1:1002/console/" in lines
    assert "development login (http://127.0.0.1:8400)" in lines
    assert "http://127.0.0.1:7233/namespaces/default/workflows" in lines
    assert f"subsidy demo --run-dir {tmp_path}" in lines and f"subsidy demo --drive --run-dir {tmp_path}" in lines
    assert "subsidy token" in lines and f"{tmp_path / 'services'}/" in lines
    assert "s3cr3t-pw" not in lines and "k-123" not in lines
