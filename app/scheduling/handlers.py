"""Outbox handlers of consultations: the invites (e-mail with an iCalendar part and
``invite.ics``) and the online meeting (create, update, delete through the configured
``MeetingProvider``).

Invites are rendered at send time from the consultation as it then is: its time, its
``SEQUENCE``, its join link. One notice per change to each person: once a consultation is
cancelled, only its cancellation goes out (an older "booked", "link" or "new time" row still
waiting is dropped, so nothing says "booked" after a cancel); an expert the consultation has
left gets the move as a ``METHOD:CANCEL`` and nothing older.

The meeting handlers call the provider without holding the consultation's row lock (a slow
or rate-limited Zoom must not make a person's cancel wait); the create locks and re-reads the
consultation only once the meeting exists, and deletes it again if it is no longer wanted.

The requester's copy is in their language (en, ru, es, ar; others English), its dates in words
in their language and zone (``app/notifications/dates.py``), with a neutral subject, text and
calendar entry when they asked for discretion; the expert's copy carries the reference, the
country and the time only, never the requester's name or contact.
"""

from __future__ import annotations

import datetime as dt
import uuid
from email.utils import parseaddr

import structlog
from sqlalchemy.orm import Session

from app.core.crypto import decrypt_with_master
from app.core.settings import get_settings
from app.core.time import now
from app.intake import records as intake
from app.intake.handlers import template_language
from app.meetings.factory import get_meeting_provider
from app.meetings.usage import count_meeting_write
from app.models import (
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    RequestStatus,
)
from app.notifications import dates, mail
from app.notifications.facts import country_name, recipient, span_for
from app.notifications.render import render_pair
from app.notifications.requester import send_to_requester
from app.outbox import service as outbox
from app.outbox.registry import PermanentFailure, handler
from app.scheduling import ics
from app.scheduling.service import (
    INVITE_KIND,
    MEETING_CREATE,
    MEETING_DELETE,
    MEETING_UPDATE,
    create_marker,
    discard_meeting,
    meeting_spec,
    send_invites,
    store_meeting,
)

log = structlog.get_logger(__name__)

CANCELLED_EVENTS = ("cancelled", "cancelled_reassigned")

# (event, discreet) -> subject; discreet subjects say nothing of asylum, reports or experts.
SUBJECTS: dict[str, dict[tuple[str, bool], str]] = {
    "en": {
        ("booked", False): "Your free consultation is booked [{ref}]",
        ("booked", True): "Your appointment is booked [{ref}]",
        ("rescheduled", False): "Your consultation has a new time [{ref}]",
        ("rescheduled", True): "Your appointment has a new time [{ref}]",
        ("moved", False): "Your consultation is now with another expert [{ref}]",
        ("moved", True): "Your appointment has changed [{ref}]",
        ("link", False): "The link to your consultation [{ref}]",
        ("link", True): "The link to your appointment [{ref}]",
        ("cancelled", False): "Your consultation is cancelled [{ref}]",
        ("cancelled", True): "Your appointment is cancelled [{ref}]",
        ("cancelled_reassigned", False): "Your consultation is cancelled: please rebook [{ref}]",
        ("cancelled_reassigned", True): "Your appointment is cancelled: please rebook [{ref}]",
    },
    # Translations for native review.
    "ru": {
        ("booked", False): "Ваша бесплатная консультация назначена [{ref}]",
        ("booked", True): "Ваша встреча назначена [{ref}]",
        ("rescheduled", False): "Время вашей консультации изменено [{ref}]",
        ("rescheduled", True): "Время вашей встречи изменено [{ref}]",
        ("moved", False): "Вашу консультацию проведёт другой эксперт [{ref}]",
        ("moved", True): "Ваша встреча изменена [{ref}]",
        ("link", False): "Ссылка на вашу консультацию [{ref}]",
        ("link", True): "Ссылка на вашу встречу [{ref}]",
        ("cancelled", False): "Ваша консультация отменена [{ref}]",
        ("cancelled", True): "Ваша встреча отменена [{ref}]",
        ("cancelled_reassigned", False): "Консультация отменена: выберите новое время [{ref}]",
        ("cancelled_reassigned", True): "Встреча отменена: выберите новое время [{ref}]",
    },
    # Translations for native review; discreet ones say "cita", never "consulta" or "asilo".
    "es": {
        ("booked", False): "Su consulta gratuita está reservada [{ref}]",
        ("booked", True): "Su cita está reservada [{ref}]",
        ("rescheduled", False): "Su consulta tiene una nueva hora [{ref}]",
        ("rescheduled", True): "Su cita tiene una nueva hora [{ref}]",
        ("moved", False): "Su consulta será con otro perito [{ref}]",
        ("moved", True): "Su cita ha cambiado [{ref}]",
        ("link", False): "El enlace de su consulta [{ref}]",
        ("link", True): "El enlace de su cita [{ref}]",
        ("cancelled", False): "Su consulta ha sido cancelada [{ref}]",
        ("cancelled", True): "Su cita ha sido cancelada [{ref}]",
        ("cancelled_reassigned", False): "Su consulta ha sido cancelada: elija otra hora [{ref}]",
        ("cancelled_reassigned", True): "Su cita ha sido cancelada: elija otra hora [{ref}]",
    },
    # Translations for native review; discreet ones say "موعد", never "استشارة" or "لجوء".
    "ar": {
        ("booked", False): "تم حجز استشارتكم المجانية [{ref}]",
        ("booked", True): "تم حجز موعدكم [{ref}]",
        ("rescheduled", False): "تغيّر وقت استشارتكم [{ref}]",
        ("rescheduled", True): "تغيّر وقت موعدكم [{ref}]",
        ("moved", False): "ستكون استشارتكم مع خبير آخر [{ref}]",
        ("moved", True): "تغيّر موعدكم [{ref}]",
        ("link", False): "رابط استشارتكم [{ref}]",
        ("link", True): "رابط موعدكم [{ref}]",
        ("cancelled", False): "أُلغيت استشارتكم [{ref}]",
        ("cancelled", True): "أُلغي موعدكم [{ref}]",
        ("cancelled_reassigned", False): "أُلغيت استشارتكم: اختاروا وقتاً جديداً [{ref}]",
        ("cancelled_reassigned", True): "أُلغي موعدكم: اختاروا وقتاً جديداً [{ref}]",
    },
}
#: The languages the requester's invite is written in (others get English).
LANGUAGES = tuple(SUBJECTS)
#: (discreet) -> the calendar entry's title and its description's words, per language.
CALENDAR_TITLES: dict[str, dict[bool, str]] = {
    "en": {False: "Free consultation", True: "Appointment"},
    "ru": {False: "Бесплатная консультация", True: "Встреча"},
    "es": {False: "Consulta gratuita", True: "Cita"},
    "ar": {False: "استشارة مجانية", True: "موعد"},
}
CALENDAR_WORDS: dict[str, dict[str, str]] = {
    "en": {"reference": "Reference {ref}.", "join": "Join: {url}", "later": "The link follows."},
    "ru": {
        "reference": "Номер запроса {ref}.",
        "join": "Подключиться: {url}",
        "later": "Ссылка придёт отдельно.",
    },
    "es": {
        "reference": "Referencia {ref}.",
        "join": "Unirse: {url}",
        "later": "El enlace llegará aparte.",
    },
    "ar": {
        "reference": "الرقم المرجعي {ref}.",
        "join": "الانضمام: {url}",
        "later": "سيصلكم الرابط لاحقاً.",
    },
}


def _consultation(session: Session, row: OutboxMessage) -> Consultation:
    # Fresh from the database: the worker's session may hold an older copy from its batch.
    c = session.get(Consultation, uuid.UUID(row.params["consultation_id"]), populate_existing=True)
    if c is None:
        raise PermanentFailure("consultation is gone")
    return c


def _expert_zone(session: Session, expert_id: uuid.UUID, fallback: str) -> str:
    row = session.get(ExpertAvailability, expert_id)
    return row.timezone if row is not None else fallback


def _password(c: Consultation) -> str | None:
    if c.meeting_password_enc is None or c.meeting_password_key_id is None:
        return None
    return decrypt_with_master(
        c.meeting_password_key_id, c.meeting_password_enc, str(c.id).encode()
    ).decode()


def _calendar_part(ics_bytes: bytes, method: str) -> list[mail.Attachment]:
    """The same file as a ``text/calendar; method=...`` alternative and as ``invite.ics``."""
    return [
        mail.Attachment(
            filename="invite.ics",
            content=ics_bytes,
            maintype="text",
            subtype="calendar",
            params={"method": method, "charset": "UTF-8"},
        )
    ]


@handler(INVITE_KIND)
def send_invite(session: Session, row: OutboxMessage) -> None:
    c = _consultation(session, row)
    req = session.get(IntakeRequest, c.request_id, populate_existing=True)
    if req is None:
        raise PermanentFailure("request is gone")
    if row.params["to"] == "expert":
        _send_to_expert(session, row, c, req)
    else:
        _send_to_requester(session, row, c, req)


def _event(row: OutboxMessage, c: Consultation, expert_id: uuid.UUID | None = None) -> str | None:
    """What this row tells its recipient now, or None when another notice says it: a
    cancellation is told by the cancellation's own row, and a move away by the move's."""
    event = str(row.params.get("event", "booked"))
    if event in CANCELLED_EVENTS:
        return event
    if expert_id is not None and c.expert_id != expert_id:
        return "cancelled" if event == "moved" else None
    if c.status == ConsultationStatus.cancelled:
        return None
    return event


def _send_to_requester(
    session: Session, row: OutboxMessage, c: Consultation, req: IntakeRequest
) -> None:
    if req.status == RequestStatus.spam:
        raise PermanentFailure("request was marked as spam; nothing is sent")
    pii = intake.reveal_pii(req)
    token = intake.reveal_token(req)
    if pii is None or token is None:
        raise PermanentFailure("request data erased")
    event = _event(row, c)
    if event is None:
        log.info("invite_superseded", consultation_id=str(c.id), to="requester")
        return
    settings = get_settings()
    lang = template_language(req.language, LANGUAGES)
    cancelled = event in CANCELLED_EVENTS
    profile = session.get(ExpertProfile, c.expert_id)
    expert_name = profile.public_name if profile is not None else ""
    name = pii.get("contact_name") or pii["full_name"]
    base = settings.public_url
    context = {
        "name": name,
        "reference": req.reference,
        "event": event,
        "discreet": req.discreet,
        "when_words": dates.span_in_words(c.start_at, c.end_at, req.timezone, lang),
        "start_words": dates.when_in_words(c.start_at, req.timezone, lang),
        "expert_name": expert_name,
        "join_url": c.meeting_join_url,
        "password": _password(c),
        "link": f"{base}/r/{req.reference}#token={token}",
        "booking_link": f"{base}/r/{req.reference}/book#token={token}",
    }
    text, html = render_pair(f"scheduling/invite_{lang}", context)
    sender = settings.mail_from_discreet if req.discreet else settings.mail_from
    organizer_name, organizer_email = parseaddr(sender)
    method: ics.Method = "CANCEL" if cancelled else "REQUEST"
    title = CALENDAR_TITLES[lang][req.discreet]
    words = CALENDAR_WORDS[lang]
    invite = ics.build(
        ics.Invite(
            uid=c.ical_uid,
            sequence=c.ical_sequence,
            method=method,
            start=c.start_at,
            end=c.end_at,
            stamp=now(),
            summary=f"{title} [{req.reference}]",
            description=words["reference"].format(ref=req.reference)
            + (
                ""
                if cancelled
                else " " + words["join"].format(url=c.meeting_join_url)
                if c.meeting_join_url
                else " " + words["later"]
            ),
            organizer_email=organizer_email,
            organizer_name=organizer_name or organizer_email,
            attendee_email=pii["email"],
            attendee_name=name,
            join_url=c.meeting_join_url,
        )
    )
    message = mail.build_message(
        to=pii["email"],
        subject=SUBJECTS[lang][(event, req.discreet)].format(ref=req.reference),
        text=text,
        html=html,
        sender=sender,
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
        alternatives=_calendar_part(invite, method),
        attachments=_calendar_part(invite, method),
    )
    send_to_requester(session, req, message, outbox_id=row.id, what=event)


def _send_to_expert(
    session: Session, row: OutboxMessage, c: Consultation, req: IntakeRequest
) -> None:
    expert_id = uuid.UUID(row.params.get("expert_id") or str(c.expert_id))
    profile = session.get(ExpertProfile, expert_id)
    if profile is None:
        raise PermanentFailure("expert is gone")
    event = _event(row, c, expert_id)
    if event is None:
        log.info("invite_superseded", consultation_id=str(c.id), to="expert")
        return
    cancelled = event in CANCELLED_EVENTS
    context = {
        "event": event,
        "cancelled": cancelled,
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        # In words, in the expert's own language and zone (their settings).
        "when_words": span_for(c.start_at, c.end_at, recipient(session, expert_id)),
        "join_url": None if cancelled else c.meeting_join_url,
    }
    text, html = render_pair("scheduling/invite_expert", context)
    settings = get_settings()
    organizer_name, organizer_email = parseaddr(settings.mail_from)
    method: ics.Method = "CANCEL" if cancelled else "REQUEST"
    invite = ics.build(
        ics.Invite(
            uid=c.ical_uid,
            sequence=c.ical_sequence,
            method=method,
            start=c.start_at,
            end=c.end_at,
            stamp=now(),
            summary=f"Consultation {req.reference} ({req.country_of_origin})",
            description=f"Reference {req.reference}, {context['country']}.",
            organizer_email=organizer_email,
            organizer_name=organizer_name or organizer_email,
            attendee_email=profile.email,
            attendee_name=profile.public_name,
            join_url=None if cancelled else c.meeting_join_url,
        )
    )
    verb = (
        "cancelled"
        if cancelled
        else {"booked": "booked", "link": "meeting link"}.get(event, "changed")
    )
    mail.send(
        mail.build_message(
            to=profile.email,
            subject=f"Consultation {verb} [{req.reference}]",
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
            alternatives=_calendar_part(invite, method),
            attachments=_calendar_part(invite, method),
        )
    )


# Meetings ------------------------------------------------------------------------------------


def _spec_inputs(session: Session, c: Consultation) -> tuple[ExpertProfile, IntakeRequest, str]:
    profile = session.get(ExpertProfile, c.expert_id)
    req = session.get(IntakeRequest, c.request_id)
    if profile is None or req is None:
        raise PermanentFailure("expert or request is gone")
    return profile, req, _expert_zone(session, c.expert_id, profile.timezone)


def _tried_before(row: OutboxMessage) -> bool:
    """An earlier attempt of this row may have reached the provider (a timeout, a worker that
    died mid-call, a staff retry of a dead letter)."""
    return row.attempts > 1 or row.last_error is not None


@handler(MEETING_CREATE)
def create_meeting(session: Session, row: OutboxMessage) -> None:
    """Create the meeting of a booked consultation that has none yet, then send both sides
    the invite again with the link (SEQUENCE + 1).

    One meeting per booking: a retried row first looks for the meeting an earlier attempt
    made (its marker is in the agenda). No row lock is held during the provider's calls; the
    consultation is locked and read again afterwards, and a meeting it no longer wants
    (cancelled, moved to another expert meanwhile) is deleted through the outbox."""
    c = _consultation(session, row)
    if c.status != ConsultationStatus.booked or c.meeting_external_id is not None:
        return  # cancelled meanwhile, or made already (a retry after success)
    profile, req, zone = _spec_inputs(session, c)
    spec = meeting_spec(c, profile, req, zone, marker=create_marker(c.id, row.id))
    provider = get_meeting_provider()
    info = provider.find(spec) if _tried_before(row) else None
    if info is None:
        info = provider.create(spec)
    if info.provider == "zoom":
        # A meeting found again was a create at Zoom too: it counts against the cap.
        count_meeting_write(session, spec.host)
    locked = session.get(Consultation, c.id, with_for_update=True, populate_existing=True)
    if locked is not None and locked.meeting_external_id == str(info.external_id):
        return  # another attempt of this row (after a lease ran out) found and stored it
    if (
        locked is None
        or locked.status != ConsultationStatus.booked
        or locked.meeting_external_id is not None
        or locked.expert_id != profile.user_id
    ):
        discard_meeting(session, c.id, info)
        log.info("meeting_not_wanted_any_more", consultation_id=str(c.id))
        return
    store_meeting(locked, info)
    locked.ical_sequence += 1
    session.flush()
    if locked.start_at != spec.start or locked.end_at != spec.start + dt.timedelta(
        minutes=spec.duration_minutes
    ):
        # Rescheduled while the meeting was being made: move it too.
        outbox.enqueue(session, MEETING_UPDATE, {"consultation_id": str(locked.id)})
    send_invites(session, locked, "link")
    log.info("meeting_created", consultation_id=str(c.id), provider=info.provider)


@handler(MEETING_UPDATE)
def update_meeting(session: Session, row: OutboxMessage) -> None:
    c = _consultation(session, row)
    if c.status != ConsultationStatus.booked or c.meeting_external_id is None:
        return
    provider = get_meeting_provider()
    if provider.name != c.meeting_provider:
        log.warning("meeting_provider_changed", consultation_id=str(c.id))
        return
    profile, req, zone = _spec_inputs(session, c)
    spec = meeting_spec(c, profile, req, zone)
    provider.update(c.zoom_meeting_id or c.meeting_external_id, spec)
    if provider.name == "zoom":
        count_meeting_write(session, spec.host)


@handler(MEETING_DELETE)
def delete_meeting(session: Session, row: OutboxMessage) -> None:
    provider = get_meeting_provider()
    if provider.name != row.params.get("provider"):
        log.warning("meeting_provider_changed", consultation_id=row.params["consultation_id"])
        return
    provider.delete(row.params["external_id"])
