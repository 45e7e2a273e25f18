"""gRPC over TLS and mutual TLS, with certificates made here (``cryptography``).

The edge server has no TLS option yet, so the server here is a real ``grpc.server`` with a TLS port whose generic
handlers (``deepclf.protocol.rpc``) call the running edge server's serving core: the same Predict, metadata and
status code paths and the same real LiteRT runner, behind TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest

from deepclf import protocol as P
from deepclf.clients import NO_RETRIES, AsyncGrpcClient, ConnectError, GrpcClient, TLSError
from deepclf.preprocessing import preprocess_batch

from .conftest import MODEL


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

    now = dt.datetime.now(dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(k: Any) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def make_ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def leaf(ca_key: Any, ca_cert: Any, cn: str, usage: Any, sans: list[Any]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return pem_key(key), b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    ca_key, ca_cert = make_ca("deepclf test CA")
    _, other = make_ca("some other CA")
    skey, scert = leaf(ca_key, ca_cert, "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
                       [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    ckey, ccert = leaf(ca_key, ca_cert, "deepclf client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    pem = serialization.Encoding.PEM
    return Pki(ca_cert.public_bytes(pem), skey, scert, ckey, ccert, other.public_bytes(pem))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return _pki()


SEEN_METADATA: list[dict[str, str]] = []


def _tls_server(edge: Any, pki: Pki, *, mutual: bool) -> tuple[Any, int]:
    from deepclf.serving.core import CallInfo

    core = edge.core

    def wrap(fn: Any) -> Any:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            SEEN_METADATA.append(dict(context.invocation_metadata()))
            try:
                return fn(request, CallInfo())
            except Exception as exc:  # noqa: BLE001 - every error becomes its status, as in the edge server
                context.abort(P.grpc_code_for(exc), str(P.from_exception(exc)))

        return handle

    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([
        P.generic_handler(P.PREDICTION_SERVICE, {"Predict": wrap(core.grpc_predict),
                                                 "GetModelMetadata": wrap(core.grpc_metadata)}),
        P.generic_handler(P.MODEL_SERVICE, {"GetModelStatus": wrap(core.grpc_status)}),
    ])
    creds = grpc.ssl_server_credentials([(pki.server_key, pki.server_cert)],
                                        root_certificates=pki.ca if mutual else None,
                                        require_client_auth=mutual)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port


@pytest.fixture(scope="module")
def tls_port(edge: Any, pki: Pki) -> Iterator[int]:
    server, port = _tls_server(edge, pki, mutual=False)
    yield port
    server.stop(0)


@pytest.fixture(scope="module")
def mtls_port(edge: Any, pki: Pki) -> Iterator[int]:
    server, port = _tls_server(edge, pki, mutual=True)
    yield port
    server.stop(0)


def test_tls_predict_matches_the_plain_edge_server(edge: Any, pki: Pki, tls_port: int, photos: list[str]) -> None:
    batch = preprocess_batch(photos[:4], (64, 64))
    with GrpcClient(f"grpcs://localhost:{tls_port}", root_certificates=pki.ca,
                    metadata={"x-api-key": "secret-1"}) as tls, GrpcClient(edge.grpc_target) as plain:
        assert tls.tls and not plain.tls
        out = tls.predict({"image": batch}, model=MODEL, version=1)
        np.testing.assert_array_equal(out["probabilities"],
                                      plain.predict({"image": batch}, model=MODEL, version=1)["probabilities"])
        assert tls.status(MODEL).available_versions == [1, 2]
        assert tls.metadata(MODEL).input_size() == (64, 64)
        assert [c.index for c in tls.classify(photos[:4], model=MODEL)] == \
            [int(i) for i in out["classes"]]
    assert SEEN_METADATA[-1].get("x-api-key") == "secret-1"


def test_tls_with_server_name_override(pki: Pki, tls_port: int, tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca)  # certificates may be given as paths
    with GrpcClient(f"127.0.0.1:{tls_port}", tls=True, root_certificates=ca, server_name="localhost") as c:
        assert c.status(MODEL).available


def test_tls_with_an_untrusted_ca_fails_with_tls_error(pki: Pki, tls_port: int) -> None:
    with GrpcClient(f"grpcs://localhost:{tls_port}", root_certificates=pki.other_ca) as c, \
            pytest.raises(TLSError):
        c.status(MODEL)  # not retried: a certificate does not fix itself


def test_mutual_tls(pki: Pki, mtls_port: int, photos: list[str]) -> None:
    with GrpcClient(f"grpcs://localhost:{mtls_port}", root_certificates=pki.ca, private_key=pki.client_key,
                    certificate_chain=pki.client_cert) as c:
        assert c.classify(photos[:2], model=MODEL, send="bytes")[0].score > 0
    with GrpcClient(f"grpcs://localhost:{mtls_port}", root_certificates=pki.ca, retry=NO_RETRIES) as anon, \
            pytest.raises(ConnectError):
        anon.status(MODEL)  # the server refuses a client without a certificate


async def test_async_mutual_tls(pki: Pki, mtls_port: int) -> None:
    async with AsyncGrpcClient(f"grpcs://localhost:{mtls_port}", root_certificates=pki.ca,
                               private_key=pki.client_key, certificate_chain=pki.client_cert,
                               metadata=[("x-trace", "t-1")]) as c:
        assert (await c.status(MODEL)).available
    assert SEEN_METADATA[-1].get("x-trace") == "t-1"


def test_contradicting_tls_settings_are_refused(pki: Pki) -> None:
    from deepclf.errors import UsageError

    with pytest.raises(UsageError, match="contradict"):
        GrpcClient("grpc://localhost:1", root_certificates=pki.ca)
    with pytest.raises(UsageError, match="both private_key and certificate_chain"):
        GrpcClient("grpcs://localhost:1", private_key=pki.client_key)
