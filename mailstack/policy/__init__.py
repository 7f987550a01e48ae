"""Policy: small single-purpose checks, each returning a decision with its reply."""
