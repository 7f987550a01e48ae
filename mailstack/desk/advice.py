"""What each kind of refusal means and what to do about it, written once.

Why one table: the desk forwards these words to customers and to other providers'
administrators, so each kind of refusal is explained the same way every time, and a new
kind of refusal is one new row.  ``why`` says what happened (in words a customer can be
sent), ``sender`` what the sending side should do, ``customer`` what our own customer (the
recipient, or the sender when it is ours) can do.  Placeholders: {ip} {zone} {recipient}
{domain} {until} {url} {reason}.

Standards: RFC 3463 (the status codes each kind answers with), RFC 5782 (DNSBLs), RFC 7489
§6.3 (p=reject).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    title: str
    why: str
    sender: str
    customer: str
    lasts: str      # block: a block record's expiry; listing; dns; fact; mailbox; policy; none


KINDS = {
    "dnsbl": Kind(
        "refused: the sending server is on a public blocklist (DNSBL)",
        "Our mail server refused the message because the address of the sending server, "
        "{ip}, was listed on the public blocklist {zone} when it connected.",
        "The administrator of the sending server should look {ip} up on the blocklist's web "
        "site{url}, remove the cause (often an infected PC or a hacked account sending spam) "
        "and ask for delisting. Mail is accepted again as soon as the listing is gone. If "
        "it is urgent, the administrator can ask us for an exception on our whitehole "
        "request page (/whitehole on our mail server's web address) with this bounce.",
        "If the mail is urgent and the sender is trusted, ask our support desk for an "
        "exception (a whitelist entry) and send us this bounce.", "listing"),
    "no_ptr": Kind(
        "refused: the sending server has no reverse DNS name (PTR)",
        "Our mail server refused the message because the address of the sending server, "
        "{ip}, has no host name in the reverse DNS (no PTR record). Real mail servers have "
        "one; infected home PCs usually do not.",
        "The administrator of the sending server (or its network provider) should publish a "
        "PTR record for {ip} naming the server, with a matching A record. Mail is accepted "
        "as soon as it is published.",
        "Ask the sender to forward this to their mail administrator or provider.", "dns"),
    "spam_trap": Kind(
        "refused: the sending server sent mail to a spam trap",
        "The sending server, {ip}, sent mail to one of our spam-trap addresses (addresses "
        "that no person uses or ever gave out), so we refuse its mail for a while.",
        "The administrator of the sending server should check it for a hacked account or a "
        "mailing list with old or bought addresses, and clean it up. The block ends by "
        "itself{until}.",
        "If this sender is legitimate, ask our support desk to look at the block; send us "
        "this bounce.", "block"),
    "complaints": Kind(
        "refused: our customers complained about mail from the sending server",
        "Our customers reported mail from the sending server, {ip}, as spam ({reason}), so "
        "we refuse its mail for a while.",
        "The administrator of the sending server should stop unsolicited mail from it and "
        "check it for hacked accounts. The block ends by itself{until}.",
        "If this sender is legitimate, ask our support desk to look at the block; send us "
        "this bounce.", "block"),
    "local_block": Kind(
        "refused: the sending server is blocked by our abuse desk",
        "Our abuse desk blocked mail from the sending server, {ip}: {reason}.",
        "The administrator of the sending server should contact our abuse desk with this "
        "bounce. The block ends by itself{until}.",
        "Ask our support desk to review the block; send us this bounce.", "block"),
    "harvest": Kind(
        "not answered: the sending server is firewalled for guessing addresses",
        "The sending server, {ip}, tried many addresses at our domains that do not exist "
        "(as programs that collect addresses for spam do), so our servers do not answer it "
        "for a while: its mail bounces as a connection that timed out or was refused.",
        "Check the recipient addresses the server sent to (a mailing list with many old or "
        "mistyped addresses causes this). The block ends by itself{until}.",
        "If this sender is legitimate, ask our support desk to lift the block; send us this "
        "bounce.", "block"),
    "firewall": Kind(
        "not answered: the sending server is firewalled by our abuse desk",
        "Our abuse desk firewalled the sending server, {ip}: our servers do not answer it, "
        "so its mail bounces as a connection that timed out or was refused.",
        "The administrator of the sending server should contact our abuse desk with this "
        "bounce. The block ends by itself{until}.",
        "Ask our support desk to review the block; send us this bounce.", "block"),
    "unknown_user": Kind(
        "refused: the address does not exist",
        "The address {recipient} does not exist at {domain}: there is no mailbox of that "
        "name.",
        "Check the address for a typing mistake (a swapped or missing letter, a dot) and "
        "send the message again to the right address.",
        "Tell the sender the right spelling of your address.", "fact"),
    "relay_denied": Kind(
        "refused: our server does not relay mail for other domains",
        "Our mail server accepts mail from outside only for the domains it hosts; "
        "{recipient} is not one of them.",
        "Check the domain of the recipient address. If you are our customer sending mail "
        "out, use the submission port 587 (or 465) with authentication{url}.",
        "Check the spelling of the domain in the address.", "fact"),
    "over_quota": Kind(
        "refused: the recipient's mailbox is full",
        "The mailbox of {recipient} has no room for this message.",
        "Send the message again later, or without large attachments.",
        "Delete or move old mail (or ask for more room); then ask the sender to send "
        "again.", "mailbox"),
    "op25b": Kind(
        "refused: sending on port 25 from our customer network is blocked",
        "The message was sent from our customer network straight to port 25, which we block "
        "for mail to other providers (Outbound Port 25 Blocking).",
        "Set the mail program's outgoing server to port 587 (STARTTLS) or 465 (SSL/TLS) with "
        "authentication{url}.",
        "Change the outgoing (SMTP) server settings as described{url}.", "policy"),
    "sunset": Kind(
        "refused: sending after a POP login (POP before SMTP) has ended",
        "Our server no longer accepts mail just because the same computer checked its mail "
        "first (POP before SMTP); the mail program must log in to send.",
        "Turn on 'my outgoing server requires authentication' in the mail program{url}.",
        "Change the outgoing (SMTP) server settings as described{url}.", "policy"),
    "auth_required": Kind(
        "refused: the mail program did not log in to send",
        "Our server accepts mail for other domains only from a mail program that logs in.",
        "Turn on 'my outgoing server requires authentication' in the mail program{url}.",
        "Change the outgoing (SMTP) server settings.", "policy"),
    "dmarc": Kind(
        "refused: the message fails the DMARC policy of the sender's domain",
        "The message says it is from {domain}, but it was not sent by a server that domain "
        "authorises (SPF) nor signed by it (DKIM), and the owner of {domain} asks receivers "
        "to refuse such mail.",
        "The administrator of {domain} should send through the servers listed in its SPF "
        "record or sign its mail with DKIM; mailing lists and forwarders must not pass the "
        "message on unchanged.", "Ask the sender to forward this to their mail "
        "administrator.", "fact"),
    "spam": Kind(
        "refused: the message looked like spam",
        "Our content filter judged this message to be spam.",
        "Send it again without the parts that look like advertising (many links, short "
        "links, attachments with macros), or ask the recipient to add you to their "
        "contacts.", "Ask our support desk to look at the filter's record; send us this "
        "bounce.", "none"),
    "recipient_filter": Kind(
        "refused: the recipient's own filter rejected the message",
        "The recipient has a filter (Sieve) that refuses such messages and gave the reason "
        "quoted in the bounce; our server did not judge the sender.",
        "Nothing we can change: the recipient chose to refuse it. Reach them another way if "
        "it matters.", "Look at your filters (webmail: Settings, Filters) if this message "
        "should have come through.", "policy"),
    "temporary": Kind(
        "deferred: a temporary problem; the sending server retries",
        "Our server asked the sending server to try again later ({reason}).",
        "Nothing, usually: the sending server retries by itself. If it gave up, send the "
        "message again.", "Nothing, usually.", "none"),
    "no_connection": Kind(
        "not answered: the sending server could not connect to our mail server",
        "The sending server could not connect to our mail server ({reason}), and we have no "
        "firewall record for its address{ip_note}.",
        "Try again later; if it keeps failing, send us the sending server's IP address and "
        "the time, and check that the recipient's domain is spelled right.",
        "Send us the whole bounce and, if you can, the IP address of the sender's server.",
        "block"),
    "other": Kind(
        "refused by our mail server",
        "Our mail server refused the message: {reason}.",
        "Send this bounce to our support desk.", "Send this bounce to our support desk.",
        "none"),
    "not_ours": Kind(
        "not refused by us",
        "Nothing in this bounce was sent by our mail servers, and our records have no "
        "refusal matching it: another server refused it ({reason}).",
        "Ask the administrator of the server named in the bounce.",
        "Ask the sender for the whole bounce, with the error text and the time.", "none"),
}


def render(text: str, **values: str) -> str:
    """``text`` with its placeholders filled; a missing value leaves a plain word."""
    defaults = {"ip": "the sending server", "zone": "a blocklist", "recipient": "the address",
                "domain": "the domain", "until": "", "url": "", "reason": "see the evidence",
                "ip_note": ""}
    defaults.update({k: v for k, v in values.items() if v})
    return text.format(**defaults)
