#!/usr/bin/env python3
"""Times a console page as an operator loads it: signs in (password, then the second factor,
enrolling it on a first sign-in as the console asks; with --create ROLE --as NAME, the user
signed in first, a primary business contact, adds NAME with ROLE through the users page and
NAME signs in in turn, with the same password), then loads PATH --times times on the
signed-in session, and prints each load's seconds (request sent to the last byte of the page
read) to standard error, one a line, and their median to standard output. --save FILE keeps
the last page loaded.

usage: console-page.py --base https://127.0.0.1:PORT --ca CA.pem --user NAME
                       --password-env VAR PATH [--times N] [--save FILE]
                       [--create ROLE --as NAME]

Only the Python standard library: TOTP is RFC 6238 (HMAC-SHA1, 6 digits, 30 s), as the
console's second factor is. The password is read from the environment, never an argument.
"""

import argparse
import base64
import hashlib
import hmac
import html
import http.client
import os
import re
import ssl
import statistics
import struct
import sys
import time
import urllib.parse


def totp(secret_b32: str, at: float) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at // 30)), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


class Session:
    def __init__(self, base: str, ca: str):
        url = urllib.parse.urlsplit(base)
        self.origin = base.rstrip("/")
        ctx = ssl.create_default_context(cafile=ca)
        # The development certificate names localhost.
        ctx.check_hostname = False
        self.conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
            headers["origin"] = self.origin
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        for v in resp.headers.get_all("set-cookie") or []:
            name, _, value = v.split(";", 1)[0].partition("=")
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return resp.status, text


def csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    if not m:
        sys.exit("console-page.py: no CSRF token on the page")
    return m.group(1)


def sign_in(s: Session, user: str, password: str) -> None:
    _, page = s.request("GET", "/sign-in")
    status, page = s.request(
        "POST", "/sign-in", {"csrf": csrf(page), "username": user, "password": password}
    )
    if status != 303:
        sys.exit(f"console-page.py: sign-in answered {status}")
    _, page = s.request("GET", "/sign-in/code")
    m = re.search(r'id="totp-secret">([^<]+)<', page)
    if not m:
        sys.exit("console-page.py: the user has a second factor this script did not enrol")
    code = totp(html.unescape(m.group(1)).replace(" ", ""), time.time())
    # A first enrolment answers with the recovery codes (200), a sign-in with a redirect.
    status, page = s.request("POST", "/sign-in/code", {"csrf": csrf(page), "code": code})
    if status not in (200, 303) or (status == 200 and "recovery codes" not in page):
        sys.exit(f"console-page.py: the second factor answered {status}")


def text_of(page: str) -> str:
    """A page's words, for an error."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:400]


def add_user(s: Session, name: str, role: str, password: str) -> None:
    _, page = s.request("GET", "/users")
    form = {
        "csrf": csrf(page),
        "username": name,
        "display_name": name,
        "email": "ops@example.invalid",
        "password": password,
        "holdernames": "",
        "role": role,
    }
    status, page = s.request("POST", "/users", form)
    if status != 303:
        sys.exit(f"console-page.py: adding {name} answered {status}: {text_of(page)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True)
    ap.add_argument("--times", type=int, default=5)
    ap.add_argument("--save")
    ap.add_argument("--create")
    ap.add_argument("--as", dest="as_user")
    ap.add_argument("path")
    a = ap.parse_args()
    password = os.environ[a.password_env]
    s = Session(a.base, a.ca)
    sign_in(s, a.user, password)
    if a.create:
        if not a.as_user:
            sys.exit("console-page.py: --create needs --as")
        add_user(s, a.as_user, a.create, password)
        s = Session(a.base, a.ca)
        sign_in(s, a.as_user, password)
    took = []
    for _ in range(a.times):
        t0 = time.perf_counter()
        status, page = s.request("GET", a.path)
        took.append(time.perf_counter() - t0)
        if status != 200:
            sys.exit(f"console-page.py: {a.path} answered {status}: {text_of(page)}")
        print(f"{took[-1]:.3f}", file=sys.stderr)
    if a.save:
        with open(a.save, "w") as f:
            f.write(page)
    print(f"{statistics.median(took):.3f}")


if __name__ == "__main__":
    main()
