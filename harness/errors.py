"""Errors a user can act on: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input or a missing tool; the message says what to do."""
