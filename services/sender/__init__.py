"""The sender: outbound send requests to SMTP and the Sent folder. Not built yet.

Its issue covers the send-request schema, authorisation, MIME building, SMTP with
failure classification, filing in Sent and once-only delivery; until then
``mailsync sender`` says so and exits with status 2.
"""
