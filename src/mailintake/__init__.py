"""mailintake: imports mail from OAuth 2.0 mailboxes into a document-capture pipeline."""

__version__ = "0.1.0"
