"""The one SASL reader of SMTP, POP3 and IMAP: strict base64, PLAIN's three fields, and no
acting as another identity (RFC 4616 §2)."""

import base64

import pytest

from mailstack.protocols import sasl_plain


def plain(message: bytes) -> bytes:
    return base64.b64encode(message)


@pytest.mark.parametrize("authzid", [b"", b"alice@example.test", b"Alice@Example.TEST"])
def test_an_empty_authzid_or_the_login_itself_is_accepted(authzid):
    response = plain(authzid + b"\0alice@example.test\0secret")
    assert sasl_plain.read_plain(response) == (b"alice@example.test", b"secret")
    assert sasl_plain.read_plain(response.decode() + "\r\n") == (b"alice@example.test", b"secret")


def test_another_identity_is_refused_as_an_authentication_failure():
    with pytest.raises(sasl_plain.ForeignAuthzid):
        sasl_plain.read_plain(plain(b"bob@example.test\0alice@example.test\0secret"))
    assert not issubclass(sasl_plain.ForeignAuthzid, sasl_plain.Malformed)


@pytest.mark.parametrize("response", [
    b"not base64!", b"=", "é", b"YWxpY2U=x",                      # not base64
    plain(b"alice\0secret"), plain(b"a\0b\0c\0d"), plain(b"\0\0secret"), b"",   # not PLAIN
])
def test_anything_else_is_malformed(response):
    with pytest.raises(sasl_plain.Malformed):
        sasl_plain.read_plain(response)


def test_decode_is_the_strict_base64_of_one_response():
    assert sasl_plain.decode(" dXNlcg== \r\n") == b"user"
    with pytest.raises(sasl_plain.Malformed):
        sasl_plain.decode("dXNl cg==")


@pytest.mark.parametrize("response, cancelled", [
    (b"*", True), ("*", True), (b" *\r\n", True), (b"**", False), (plain(b"\0a\0b"), False)])
def test_a_star_cancels_the_exchange(response, cancelled):
    assert sasl_plain.cancelled(response) is cancelled
