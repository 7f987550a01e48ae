"""A terminal program driven the way a person would: in a detached tmux session on a
private socket, keys in (``send-keys``), screen out (``capture-pane``).  For clients that
have no batch mode worth the name (mutt opening a message, marking, saving).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path


class Terminal:
    """A program in a detached tmux session on a private socket (one per home directory)."""

    def __init__(self, home: Path, argv: list[str]):
        self.socket = str(home / "tmux.sock")
        self.env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        inside = {**self.env, "TERM": "screen"}             # what tmux emulates
        self.tmux("new-session", "-d", "-s", "client", "-x", "160", "-y", "45",
                  "env", "-i", *(f"{k}={v}" for k, v in inside.items()), *argv)

    def tmux(self, *args) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              env=self.env, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode(errors="replace")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "client")

    def keys(self, *keys: str, literal=False) -> None:
        self.tmux("send-keys", "-t", "client", *(("-l",) if literal else ()), *keys)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)
        self.keys("Enter")

    def wait_for(self, pattern: str, seconds=5.0) -> str:
        deadline = time.monotonic() + seconds
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            assert time.monotonic() < deadline, f"no {pattern!r} on screen:\n{screen}"
            time.sleep(0.05)

    def running(self) -> bool:
        return subprocess.run(["tmux", "-S", self.socket, "has-session", "-t", "client"],
                              capture_output=True, env=self.env).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       env=self.env)
