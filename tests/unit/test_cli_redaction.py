"""`subsidy up` and `stack up/status` print the stack's settings without secrets (issue 14, defect 8):
keys redacted, and a database URL's password too."""

from __future__ import annotations

from cli.main import _redacted, _without_password


def test_a_database_url_is_printed_without_its_password() -> None:
    env = {"DATABASE_URL": "postgresql://subsidy:s3cr%40t-pw@db.internal:5432/subsidy?sslmode=require",
           "TEMPORAL_PAYLOAD_KEYS": '{"k": "AAAA"}', "POSTGRES_PASSWORD": "pw-2", "TEMPORAL_ADDRESS": "127.0.0.1:7233"}
    shown = repr(_redacted(env))
    for secret in ("s3cr%40t-pw", "AAAA", "pw-2"):
        assert secret not in shown
    assert _redacted(env)["DATABASE_URL"] == "postgresql://subsidy:***@db.internal:5432/subsidy?sslmode=require"
    assert _redacted(env)["TEMPORAL_ADDRESS"] == "127.0.0.1:7233"
    assert _without_password("postgresql://postgres@127.0.0.1:5432/subsidy") == "postgresql://postgres@127.0.0.1:5432/subsidy"
