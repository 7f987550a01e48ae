"""Dev certificates name every host a client reaches us by, and follow new hosted domains."""

from __future__ import annotations

from cryptography import x509

from mailstack import config as configs, tls
from mailstack.service import dev_certificate_names


def san_names(path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def test_names_cover_hosts_and_each_domains_autoconfig():
    config = configs.from_dict({"server": {"hostname": "mx.isp.test"},
                                "client_setup": {"hostname": "mail.isp.test"},
                                "domains": {"hosted": ["isp.test", "other.test"]}})
    assert dev_certificate_names(config) == [
        "mx.isp.test", "mail.isp.test", "autoconfig.isp.test", "autodiscover.isp.test",
        "mta-sts.isp.test", "autoconfig.other.test", "autodiscover.other.test",
        "mta-sts.other.test"]


def test_a_certificate_missing_a_name_is_made_again(tmp_path):
    cert, key, ca = tmp_path / "s.pem", tmp_path / "s.key", tmp_path / "ca.pem"
    assert tls.ensure_dev_certificates(cert, key, ca, ["mx.isp.test"])
    assert not tls.ensure_dev_certificates(cert, key, ca, ["mx.isp.test"])
    assert tls.ensure_dev_certificates(cert, key, ca, ["mx.isp.test", "autoconfig.new.test"])
    assert {"mx.isp.test", "autoconfig.new.test", "localhost"} <= san_names(cert)
