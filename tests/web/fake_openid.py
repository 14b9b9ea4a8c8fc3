"""A small OpenID provider on loopback for end-to-end sign-in tests: discovery, JWKS, authorize, token.

It does what Entra ID does in the authorisation code flow with PKCE, and checks what Entra ID checks: the
client, the redirect URI, the S256 code challenge against the verifier, single use of a code. The person
who "signs in" is whoever the test put in `user`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TENANT = "tenant-web"
CLIENT_ID = "avvik-web"


class FakeOpenIdProvider:
    """Serves the provider on 127.0.0.1 on a free port until `close`."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user: dict[str, Any] = {"oid": "oid-ada", "roles": ["adviser"], "name": "Ada Rådgiver"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path.endswith("/.well-known/openid-configuration"):
                    self._json(200, provider.discovery())
                elif url.path == "/keys":
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    self._json(200, {"keys": [{**jwk, "kid": "web-key", "use": "sig", "alg": "RS256"}]})
                elif url.path == "/authorize":
                    self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                answer = provider.token(form)
                self._json(200 if "id_token" in answer else 400, answer)

            def _authorize(self, query: dict[str, str]) -> None:
                if (query.get("response_type") != "code" or query.get("client_id") != CLIENT_ID
                        or query.get("code_challenge_method") != "S256" or not query.get("code_challenge")):
                    self._json(400, {"error": "invalid_request"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {"challenge": query["code_challenge"], "nonce": query.get("nonce"),
                                        "redirect_uri": query["redirect_uri"], "user": dict(provider.user)}
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?" + urlencode(
                    {"code": code, "state": query.get("state", "")}))
                self.end_headers()

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = f"{self.base}/{TENANT}/v2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token", "jwks_uri": f"{self.base}/keys",
                "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]}

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """Redeem a code once, checking client, redirect URI and the PKCE verifier."""
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code" or form.get("client_id") != CLIENT_ID:
            return {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return {"error": "invalid_grant"}
        now = int(time.time())
        user = grant["user"]
        id_token = jwt.encode({"iss": self.issuer, "aud": CLIENT_ID, "tid": TENANT, "oid": user["oid"],
                               "name": user["name"], "roles": user["roles"], "nonce": grant["nonce"],
                               "iat": now, "nbf": now - 5, "exp": now + 600},
                              self.key, algorithm="RS256", headers={"kid": "web-key"})
        return {"id_token": id_token, "access_token": "opaque", "token_type": "Bearer", "expires_in": 600}

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
