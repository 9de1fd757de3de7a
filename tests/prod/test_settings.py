"""The pool, timeout and shutdown settings read from the environment."""

from __future__ import annotations

import pytest

from service.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    for name in ("PATHPRO_DB_POOL_MIN", "PATHPRO_DB_POOL_MAX", "PATHPRO_DB_ACQUIRE_TIMEOUT",
                 "PATHPRO_DB_STATEMENT_TIMEOUT_MS", "PATHPRO_DB_CONNECT_TIMEOUT", "PATHPRO_REDIS_TIMEOUT",
                 "PATHPRO_SHUTDOWN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert (s.db_pool_min, s.db_pool_max, s.db_acquire_timeout, s.db_statement_timeout_ms,
            s.db_connect_timeout, s.redis_timeout, s.shutdown_timeout) == (2, 10, 2.0, 5000, 3.0, 0.5, 20.0)


def test_each_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("PATHPRO_DB_POOL_MIN", "1")
    monkeypatch.setenv("PATHPRO_DB_POOL_MAX", "4")
    monkeypatch.setenv("PATHPRO_DB_ACQUIRE_TIMEOUT", "0.25")
    monkeypatch.setenv("PATHPRO_DB_STATEMENT_TIMEOUT_MS", "750")
    monkeypatch.setenv("PATHPRO_DB_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("PATHPRO_REDIS_TIMEOUT", "0.2")
    monkeypatch.setenv("PATHPRO_SHUTDOWN_TIMEOUT", "7")
    s = Settings.from_env()
    assert (s.db_pool_min, s.db_pool_max, s.db_acquire_timeout, s.db_statement_timeout_ms,
            s.db_connect_timeout, s.redis_timeout, s.shutdown_timeout) == (1, 4, 0.25, 750, 1.5, 0.2, 7.0)


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_a_bad_timeout_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("PATHPRO_DB_ACQUIRE_TIMEOUT", value)
    with pytest.raises(SystemExit, match="PATHPRO_DB_ACQUIRE_TIMEOUT"):
        Settings.from_env()
