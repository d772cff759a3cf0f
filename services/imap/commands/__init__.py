"""The IMAP commands mailsync sends, one module per family, each a function of the
open :class:`~services.imap.session.ImapSession` (whose methods call them).

- :mod:`.starttls`  STARTTLS (RFC 2595, RFC 3501 6.2.1): TLS on the same socket
- :mod:`.login`     LOGIN, or AUTHENTICATE XOAUTH2/OAUTHBEARER (RFC 3501 6.2, RFC 7628)
- :mod:`.enable`    ENABLE CONDSTORE (RFC 5161, RFC 7162 3.1)
- :mod:`.list`      LIST (RFC 3501 6.3.8; roles from RFC 6154)
- :mod:`.select`    EXAMINE (read-only, to sync) and SELECT (read-write, to act)
- :mod:`.status`    STATUS (RFC 3501 6.3.10)
- :mod:`.list_status` LIST-STATUS (RFC 5819, with RFC 5258's multiple patterns): many
                    folders' STATUS in one command
- :mod:`.search`    UID SEARCH (RFC 3501 6.4.4)
- :mod:`.fetch`     UID FETCH: messages, header fields, flags, CHANGEDSINCE (RFC 7162)
- :mod:`.store`     UID STORE +FLAGS.SILENT
- :mod:`.move`      UID MOVE (RFC 6851), else UID COPY + \\Deleted + UID EXPUNGE (RFC 4315)
- :mod:`.idle`      IDLE (RFC 2177)
- :mod:`.append`    APPEND (RFC 3501 6.3.11; APPENDUID from RFC 4315), several messages
                    in one (MULTIAPPEND, RFC 3502, with LITERAL+, RFC 7888)
"""
