# ruff: noqa: RUF001 - Cyrillic letters in the Russian texts are meant
"""The approved message templates the service sends outside the 24-hour window, and their
texts in each language we write in.

Each template is registered in Meta's WhatsApp Manager under the name below, in every language
below, with the same body (``{{1}}``... are its parameters); README "Connecting a WhatsApp
number" lists them. A discreet request gets the ``_neutral`` variant: no word of asylum,
reports or experts. Outside the window Meta refuses free text (131047): only these go.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("en", "ru", "es", "ar")


@dataclass(frozen=True)
class Template:
    key: str  # what staff and the code choose: acknowledgement, tried_to_reach, reminder
    name: str  # the name approved in Meta
    params: int
    bodies: dict[str, str]


_T = {
    "acknowledgement": (
        "intake_acknowledgement",
        1,
        {
            "en": "We received your request for an expert report. Your reference is {{1}}. "
            "A person will answer you here within one hour.",
            "ru": "Мы получили ваш запрос на экспертное заключение. Ваш номер: {{1}}. "
            "Сотрудник ответит вам здесь в течение часа.",
            "es": "Recibimos su solicitud de informe pericial. Su referencia es {{1}}. "
            "Una persona le responderá aquí en menos de una hora.",
            "ar": "تلقّينا طلبك للحصول على تقرير خبير. رقمك المرجعي {{1}}. "
            "سيردّ عليك أحد موظفينا هنا خلال ساعة.",
        },
    ),
    "acknowledgement_neutral": (
        "intake_acknowledgement_neutral",
        1,
        {
            "en": "Thank you for your message. Your reference is {{1}}. "
            "We will answer you here within one hour.",
            "ru": "Спасибо за сообщение. Ваш номер: {{1}}. Мы ответим вам здесь в течение часа.",
            "es": "Gracias por su mensaje. Su referencia es {{1}}. "
            "Le responderemos aquí en menos de una hora.",
            "ar": "شكرًا على رسالتك. رقمك المرجعي {{1}}. سنردّ عليك هنا خلال ساعة.",
        },
    ),
    "tried_to_reach": (
        "intake_tried_to_reach",
        1,
        {
            "en": "We tried to reach you about your request for an expert report ({{1}}). "
            "Please reply to this message when you can.",
            "ru": "Мы пытались связаться с вами по вашему запросу на экспертное заключение "
            "({{1}}). Пожалуйста, ответьте на это сообщение, когда сможете.",
            "es": "Intentamos comunicarnos con usted sobre su solicitud de informe pericial "
            "({{1}}). Responda a este mensaje cuando pueda.",
            "ar": "حاولنا التواصل معك بخصوص طلبك للحصول على تقرير خبير ({{1}}). "
            "يُرجى الرد على هذه الرسالة عندما تستطيع.",
        },
    ),
    "tried_to_reach_neutral": (
        "intake_tried_to_reach_neutral",
        1,
        {
            "en": "We tried to reach you ({{1}}). Please reply to this message when you can.",
            "ru": "Мы пытались связаться с вами ({{1}}). Пожалуйста, ответьте, когда сможете.",
            "es": "Intentamos comunicarnos con usted ({{1}}). Responda cuando pueda.",
            "ar": "حاولنا التواصل معك ({{1}}). يُرجى الرد عندما تستطيع.",
        },
    ),
    "reminder": (
        "consultation_reminder",
        2,
        {
            "en": "A reminder: your free consultation with our country expert ({{1}}) is on "
            "{{2}}. The link is in your e-mail.",
            "ru": "Напоминаем: ваша бесплатная консультация с экспертом по стране ({{1}}) "
            "состоится {{2}}. Ссылка — в вашем письме.",
            "es": "Le recordamos: su consulta gratuita con nuestro experto del país ({{1}}) es "
            "el {{2}}. El enlace está en su correo.",
            "ar": "تذكير: استشارتك المجانية مع خبيرنا في شؤون البلد ({{1}}) في {{2}}. "
            "الرابط في بريدك الإلكتروني.",
        },
    ),
    "reminder_neutral": (
        "consultation_reminder_neutral",
        2,
        {
            "en": "A reminder: your appointment ({{1}}) is on {{2}}. The link is in your e-mail.",
            "ru": "Напоминаем: ваша встреча ({{1}}) состоится {{2}}. Ссылка — в вашем письме.",
            "es": "Le recordamos: su cita ({{1}}) es el {{2}}. El enlace está en su correo.",
            "ar": "تذكير: موعدك ({{1}}) في {{2}}. الرابط في بريدك الإلكتروني.",
        },
    ),
}

TEMPLATES: dict[str, Template] = {
    key: Template(key, name, params, bodies) for key, (name, params, bodies) in _T.items()
}
#: What staff may choose on a case (the reminder goes with consultations).
STAFF_CHOICES = ("tried_to_reach", "acknowledgement")


def choose(key: str, *, discreet: bool) -> Template:
    """The template for ``key``; the neutral variant for a discreet request."""
    return TEMPLATES[f"{key}_neutral" if discreet else key]


def language_for(requested: str) -> str:
    """The requester's language if we have the template in it, else English."""
    base = (requested or "").split("-")[0].lower()
    return base if base in LANGUAGES else "en"


def render(template: Template, language: str, params: list[str]) -> str:
    text = template.bodies[language]
    for n, value in enumerate(params, start=1):
        text = text.replace("{{" + str(n) + "}}", value)
    return text
