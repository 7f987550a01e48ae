"""Configuration: bad settings stop start-up with a message naming the key."""

import pytest

from mailstack import config as configs


def load(tmp_path, text):
    path = tmp_path / "mailstack.toml"
    path.write_text(text)
    return configs.load(path)


def test_defaults_load_and_relative_sqlite_path_resolves_next_to_the_file(tmp_path):
    config = load(tmp_path, '[database]\nurl = "sqlite:///data/mail.db"\n')
    assert config.database_url() == f"sqlite:///{tmp_path / 'data' / 'mail.db'}"
    assert config.smtp.max_message_size == 25 * 1024 * 1024


@pytest.mark.parametrize("text, key", [
    ("[smtp]\nmax_mesage_size = 10\n", "smtp.max_mesage_size: unknown setting"),
    ("[smtp]\nmax_message_size = -5\n", "smtp.max_message_size: -5 must be greater than zero"),
    ("[smtp]\nmax_message_size = 'big'\n", "smtp.max_message_size: must be of type int"),
    ("[[listeners]]\nprotocol = 'smtp'\n", "listeners[0].port: required setting is missing"),
    ("[[listeners]]\nprotocol = 'smtp'\nport = 70000\n", "listeners[0].port: 70000 must be a port"),
    ("[[listeners]]\nprotocol = 'smtp'\nport = 25\ntls = 'yes'\n", "listeners[0].tls: 'yes' must be one of"),
    ("[[listeners]]\nprotocol = 'smtp'\nport = 25\naddress = 'localhost'\n", "listeners[0].address"),
    ("[[listeners]]\nprotocol='smtp'\nport=25\n[[listeners]]\nprotocol='pop3'\nport=25\n",
     "listeners[1].port: 127.0.0.1:25 is used twice"),
    ("[dns]\nnameservers = ['not-an-ip']\n", "dns.nameservers[0]"),
    ("[spam]\nurl = 'rspamd.example.net:11333'\n",
     "spam.url: 'rspamd.example.net:11333' must be http://host:port"),
    ("[spam]\ntimeout = 0\n", "spam.timeout: 0 must be greater than zero"),
    ("[tls]\ngenerate_dev = 'true'\n", "tls.generate_dev: must be of type bool"),
    ("server = 5\n", "server: must be a table"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_setting_is_named(tmp_path, text, key):
    with pytest.raises(configs.ConfigError) as caught:
        load(tmp_path, text)
    assert key in str(caught.value)


def test_example_configuration_is_valid():
    from pathlib import Path
    example = Path(__file__).parents[2] / "mailstack.example.toml"
    config = configs.load(example)
    assert {l.protocol for l in config.listeners} == {"smtp", "submission", "pop3", "imap"}
    assert config.pop_before_smtp.enabled and config.submission.smtp_auth
