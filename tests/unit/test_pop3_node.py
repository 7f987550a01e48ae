"""The node name POP3 maildrop locks are recorded under (protocols/pop3_lease.py)."""

from __future__ import annotations

import socket

from mailstack.protocols.pop3_lease import NAME_LIMIT, claim_node


def test_node_name_is_host_and_state_dir_and_survives_a_restart(tmp_path):
    first = claim_node(tmp_path / "state")
    assert first.stable and first.name == f"{socket.gethostname()}:{tmp_path / 'state'}"
    first.guard.close()                      # the process ends (the kernel drops the flock)
    again = claim_node(tmp_path / "state")
    assert again.stable and again.name == first.name
    again.guard.close()


def test_a_second_live_process_on_the_same_state_dir_never_gets_the_stable_name(tmp_path):
    # Otherwise its start would free the first one's live locks.
    first = claim_node(tmp_path / "state")
    second = claim_node(tmp_path / "state")
    assert not second.stable and second.name != first.name and second.guard is None
    first.guard.close()


def test_an_unwritable_state_dir_gives_a_per_process_name(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    node = claim_node(tmp_path / "file" / "state")
    assert not node.stable and len(node.name) <= NAME_LIMIT


def test_a_very_long_state_dir_still_fits_the_column(tmp_path):
    deep = tmp_path.joinpath(*["d" * 50] * 6)
    node = claim_node(deep)
    assert node.stable and len(node.name) <= NAME_LIMIT
    node.guard.close()
