"""Storage URLs with their secrets left out, for everything a sweep prints, logs or stores.

A database URL carries its password in the user info (`user:PW@`, `:PW@` with an empty user name)
or in a query parameter (`?password=PW`); either may also come back inside a driver's error
message. `redact(text, url)` covers both: every URL in `text` has its user-info password and its
secret query parameters shown as `***`, and every secret of `url` (as typed and percent-decoded) is
replaced wherever else it appears in `text`. The patterns work on the string as typed, not on a
parse of it: sqlalchemy's `make_url` splits `user:p@ss@host` at the first `@`, and a parser's view
is not what lands in a terminal. Torch-free and Optuna-free.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# scheme://user:PASSWORD@ : the password runs to the last "@" of the URL (an unescaped "@" in a
# password is taken as part of it, as libpq and a careful reader would)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s'\"]*):(?P<secret>[^\s'\"]*)@")
# ?password=..., &sslpassword=..., ;passwd=..., token=, secret=, pwd= (any case)
_QUERY = re.compile(r"(?P<head>[?&;](?:[^=&#\s'\"]*(?:pass|pwd|secret|token)[^=&#\s'\"]*)=)(?P<secret>[^&#\s'\"]*)",
                    re.IGNORECASE)
MIN_LITERAL = 3  # a shorter secret is masked only where it sits in a URL: replacing "ab" everywhere garbles text


def secrets(url: str) -> set[str]:
    """The secrets a storage URL carries: its password and secret query values, as typed and decoded."""
    found = {m.group("secret") for m in _USERINFO.finditer(url)} | {m.group("secret") for m in _QUERY.finditer(url)}
    return {s for v in found for s in (v, unquote(v)) if s}


def redact(text: str, url: str = "") -> str:
    """`text` fit to print, log or store: every URL's password and secret query values as ***, and
    `url`'s secrets masked wherever else they appear (a driver's error message may quote them)."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    out = _QUERY.sub(lambda m: f"{m.group('head')}{MASK}", out)
    for secret in sorted(secrets(url), key=len, reverse=True):
        if len(secret) >= MIN_LITERAL and secret != MASK:
            out = out.replace(secret, MASK)
    return out
