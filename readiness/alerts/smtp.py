"""Django's SMTP backend, able to tell after an error whether the mail server may have accepted the
message: whether its data had gone out in full (``data_sent``) when the conversation broke.

SMTP hands a message over in one step: after ``DATA`` the server answers 354, the client sends the
whole message ending with a lone ".", and the server's reply to that says whether it took it. A timeout
or a dropped connection before that reply leaves the message perhaps accepted, perhaps not; every
other failure (connection refused, a recipient refused, a 4xx or 5xx reply to the data) means it was
not. ``EmailTransport`` turns the first kind into ``UncertainError`` rather than a retry, since a retry
could be a second email in the recipients' inboxes.

settings.py selects this backend whenever EMAIL_HOST is set.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail.backends import smtp


class _DataTracking(smtplib.SMTP):
    # Within smtplib's data(): a 354 reply is followed by the one send() of the whole message.
    data_sent = False
    _data_next = False

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()
        self._data_next = code == 354
        return code, text

    def send(self, s: Any) -> None:
        data_next, self._data_next = self._data_next, False
        super().send(s)
        if data_next:
            self.data_sent = True


class DataTrackingSMTP(_DataTracking):
    pass


class DataTrackingSMTPSSL(_DataTracking, smtplib.SMTP_SSL):
    pass


class EmailBackend(smtp.EmailBackend):
    """Django's SMTP backend, with ``data_sent`` telling whether the last message's data had gone out
    in full (read it after ``send_messages`` raised)."""

    data_sent = False

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return DataTrackingSMTPSSL if self.use_ssl else DataTrackingSMTP

    def _send(self, email_message: Any) -> bool:
        self.data_sent = False
        if self.connection is not None:
            self.connection.data_sent = False
        try:
            return super()._send(email_message)
        finally:
            # Read before send_messages() closes the connection (it drops the object).
            self.data_sent = bool(getattr(self.connection, "data_sent", False))
