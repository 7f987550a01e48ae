"""The shared authentication realm: accounts, password hashing, login events.

One Twisted cred ``Portal`` serves SMTP AUTH, POP3 and IMAP alike, so every protocol
verifies passwords the same way and every attempt lands in the same login-event table.
"""
