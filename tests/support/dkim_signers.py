"""Independent DKIM signers and an ARC sealer for the tests: Perl's Mail::DKIM.

Why not dkimpy: it is what the server verifies with; a signature made by the same code
would prove nothing about interoperability.  Mail::DKIM (Debian's libmail-dkim-perl) signs
RSA-SHA256 and seals ARC sets (``Mail::DKIM::ARC::Signer``).  Ed25519-SHA256 (RFC 8463)
is not in Debian 12's Mail::DKIM (1.20230212), so the script adds an algorithm class that
signs Mail::DKIM's own canonicalised header hash with CryptX's Ed25519
(libcryptx-perl): still nothing of dkimpy's.  opendkim-testmsg (opendkim-tools 2.11.0~beta2)
answers ``dkim_chunk(): Syntax error`` to every message here, so it is not used.

Keys: RSA-2048 from ``openssl genpkey``; Ed25519 from ``openssl genpkey -algorithm ed25519``;
``txt`` is the record to publish at ``<selector>._domainkey.<domain>``.
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

SIGN = r"""
use strict; use warnings;
use Mail::DKIM::Signer; use Mail::DKIM::TextWrap; use MIME::Base64;
my ($algorithm, $domain, $selector, $keyfile, $headers) = @ARGV;
our $ED_KEY;
{
    package Mail::DKIM::Algorithm::ed25519_sha256;
    use base 'Mail::DKIM::Algorithm::rsa_sha256';
    sub sign {     # RFC 8463 §3: Ed25519 over the SHA-256 of the canonicalised header
        my ($self) = @_;
        return MIME::Base64::encode_base64(
            $main::ED_KEY->sign_message($self->{header_digest}->digest), '');
    }
    package Mail::DKIM::Signature;
    no warnings 'redefine';
    my $original = \&get_algorithm_class;
    *get_algorithm_class = sub {
        my ($self, $name) = @_;
        return $name eq 'ed25519-sha256' ? 'Mail::DKIM::Algorithm::ed25519_sha256'
                                         : $original->(@_);
    };
}
my %key;
if ($algorithm eq 'ed25519-sha256') {
    require Crypt::PK::Ed25519;
    $ED_KEY = Crypt::PK::Ed25519->new($keyfile);
    $key{Key} = bless {}, 'Ed25519Placeholder';
} else {
    $key{KeyFile} = $keyfile;
}
my $signer = Mail::DKIM::Signer->new(Algorithm => $algorithm, Method => 'relaxed/relaxed',
    Domain => $domain, Selector => $selector, Headers => $headers, %key);
binmode STDIN; local $/; my $msg = <STDIN>;
$signer->PRINT($msg); $signer->CLOSE;
my $sig = $signer->signature->as_string; $sig =~ s/\r?\n/\r\n/g;
binmode STDOUT; print $sig, "\r\n", $msg;
"""

SEAL = r"""
use strict; use warnings;
use Mail::DKIM::ARC::Signer; use Mail::DKIM::TextWrap;
my ($domain, $selector, $keyfile, $chain) = @ARGV;
my $signer = Mail::DKIM::ARC::Signer->new(Algorithm => 'rsa-sha256', Chain => $chain,
    Domain => $domain, SrvId => $domain, Selector => $selector, KeyFile => $keyfile,
    Headers => 'from:to:subject:date:message-id');
binmode STDIN; local $/; my $msg = <STDIN>;
$signer->PRINT($msg); $signer->CLOSE;
die 'not sealed: ' . ($signer->result_detail // '') unless $signer->result eq 'sealed';
my $seal = $signer->as_string; $seal =~ s/\r?\n/\r\n/g; $seal =~ s/(\r\n)*$/\r\n/;
binmode STDOUT; print $seal, $msg;
"""


@dataclass(frozen=True)
class Key:
    domain: str
    selector: str
    path: Path
    algorithm: str          # rsa-sha256 | ed25519-sha256
    public: str             # base64 of the public key (p=)

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt(self) -> list[str]:
        """The key record as DNS character-strings (each at most 255 octets)."""
        kind = "ed25519" if self.algorithm.startswith("ed25519") else "rsa"
        text = f"v=DKIM1; k={kind}; p={self.public}"
        return [text[i:i + 250] for i in range(0, len(text), 250)]


def make_key(directory: Path, domain: str, selector: str, algorithm="rsa-sha256") -> Key:
    path = Path(directory) / f"{selector}.{domain}.pem"
    if algorithm == "ed25519-sha256":
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)],
                       check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", str(path)], check=True,
                       capture_output=True)
    private = serialization.load_pem_private_key(path.read_bytes(), None)
    if algorithm == "ed25519-sha256":
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
    else:
        raw = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return Key(domain, selector, path, algorithm, base64.b64encode(raw).decode())


def sign(message: bytes, key: Key, headers: str = "from:to:subject:date:message-id") -> bytes:
    """``message`` (CRLF lines) with a DKIM-Signature by Mail::DKIM in front."""
    return subprocess.run(["perl", "-e", SIGN, key.algorithm, key.domain, key.selector,
                           str(key.path), headers], input=message, check=True,
                          capture_output=True).stdout


def seal(message: bytes, key: Key, chain: str = "none") -> bytes:
    """``message`` with an ARC set by Mail::DKIM::ARC::Signer in front; the message must
    carry an Authentication-Results header of ``key.domain`` (the sealer's own results)."""
    return subprocess.run(["perl", "-e", SEAL, key.domain, key.selector, str(key.path), chain],
                          input=message, check=True, capture_output=True).stdout
