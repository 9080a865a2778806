"""A local HTTPS server that plays Slack, Teams, PagerDuty and a webhook receiver for the demo.

It serves TLS with a throwaway certificate for 127.0.0.1 (`ca_bundle` is its PEM), so the real
channel senders, which only post to https URLs and verify certificates, can be pointed at it
by setting REQUESTS_CA_BUNDLE. Each POST is recorded with its parsed JSON body; the webhook's
signature is checked with the key the demo put in its secret, as a real receiver would.

Endpoints: POST /slack, /teams, /pagerduty/v2/enqueue, /webhook. Anything else is a 404.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PATHS = {"/slack": "slack", "/teams": "teams", "/pagerduty/v2/enqueue": "pagerduty", "/webhook": "webhook"}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1, valid for a day; the certificate is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emberwatch demo receiver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "receiver.key", folder / "receiver.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class Received:
    channel: str
    body: Any
    headers: dict[str, str]
    signature_ok: bool | None = None


@dataclass
class AlertReceiver:
    hmac_key: bytes
    received: list[Received] = field(default_factory=list)

    def start(self) -> AlertReceiver:
        self._dir = tempfile.TemporaryDirectory(prefix="emberwatch-receiver-")
        key, cert = _self_signed(Path(self._dir.name))
        self.ca_bundle = str(cert)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                channel = PATHS.get(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if channel is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                record = Received(channel, json.loads(raw), dict(self.headers))
                if channel == "webhook":
                    from emberwatch.channels import verify

                    record.signature_ok = verify(
                        receiver.hmac_key,
                        self.headers.get("X-Emberwatch-Timestamp", ""),
                        raw,
                        self.headers.get("X-Emberwatch-Signature", ""),
                        now=time.time(),
                    )
                receiver.received.append(record)
                self.send_response(202 if channel == "pagerduty" else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success"}' if channel == "pagerduty" else b"ok")

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()
