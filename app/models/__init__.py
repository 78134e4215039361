"""Every table, in one package, so domains share tables without importing each other."""

from app.models.accounts import (
    AccountToken,
    AccountTokenPurpose,
    LoginThrottle,
    RecoveryCode,
    Role,
    User,
    UserLanguage,
    UserSession,
)
from app.models.assignments import (
    LIVE_ASSIGNMENT,
    Assignment,
    AssignmentStatus,
    ExpertNotification,
    RoutingDecision,
    RoutingRule,
)
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.calendars import (
    CalendarBusy,
    CalendarConflictAlert,
    CalendarConnection,
    CalendarKind,
    ConsultationFeed,
)
from app.models.contacts import ContactVia, RequestContact
from app.models.desk import RequestOwner, SavedReply
from app.models.documents import Document, DocumentKind, DocumentStorage
from app.models.experts import (
    AbsenceKind,
    ExpertCountry,
    ExpertProfile,
    ExpertRegion,
    UnavailablePeriod,
)
from app.models.holds import SlotHold as SlotHold
from app.models.inbound import FlaggedAddress, InboundAckCount, InboundSetAside, SetAsideReason
from app.models.meetings import ZoomDailyUsage, ZoomWebhookEvent
from app.models.messages import (
    DeliveryState,
    MessageDirection,
    MessageKind,
    RequestMessage,
    RequestNote,
)
from app.models.ops import ProcessHeartbeat, WatchdogAlert
from app.models.outbox import OutboxMessage, OutboxStatus
from app.models.reference import GENERAL_POOL, CivicSpaceRating, Country, Region
from app.models.requests import (
    CaseStage,
    ContactChannel,
    IdempotencyRecord,
    IntakeRequest,
    RequesterType,
    RequestHistory,
    RequestSource,
    RequestStatus,
    SecretKey,
)
from app.models.roster import DutyLevel, Escalation, OverrideKind, RosterOverride, RosterShift
from app.models.scheduling import (
    BOOKED_OVERLAP_CONSTRAINT,
    BUSY_STATUSES,
    AvailabilityOverride,
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    guard_band,
)
from app.models.whatsapp import (
    WhatsAppContact,
    WhatsAppInbox,
    WhatsAppMessage,
    WhatsAppStatus,
)

__all__ = [
    "BOOKED_OVERLAP_CONSTRAINT",
    "BUSY_STATUSES",
    "GENERAL_POOL",
    "LIVE_ASSIGNMENT",
    "AbsenceKind",
    "AccountToken",
    "AccountTokenPurpose",
    "Assignment",
    "AssignmentStatus",
    "AuditEvent",
    "AvailabilityOverride",
    "Base",
    "CalendarBusy",
    "CalendarConflictAlert",
    "CalendarConnection",
    "CalendarKind",
    "CaseStage",
    "CivicSpaceRating",
    "Consultation",
    "ConsultationFeed",
    "ConsultationStatus",
    "ContactChannel",
    "ContactVia",
    "Country",
    "DeliveryState",
    "Document",
    "DocumentKind",
    "DocumentStorage",
    "DutyLevel",
    "Escalation",
    "ExpertAvailability",
    "ExpertCountry",
    "ExpertNotification",
    "ExpertProfile",
    "ExpertRegion",
    "FlaggedAddress",
    "IdempotencyRecord",
    "InboundAckCount",
    "InboundSetAside",
    "IntakeRequest",
    "LoginThrottle",
    "MessageDirection",
    "MessageKind",
    "OutboxMessage",
    "OutboxStatus",
    "OverrideKind",
    "ProcessHeartbeat",
    "RecoveryCode",
    "Region",
    "RequestContact",
    "RequestHistory",
    "RequestMessage",
    "RequestNote",
    "RequestOwner",
    "RequestSource",
    "RequestStatus",
    "RequesterType",
    "Role",
    "RosterOverride",
    "RosterShift",
    "RoutingDecision",
    "RoutingRule",
    "SavedReply",
    "SecretKey",
    "SetAsideReason",
    "UnavailablePeriod",
    "User",
    "UserLanguage",
    "UserSession",
    "WatchdogAlert",
    "WhatsAppContact",
    "WhatsAppInbox",
    "WhatsAppMessage",
    "WhatsAppStatus",
    "ZoomDailyUsage",
    "ZoomWebhookEvent",
    "guard_band",
]
