"""IMAP: the client session, its protocol reader, response parsers and errors."""
