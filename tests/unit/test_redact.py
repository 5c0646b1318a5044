"""One redaction for every connection string: URLs, libpq key/value strings, query parameters, log records."""

from __future__ import annotations

import logging

import pytest

from shelfcast.io.stores.postgres import PostgresStore
from shelfcast.redact import RedactingFilter, redact, split_credentials


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://admin:s3cretPW@host:5000/x", "http://admin:***@host:5000/x"),
        ("postgresql://u:s3cretPW@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("mysql+pymysql://u:s3c@retPW@h/db", "mysql+pymysql://u:***@h/db"),
        ("host=127.0.0.1 password=s3cretPW dbname=test", "host=127.0.0.1 password=*** dbname=test"),
        ("host=x password = 's3cret PW\\' x' dbname=y", "host=x password = *** dbname=y"),
        ("postgresql://u@h/db?password=s3cretPW&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("error at http://a:s3cretPW@h and sslpassword=s3cretPW", "error at http://a:***@h and sslpassword=***"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("http://host:5000/api", "http://host:5000/api"),
        ("postgresql://127.0.0.1:5432/test", "postgresql://127.0.0.1:5432/test"),
    ],
)
def test_redact_hides_every_spelling_of_a_password(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_also_hides_known_secrets_quoted_anywhere() -> None:
    assert redact('missing "=" after "s3cretPW" in connection info', "s3cretPW") == (
        'missing "=" after "***" in connection info'
    )


def test_split_credentials_decodes_the_user_info() -> None:
    assert split_credentials("http://ad%40min:s3c@ret@h:5/p") == ("http://h:5/p", "ad@min", "s3c@ret")
    assert split_credentials("http://h:5") == ("http://h:5", None, None)


def test_a_key_value_postgres_password_is_not_in_the_store_location() -> None:
    store = PostgresStore("host=127.0.0.1 port=9 dbname=test password=s3cretPW")
    assert "s3cretPW" not in store.location and "password=***" in store.location


def test_the_logging_filter_redacts_messages_and_their_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test_redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.WARNING):
        logger.warning("cannot reach %s", "http://admin:s3cretPW@host")
    assert "s3cretPW" not in caplog.text and "admin:***@host" in caplog.text
