"""The mail outbox and its sender, against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from idp.config import ConfigError, from_mapping
from idp.mail.models import MailMessage
from tests.support.smtp import Sink, smtp_sink


@pytest.fixture
def config_overrides(mail_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return mail_config


def queue(svc: Any, to: str = "alice@example.test", **context: Any) -> str:
    context.setdefault("username", "alice")
    context.setdefault("link", "http://127.0.0.1:5000/password/reset?token=abc")
    context.setdefault("minutes", 30)
    with svc.db.transaction() as s:
        message = svc.outbox.queue(s, svc.clock.now(), to, "password_reset", **context)
        s.flush()
        return str(message.id)


def row(svc: Any, message_id: str) -> MailMessage:
    with svc.db.read() as s:
        found = s.get(MailMessage, message_id)
        assert found is not None
        return found


def test_a_queued_mail_is_sent_as_text_and_html_then_its_body_is_dropped(
    svc: Any, mailbox: Sink
) -> None:
    message_id = queue(svc, username="<b>alice</b>")
    assert svc.mailer.deliver_due() is False
    [mail] = mailbox.messages
    assert mail["To"] == "alice@example.test"
    assert mail["From"] == "idp <idp@localhost>"
    assert mail["Subject"] == "Reset your password"
    assert mail["Message-ID"] and mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"
    assert "Hello <b>alice</b>," in Sink.text(mail)
    html = mail.get_body(("html",))
    assert html is not None
    # HTML is escaped: a name cannot inject markup into the mail.
    assert "Hello &lt;b&gt;alice&lt;/b&gt;," in html.get_content()
    assert mailbox.link(mail) == "/password/reset?token=abc"
    sent = row(svc, message_id)
    assert sent.status == "sent" and sent.attempts == 1
    # The link it carried is not kept in the database.
    assert sent.text_body == "" and sent.html_body == ""
    assert svc.mailer.deliver_due() is False
    assert len(mailbox.messages) == 1


def test_an_action_that_rolls_back_mails_nothing(svc: Any, mailbox: Sink) -> None:
    with pytest.raises(RuntimeError), svc.db.transaction() as s:
        svc.outbox.queue(
            s,
            svc.clock.now(),
            "a@example.test",
            "password_reset",
            username="a",
            link="x",
            minutes=1,
        )
        raise RuntimeError("the action failed after queueing its mail")
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(MailMessage)) == 0
    svc.mailer.deliver_due()
    assert mailbox.messages == []


def test_a_mail_the_server_could_not_take_is_retried_after_a_backoff(
    svc: Any, clock: Any, mail_port: int
) -> None:
    message_id = queue(svc)
    assert svc.mailer.deliver_due() is True  # nothing listens on the port yet
    first = row(svc, message_id)
    assert first.status == "pending" and first.attempts == 1 and first.last_error
    with smtp_sink(mail_port) as sink:
        svc.mailer.deliver_due()  # not due yet: the backoff holds it
        assert sink.messages == []
        clock.advance(11)
        assert svc.mailer.deliver_due() is False
        assert len(sink.messages) == 1
    assert row(svc, message_id).status == "sent"


def test_a_mail_refused_for_good_is_not_tried_again(svc: Any, mailbox: Sink, clock: Any) -> None:
    mailbox.refuse = "550 5.1.1 no such mailbox"
    message_id = queue(svc)
    assert svc.mailer.deliver_due() is False
    failed = row(svc, message_id)
    assert failed.status == "failed" and failed.last_error == "SMTP 550"
    assert failed.text_body == ""
    clock.advance(3600)
    mailbox.refuse = None
    svc.mailer.deliver_due()
    assert mailbox.messages == []


def test_a_mail_is_given_up_after_its_last_retry(svc: Any, clock: Any) -> None:
    message_id = queue(svc)  # no server at all
    for _ in range(10):
        svc.mailer.deliver_due()
        clock.advance(3601)
    gone = row(svc, message_id)
    assert gone.status == "failed" and gone.attempts == 6


@pytest.mark.parametrize("config_overrides", [{"mail": {"smtp_url": ""}}])
def test_without_an_smtp_server_mail_is_written_to_the_log(
    svc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    queue(svc, link="http://127.0.0.1:5000/password/reset?token=click-me")
    with caplog.at_level(logging.WARNING, logger="idp.mail.sender"):
        assert svc.mailer.deliver_due() is False
    assert "To: alice@example.test" in caplog.text
    assert "http://127.0.0.1:5000/password/reset?token=click-me" in caplog.text


def test_starttls_is_required_unless_turned_off(svc: Any, mailbox: Sink, mail_port: int) -> None:
    from idp.mail.sender import Mailer, transport_for

    cfg = from_mapping({"mail": {"smtp_url": f"smtp://127.0.0.1:{mail_port}"}}).mail
    assert cfg.tls == "starttls"
    strict = Mailer(svc.db, svc.clock, cfg, transport_for(cfg))
    message_id = queue(svc)
    strict.deliver_due()
    # The sink offers no STARTTLS: the mail waits rather than travel in plain text.
    assert mailbox.messages == []
    assert row(svc, message_id).last_error == "the server does not offer STARTTLS"


def test_a_background_worker_sends_what_an_action_queued(svc: Any, mailbox: Sink) -> None:
    from idp.mail.sender import Mailer

    worker = Mailer(svc.db, svc.clock, svc.config.mail, svc.mailer.transport)
    queue(svc)
    worker.kick()
    assert mailbox.arrived.wait(10)
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("mail", "key"),
    [
        ({"smtp_url": "http://mail.example.com"}, "mail.smtp_url"),
        ({"smtp_url": "smtp://"}, "mail.smtp_url"),
        ({"smtp_url": "smtp://host:99999"}, "mail.smtp_url"),
        ({"smtp_url": "smtp://user:pw@host:25"}, "mail.smtp_url"),
        ({"tls": "maybe"}, "mail.tls"),
        ({"from": "not an address"}, "mail.from"),
        ({"from": "idp <a@b>\r\nBcc: x@y"}, "mail.from"),
        ({"from_": "a@b.example"}, "mail.from_"),
    ],
)
def test_bad_mail_settings_stop_startup_naming_the_key(mail: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"mail": mail})
    assert err.value.key == key


def test_mail_from_is_read_from_its_toml_name_and_the_environment() -> None:
    cfg = from_mapping({"mail": {"from": "Acme <login@acme.example>"}})
    assert cfg.mail.from_ == "Acme <login@acme.example>"
    env = {"IDP_MAIL__FROM": "Other <o@acme.example>", "IDP_MAIL__SMTP_URL": "smtp://m:2525"}
    cfg = from_mapping({}, env=env)
    assert cfg.mail.from_ == "Other <o@acme.example>" and cfg.mail.smtp_url == "smtp://m:2525"
