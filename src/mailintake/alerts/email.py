"""Alerts by email, over SMTP (stdlib smtplib): STARTTLS, implicit TLS or, on a loopback
host only, none; certificates verified against the system's authorities or ``ca_file``."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from mailintake.alerts.message import AlertMessage
from mailintake.errors import AlertNotSent
from mailintake.net import tls

PORTS = {"starttls": 587, "tls": 465, "none": 25}


class EmailChannel:
    def __init__(
        self,
        name: str,
        *,
        host: str,
        sender: str,
        to: Sequence[str],
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port or PORTS[security]
        self.security = security
        self.sender = sender
        self.to = list(to)
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_file = ca_file

    def compose(self, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Date"] = formatdate(message.sent_at.timestamp(), usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        mail["Message-ID"] = make_msgid("mailintake", domain=domain)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies
        mail.set_content(message.text())
        return mail

    def send(self, message: AlertMessage) -> None:
        where = f"SMTP server {self.host}:{self.port}"
        try:
            context = tls.context_trusting(self.ca_file)
            self._send(self.compose(message), context)
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertNotSent(f"{where} refused the user name or password: {_said(exc)}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise AlertNotSent(f"{where}: {exc}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{to}: {_said(e)}" for to, e in exc.recipients.items())
            raise AlertNotSent(f"{where} refused the recipients ({refused})") from exc
        except smtplib.SMTPResponseException as exc:
            raise AlertNotSent(f"{where} answered {_said(exc)}") from exc
        except smtplib.SMTPException as exc:
            raise AlertNotSent(f"{where}: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, timeout, TLS
            raise AlertNotSent(f"cannot reach {where}: {tls.describe(exc)}") from exc

    def _send(self, mail: EmailMessage, context: ssl.SSLContext) -> None:
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "does not offer STARTTLS (security: starttls needs it; use tls for "
                        "port 465)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self._password or "")
            smtp.send_message(mail)


def _said(exc: smtplib.SMTPResponseException | tuple[int, bytes]) -> str:
    code, text = (exc.smtp_code, exc.smtp_error) if not isinstance(exc, tuple) else exc
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {said}".strip()
