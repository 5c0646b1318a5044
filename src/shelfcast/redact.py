"""One redaction for every connection string and every text that may hold one (messages, log lines, responses).

Secrets come in two spellings: a URL's user info (`http://admin:pw@host`,
`postgresql://u:pw@host/db`) and key/value pairs (libpq's
`host=h password=pw dbname=d`, a URL query's `?password=pw&...`). Both are
replaced by `***`, wherever they stand in the text, so a message built from a
library's error (which may quote the string it was given) is safe too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://user:password@  (the password may hold anything but `@` and whitespace; the last `@` ends it)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s@/]*(?:@[^\s@/]*)*)(?=@)")
# password=..., passwd=..., sslpassword=..., token=... as key/value pairs or URL query parameters,
# the value quoted ('...' with \' escapes, as libpq allows) or not (up to whitespace, `&` or `;`).
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:[a-z_]*password|passwd|pwd|secret|token|api_key)\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\")]+)",
    re.IGNORECASE,
)


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every password of a URL or key/value connection string replaced by `***`, and each of
    `secrets` wherever it stands (a library's error may quote a fragment of the string it could not parse)."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _KEY_VALUE.sub(lambda m: m["head"] + MASK, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """(the URL without its user info, user, password); the user info percent-decoded as URLs spell it."""
    from urllib.parse import unquote

    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, unquote(user) or None, unquote(password) if colon else None


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (its arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
