"""gRPC (and REST) over TLS and mutual TLS against the real edge server, with certificates made here
(``cryptography``).

Two TLS edge servers serve the session's model next to the plain ``edge`` fixture: ``tls_edge`` from
``--ssl_cert``/``--ssl_key`` files (server TLS), ``mtls_edge`` from a TF Serving ``--ssl_config_file`` (PEM text
inline, ``client_verify: true``). Both also serve REST over HTTPS (``rest_ssl``) to test ``RestClient``'s
``verify``/``cert``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.clients import (
    NO_RETRIES,
    AsyncGrpcClient,
    AsyncRestClient,
    ConnectError,
    GrpcClient,
    RestClient,
    TLSError,
)
from deepclf.preprocessing import preprocess_batch

from .conftest import MODEL, edge_config


@dataclass
class Pki:
    ca: bytes
    server_key: bytes
    server_cert: bytes
    client_key: bytes
    client_cert: bytes
    other_ca: bytes


def _pki() -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(k: Any) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def make_ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(ca_key: Any, ca_cert: Any, cn: str, usage: Any, sans: list[Any]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return pem_key(key), b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    ca_key, ca_cert = make_ca("deepclf test CA")
    _, other = make_ca("some other CA")
    skey, scert = leaf(
        ca_key,
        ca_cert,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    ckey, ccert = leaf(ca_key, ca_cert, "deepclf client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    pem = serialization.Encoding.PEM
    return Pki(ca_cert.public_bytes(pem), skey, scert, ckey, ccert, other.public_bytes(pem))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return _pki()


@pytest.fixture(scope="module")
def pem_files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    files = {}
    for name in ("ca", "server_key", "server_cert", "client_key", "client_cert", "other_ca"):
        files[name] = d / f"{name}.pem"
        files[name].write_bytes(getattr(pki, name))
    return files


def _text_proto_string(pem: bytes) -> str:
    return '"' + pem.decode().replace("\n", "\\n") + '"'


@pytest.fixture(scope="module")
def tls_edge(model_base: Path, pem_files: dict[str, Path]) -> Iterator[Any]:
    """The edge server with server TLS from ``--ssl_cert``/``--ssl_key`` files (gRPC and REST)."""
    from deepclf.serving import EdgeServer

    cfg = edge_config(
        model_base,
        threads=1,
        ssl_cert=str(pem_files["server_cert"]),
        ssl_key=str(pem_files["server_key"]),
        rest_ssl=True,
    )
    with EdgeServer(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def mtls_edge(model_base: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The edge server with mutual TLS from a TF Serving SSLConfig file (PEM text inline, client_verify)."""
    from deepclf.serving import EdgeServer

    config = tmp_path_factory.mktemp("ssl") / "ssl.config"
    config.write_text(
        f"server_key: {_text_proto_string(pki.server_key)}\n"
        f"server_cert: {_text_proto_string(pki.server_cert)}\n"
        f"custom_ca: {_text_proto_string(pki.ca)}\n"
        "client_verify: true\n"
    )
    with EdgeServer(edge_config(model_base, threads=1, ssl_config_file=str(config), rest_ssl=True)) as srv:
        yield srv


def test_tls_predict_matches_the_plain_edge_server(edge: Any, pki: Pki, tls_edge: Any, photos: list[str]) -> None:
    assert tls_edge.grpc_tls and not edge.grpc_tls and tls_edge.rest_url.startswith("https://")
    batch = preprocess_batch(photos[:4], (64, 64))
    port = tls_edge.grpc_port
    with (
        GrpcClient(f"grpcs://localhost:{port}", root_certificates=pki.ca, metadata={"x-api-key": "secret-1"}) as tls,
        GrpcClient(edge.grpc_target) as plain,
    ):
        assert tls.tls and not plain.tls
        out = tls.predict({"image": batch}, model=MODEL, version=1)
        np.testing.assert_array_equal(
            out["probabilities"], plain.predict({"image": batch}, model=MODEL, version=1)["probabilities"]
        )
        assert tls.status(MODEL).available_versions == [1, 2]
        assert tls.metadata(MODEL).input_size() == (64, 64)
        assert [c.index for c in tls.classify(photos[:4], model=MODEL)] == [int(i) for i in out["classes"]]


def test_tls_with_server_name_override_and_a_ca_path(pem_files: dict[str, Path], tls_edge: Any) -> None:
    # certificates may be given as paths; the IP address is not the name checked, "localhost" is
    with GrpcClient(
        f"127.0.0.1:{tls_edge.grpc_port}", tls=True, root_certificates=pem_files["ca"], server_name="localhost"
    ) as c:
        assert c.status(MODEL).available


def test_tls_with_an_untrusted_ca_fails_with_tls_error(pki: Pki, tls_edge: Any) -> None:
    with (
        GrpcClient(f"grpcs://localhost:{tls_edge.grpc_port}", root_certificates=pki.other_ca) as c,
        pytest.raises(TLSError),
    ):
        c.status(MODEL)  # not retried: a certificate does not fix itself


def test_a_plain_client_gets_no_answer_from_a_tls_server(tls_edge: Any) -> None:
    with (
        GrpcClient(f"grpc://localhost:{tls_edge.grpc_port}", retry=NO_RETRIES, timeout=5) as c,
        pytest.raises(ConnectError),
    ):
        c.status(MODEL)


def test_mutual_tls(pki: Pki, mtls_edge: Any, photos: list[str]) -> None:
    target = f"grpcs://localhost:{mtls_edge.grpc_port}"
    with GrpcClient(
        target, root_certificates=pki.ca, private_key=pki.client_key, certificate_chain=pki.client_cert
    ) as c:
        assert c.classify(photos[:2], model=MODEL, send="bytes")[0].score > 0
    with GrpcClient(target, root_certificates=pki.ca, retry=NO_RETRIES) as anon, pytest.raises(ConnectError):
        # The server refuses a client without a certificate. Under TLS 1.3 the client finishes its side of the
        # handshake first and only sees the connection closed, so this is a ConnectError, not always a TLSError.
        anon.status(MODEL)
    with (
        GrpcClient(
            target,
            root_certificates=pki.other_ca,
            private_key=pki.client_key,
            certificate_chain=pki.client_cert,
            retry=NO_RETRIES,
        ) as wrong_ca,
        pytest.raises(TLSError),
    ):
        wrong_ca.status(MODEL)


async def test_async_mutual_tls(pki: Pki, mtls_edge: Any) -> None:
    async with AsyncGrpcClient(
        f"grpcs://localhost:{mtls_edge.grpc_port}",
        root_certificates=pki.ca,
        private_key=pki.client_key,
        certificate_chain=pki.client_cert,
        metadata=[("x-trace", "t-1")],
    ) as c:
        assert (await c.status(MODEL)).available
        manifest = await c.manifest(MODEL)  # the deepclf_manifest extension works over TLS too
        assert manifest is not None and manifest.labels


def test_rest_over_https_verify_and_client_certificates(
    pem_files: dict[str, Path], tls_edge: Any, mtls_edge: Any, photos: list[str]
) -> None:
    tls_url = f"https://localhost:{tls_edge.rest_port}"
    with RestClient(tls_url, verify=pem_files["ca"]) as c:
        assert c.status(MODEL).available_versions == [1, 2]
        assert c.classify(photos[:2], model=MODEL)[0].score > 0
    with RestClient(tls_url, verify=pem_files["other_ca"], retry=NO_RETRIES) as c, pytest.raises(TLSError):
        c.status(MODEL)

    mtls_url = f"https://localhost:{mtls_edge.rest_port}"
    client_cert = (pem_files["client_cert"], pem_files["client_key"])
    with RestClient(mtls_url, verify=pem_files["ca"], cert=client_cert) as c:
        assert c.status(MODEL).available
    with RestClient(mtls_url, verify=pem_files["ca"], retry=NO_RETRIES) as anon, pytest.raises(ConnectError):
        anon.status(MODEL)  # no client certificate: the handshake (or the first read) fails


async def test_async_rest_over_mutual_tls(pem_files: dict[str, Path], mtls_edge: Any) -> None:
    async with AsyncRestClient(
        f"https://localhost:{mtls_edge.rest_port}",
        verify=pem_files["ca"],
        cert=(pem_files["client_cert"], pem_files["client_key"]),
    ) as c:
        assert (await c.status(MODEL)).available


def test_contradicting_tls_settings_are_refused(pki: Pki) -> None:
    from deepclf.errors import UsageError

    with pytest.raises(UsageError, match="contradict"):
        GrpcClient("grpc://localhost:1", root_certificates=pki.ca)
    with pytest.raises(UsageError, match="both private_key and certificate_chain"):
        GrpcClient("grpcs://localhost:1", private_key=pki.client_key)
