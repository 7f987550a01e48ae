"""DKIM signing of the mail we send for hosted domains (issue 17; RFC 6376, RFC 8463).

``keys.py`` makes key pairs and their DNS values, ``schedule.py`` says which keys are
published and which sign at a moment (rotation), ``signer.py`` signs a message with
dkimpy.  The keys themselves are rows of ``store/dkim_keys.py``.
"""
