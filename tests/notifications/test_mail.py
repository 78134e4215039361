"""The mail module against a real SMTP server on loopback, and the .eml file default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.settings import load_settings
from app.notifications import mail
from tests.mail_reader import html_of, parse, text_of
from tests.smtp_server import free_port, smtp_server


def _message(settings: object) -> object:
    return mail.build_message(
        to="someone@example.org",
        subject="Reference ABCD1234",
        text="plain body",
        html="<p>html body</p>",
        message_id=mail.stable_message_id("outbox-42"),
        settings=settings,  # type: ignore[arg-type]
    )


def test_file_backend_writes_a_complete_eml(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    mail.send(_message(settings), settings)  # type: ignore[arg-type]
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    parsed = parse(files[0].read_bytes())
    assert parsed["Subject"] == "Reference ABCD1234"
    assert parsed["Message-ID"] == "<outbox-42@localhost>"
    assert html_of(parsed).strip() == "<p>html body</p>"
    assert not list((tmp_path / "mail").glob("*.tmp"))


def test_smtp_plain_delivers_multipart_text_and_html(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        settings = load_settings(
            data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
        )
        mail.send(_message(settings), settings)  # type: ignore[arg-type]
    assert len(inbox.messages) == 1
    got = inbox.messages[0]
    assert got["To"] == "someone@example.org"
    assert text_of(got).strip() == "plain body"


def test_smtp_starttls_with_login(tmp_path: Path) -> None:
    with smtp_server(tls_dir=tmp_path, username="relay", password="s3cret") as (inbox, port):
        settings = load_settings(
            data_dir=tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="starttls",
            smtp_username="relay",
            smtp_password="s3cret",
            smtp_ca_file=tmp_path / "smtp.crt",
        )
        mail.send(_message(settings), settings)  # type: ignore[arg-type]
        assert inbox.logins == ["relay"] and len(inbox.messages) == 1

        # A wrong password is refused by the server (535) and named as a mail error.
        wrong = settings.model_copy(update={"smtp_password": SecretStr("not-it")})
        with pytest.raises(mail.MailError, match="535"):
            mail.send(_message(wrong), wrong)  # type: ignore[arg-type]
        assert inbox.logins == ["relay"] and len(inbox.messages) == 1


def test_smtp_refusal_and_unreachable_server_raise_mail_error(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        inbox.refuse_with = "550 mailbox unavailable"
        settings = load_settings(
            data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
        )
        with pytest.raises(mail.MailError, match="550"):
            mail.send(_message(settings), settings)  # type: ignore[arg-type]
    closed = load_settings(
        data_dir=tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="none",
        smtp_timeout_seconds=2,
    )
    with pytest.raises(mail.MailError):
        mail.send(_message(closed), closed)  # type: ignore[arg-type]


def test_non_ascii_sender_subject_and_file_name_are_encoded_and_read_back(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    msg = mail.build_message(
        to="someone@example.org",
        subject="Ваш запрос ABCD1234: что дальше",
        text="Здравствуйте.\n" + "x" * 1200,
        html="<p>مرحبا</p>",
        sender="Экспертные отчёты <reports@example.org>",
        headers={"In-Reply-To": "<a@example.org>"},
        attachments=[mail.Attachment("отчёт.pdf", b"%PDF-1.4 sample", "application", "pdf")],
        settings=settings,
    )
    mail.send(msg, settings)
    raw = next((tmp_path / "mail").glob("*.eml")).read_bytes()
    assert raw.isascii()  # 7-bit clean whatever the relay supports
    parsed = parse(raw)
    assert parsed["Subject"] == "Ваш запрос ABCD1234: что дальше"
    assert parsed["From"].addresses[0].display_name == "Экспертные отчёты"
    assert parsed["From"].addresses[0].addr_spec == "reports@example.org"
    assert parsed["In-Reply-To"] == "<a@example.org>"
    plain = text_of(parsed)
    assert plain.startswith("Здравствуйте.") and "x" * 1200 in plain
    assert html_of(parsed).strip() == "<p>مرحبا</p>"
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "отчёт.pdf"
    assert attachment.get_content() == b"%PDF-1.4 sample"


def test_ascii_text_stays_readable_and_a_header_with_a_line_break_is_refused(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path)
    msg = mail.build_message(
        to="someone@example.org", subject="Hello", text="plain body", settings=settings
    )
    assert b"\nplain body" in msg.as_bytes()  # 7bit, not base64
    with pytest.raises(ValueError, match="Subject"):
        mail.build_message(
            to="someone@example.org",
            subject="Hello\r\nBcc: victim@example.org",
            text="x",
            settings=settings,
        )
