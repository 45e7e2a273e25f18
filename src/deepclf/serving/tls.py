"""TLS and mutual TLS for the edge server: TF Serving's ``--ssl_config_file`` and simple certificate flags.

TF Serving reads an ``SSLConfig`` text proto (``tensorflow_serving/config/ssl_config.proto``) whose strings are
PEM *text*, not file names::

    server_key: "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----"
    server_cert: "-----BEGIN CERTIFICATE-----\\n..."
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."      # the CA that signs client certificates
    client_verify: true                                 # mutual TLS: refuse clients without a valid certificate

It is parsed with ``text_format`` into ``tensorflow.serving.SSLConfig`` from the private pool of
``modelconfig.py``. As a deepclf convenience, a value that is not PEM text is read as a file path. The simple
flags take files: ``--ssl_cert server.pem --ssl_key server.key [--ssl_client_ca ca.pem]`` (a client CA turns
client verification on)::

    material = tls_material(config)          # None: plain gRPC
    material.grpc_credentials()              # grpc.ssl_server_credentials(...)
    material.ssl_context()                   # for the REST listener when rest_ssl=True

Certificates are checked when the server starts (``ssl.SSLContext.load_cert_chain``), so a key that does not
match its certificate, or a file that is not PEM, is a one-line ``UsageError`` instead of a failed handshake later.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepclf.errors import UsageError
from deepclf.fsutil import read_bytes_or_path

_PEM_MARK = b"-----BEGIN "


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of the server key and certificate chain, the client CA, and whether client certificates are
    required (mutual TLS)."""

    key: bytes
    cert: bytes
    client_ca: bytes | None = None
    client_verify: bool = False
    source: str = "TLS settings"

    def __post_init__(self) -> None:
        for what, value in (("server key", self.key), ("server certificate", self.cert)):
            if not value or _PEM_MARK not in value:
                raise UsageError(f"{self.source}: the {what} is not PEM text (no '-----BEGIN ...' line)")
        if self.client_ca is not None and _PEM_MARK not in self.client_ca:
            raise UsageError(f"{self.source}: the client CA is not PEM text (no '-----BEGIN ...' line)")
        if self.client_verify and not self.client_ca:
            raise UsageError(
                f"{self.source}: client_verify needs a CA to verify client certificates with "
                "(custom_ca / --ssl_client_ca)"
            )

    @property
    def mutual(self) -> bool:
        return self.client_verify

    def grpc_credentials(self) -> Any:
        """``grpc.ssl_server_credentials`` for these keys (client certificates required when ``client_verify``)."""
        import grpc

        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.client_ca if self.client_verify else None,
            require_client_auth=self.client_verify,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server ``SSLContext`` with the same keys (REST over HTTPS); also validates them."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain only reads files: write the PEMs to a private temporary folder for the call.
        with tempfile.TemporaryDirectory(prefix="deepclf-tls-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            for path, data in ((cert, self.cert), (key, self.key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                ctx.load_cert_chain(cert, key)
            except ssl.SSLError as exc:
                raise UsageError(
                    f"{self.source}: the server key and certificate are unusable together "
                    f"({exc.reason or exc}); is the key the certificate's?"
                ) from None
        if self.client_verify:
            assert self.client_ca is not None  # __post_init__ refuses client_verify without a CA
            try:
                ctx.load_verify_locations(cadata=self.client_ca.decode("ascii"))
            except (ssl.SSLError, UnicodeDecodeError) as exc:
                raise UsageError(f"{self.source}: the client CA is not a usable certificate ({exc})") from None
            ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def _pem_or_file(value: str, what: str, source: str) -> bytes:
    data = value.encode("utf-8")
    if _PEM_MARK in data or not value.strip():
        return data
    return read_bytes_or_path(value.strip(), f"the {what} named in {source}")


def parse_ssl_config(text: str, *, source: str = "<ssl config>") -> TlsMaterial:
    """An ``SSLConfig`` text proto (TF Serving's ``--ssl_config_file`` content) -> ``TlsMaterial``."""
    from deepclf.serving.modelconfig import parse_text_proto, ssl_config_class

    msg = parse_text_proto(ssl_config_class(), text, source=source, what="TF Serving SSLConfig (text format)")
    if not msg.server_key or not msg.server_cert:
        raise UsageError(f"{source}: an SSLConfig needs both server_key and server_cert (PEM text)")
    ca = _pem_or_file(msg.custom_ca, "custom_ca", source) if msg.custom_ca else None
    return TlsMaterial(
        key=_pem_or_file(msg.server_key, "server_key", source),
        cert=_pem_or_file(msg.server_cert, "server_cert", source),
        client_ca=ca,
        client_verify=bool(msg.client_verify),
        source=source,
    )


def load_ssl_config_file(path: str | os.PathLike[str]) -> TlsMaterial:
    """Read and parse ``--ssl_config_file``."""
    data = read_bytes_or_path(path, "the --ssl_config_file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--ssl_config_file {path} is not UTF-8 text") from None
    return parse_ssl_config(text, source=str(path))


def tls_material(config: Any) -> TlsMaterial | None:
    """The TLS settings of a ``ServerConfig`` (``ssl_config_file``, or ``ssl_cert``/``ssl_key``/``ssl_client_ca``);
    ``None`` when the server runs plain."""
    if config.ssl_config_file is not None:
        return load_ssl_config_file(config.ssl_config_file)
    if config.ssl_cert is None:
        return None
    ca = read_bytes_or_path(config.ssl_client_ca, "the --ssl_client_ca") if config.ssl_client_ca is not None else None
    return TlsMaterial(
        key=read_bytes_or_path(config.ssl_key, "the --ssl_key"),
        cert=read_bytes_or_path(config.ssl_cert, "the --ssl_cert"),
        client_ca=ca,
        client_verify=ca is not None,
        source="--ssl_cert/--ssl_key",
    )
