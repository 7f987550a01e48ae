"""``mailstack <group> <verb>``: thin admin commands over the same store, realm and policy code.

Exit codes (stable, for the ISP's own scripts): 0 success; 1 the command failed (not found,
already exists, bad input); 2 usage error; 3 configuration error; 4 database unavailable or
schema not current.
"""
