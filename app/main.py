"""The FastAPI application: routers from every domain, one error shape, request ids."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import structlog
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from app.accounts.router import admin_router as admin_users_router
from app.accounts.router import auth_router
from app.audit.middleware import AuditMiddleware
from app.audit.router import router as audit_router
from app.calendars.router import feed_router as calendar_feed_router
from app.calendars.router import router as calendars_router
from app.cases.router import router as cases_router
from app.core import handlers
from app.core.body_limit import BodySizeLimitMiddleware
from app.core.logging import configure_logging
from app.core.middleware import NoStoreMiddleware, RequestContextMiddleware
from app.core.settings import get_settings
from app.documents.router import admin_router as admin_documents_router
from app.documents.router import router as documents_router
from app.experts.router import admin_router as admin_experts_router
from app.experts.router import desk_router as expert_desk_router
from app.experts.router import directory_router as experts_router
from app.health.metrics import HttpMetrics
from app.health.router import router as health_router
from app.inbound.router import set_aside_router as inbound_set_aside_router
from app.inbound.router import triage_router as inbound_triage_router
from app.inbound.router import webhook_router as inbound_webhook_router
from app.intake.router import LIMITED_ROUTES as INTAKE_LIMITED_ROUTES
from app.intake.router import router as intake_router
from app.meetings.router import host_link_router, webhook_router
from app.notifications.router import admin_router as admin_mail_router
from app.outbox.router import router as outbox_router
from app.privacy.router import admin_router as admin_privacy_router
from app.privacy.router import requester_router as privacy_router
from app.queue.router import router as queue_router
from app.reference.router import admin_router as admin_reference_router
from app.reference.router import public_router as reference_router
from app.replies.router import admin_router as admin_saved_replies_router
from app.replies.router import router as saved_replies_router
from app.reports.router import router as reports_router
from app.roster.router import admin_router as admin_roster_router
from app.roster.router import case_router as escalation_router
from app.routing.router import router as routing_router
from app.scheduling.router import availability_router
from app.scheduling.router import requests_router as consultations_router
from app.sendouts.router import admin_router as admin_sample_reports_router
from app.sla.router import router as contacts_router
from app.web import auth as page_auth
from app.web.account import router as account_pages
from app.web.admin_experts import router as admin_expert_pages
from app.web.admin_regions import router as admin_region_pages
from app.web.admin_roster import router as admin_roster_pages
from app.web.admin_samples import router as admin_sample_pages
from app.web.apply_steps import LIMITED_ROUTES as APPLY_STEPS_LIMITED_ROUTES
from app.web.apply_steps import router as apply_steps_pages
from app.web.booking import router as booking_pages
from app.web.calendars import router as calendar_pages
from app.web.docs import router as api_docs
from app.web.escalations import router as escalation_pages
from app.web.expert import router as expert_pages
from app.web.getting_started import router as getting_started_pages
from app.web.my_account import router as my_account_pages
from app.web.offers import router as offer_pages
from app.web.operations import router as operations_pages
from app.web.people import router as people_pages
from app.web.public import LIMITED_ROUTES as PAGE_LIMITED_ROUTES
from app.web.public import STATIC_DIR
from app.web.public import router as public_pages
from app.web.reports import router as report_pages
from app.web.saved_replies import router as saved_reply_pages
from app.web.security import SecureTransportMiddleware
from app.web.set_aside import router as set_aside_pages
from app.web.sign_in import LIMITED_ROUTES as SIGN_IN_LIMITED_ROUTES
from app.web.sign_in import router as sign_in_pages
from app.web.staff import router as staff_pages
from app.whatsapp.router import case_router as whatsapp_case_router
from app.whatsapp.router import webhook_router as whatsapp_webhook_router

DESCRIPTION = """
The intake service for expert witness reports in asylum cases.

**Two kinds of caller.** Staff, experts and admins sign in (`POST /api/v1/auth/login`) and send
`Authorization: Bearer <user_token>` (prefix `ut_`). Requesters use the link token they received
on submission (prefix `rl_`), never a user token.

**Errors** always have the same shape:
`{"error": {"code", "message", "fields": [{"field", "message"}], "details"}, "request_id"}`.
"""


def build_routes(app: FastAPI) -> None:
    """Have FastAPI build every included router's routes now. It builds them on the first
    request that reaches each router, which is over 100 ms of CPU on the event loop: every other
    request of the process would wait."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for _ in contexts():
                pass


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Before serving, off the event loop. Not in tests: a test process builds each router on
    # its first use, once (routers are shared by its apps, see _included), and most tests use
    # a few (tests/web/test_web_event_loop.py builds them like this).
    if get_settings().env != "test":
        await anyio.to_thread.run_sync(build_routes, app)
        # What start-up made lives as long as the process: keep it out of the collector's full
        # passes, which otherwise stop every thread (the event loop too) for 50-130 ms.
        gc.collect()
        gc.freeze()
    yield


_INCLUDED: dict[int, BaseRoute] = {}  # by id(): an APIRouter is not hashable; all live forever


def _included(router: APIRouter) -> BaseRoute:
    """``router`` as included in an app, made once per process and shared by every app.

    FastAPI builds an included router's routes (dependency trees, response models) lazily, on
    the first request that walks past them, and again for every new app. Production makes one
    app, but the suite makes one per test, and rebuilding was over half of a page test's CPU.
    The input guard is added here as ``handlers.install`` adds it to the app's own routes.
    Not supported on these routes, being shared: ``app.dependency_overrides``."""
    included = _INCLUDED.get(id(router))
    if included is None:
        holder = APIRouter()
        holder.include_router(router, dependencies=handlers.INPUT_GUARDS)
        (included,) = holder.routes
        included = _INCLUDED.setdefault(id(router), included)
    return included


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    app.router.routes.append(_included(router))


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.resolved_log_format, settings.log_level)
    if settings.env == "production" and settings.metrics_token is None:
        # /metrics answers 404 then (app/health/service.py): say why once, at start.
        structlog.get_logger("app.main").warning(
            "metrics_off_without_token", advice="set INTAKE_METRICS_TOKEN to scrape /metrics"
        )
    app = FastAPI(
        title="asylum-intake",
        version="0.1.0",
        description=DESCRIPTION,
        # Both served by app/web/docs.py: Swagger UI's files from the service under the pages'
        # CSP (FastAPI's page loads them from a CDN with an inline script).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    handlers.install(app)
    page_auth.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After"],
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit=settings.max_request_body_bytes,
        routes=INTAKE_LIMITED_ROUTES
        | PAGE_LIMITED_ROUTES
        | APPLY_STEPS_LIMITED_ROUTES
        | SIGN_IN_LIMITED_ROUTES,
    )
    app.state.http_metrics = HttpMetrics()
    app.add_middleware(SecureTransportMiddleware)
    app.add_middleware(NoStoreMiddleware, exempt=("/static/", "/docs/assets/"))
    # Inside the request-id middleware: records case access and admin changes.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestContextMiddleware, observer=app.state.http_metrics.observe)
    _add_routes(app, health_router)
    _add_routes(app, api_docs)
    _add_routes(app, auth_router)
    _add_routes(app, admin_users_router)
    _add_routes(app, account_pages)
    _add_routes(app, intake_router)
    _add_routes(app, reference_router)
    _add_routes(app, admin_reference_router)
    _add_routes(app, documents_router)
    _add_routes(app, admin_documents_router)
    _add_routes(app, admin_experts_router)
    _add_routes(app, experts_router)
    _add_routes(app, expert_desk_router)
    _add_routes(app, routing_router)
    _add_routes(app, offer_pages)
    _add_routes(app, apply_steps_pages)
    _add_routes(app, public_pages)
    _add_routes(app, booking_pages)
    _add_routes(app, sign_in_pages)
    _add_routes(app, my_account_pages)
    _add_routes(app, staff_pages)
    _add_routes(app, getting_started_pages)
    _add_routes(app, operations_pages)
    _add_routes(app, people_pages)
    _add_routes(app, admin_expert_pages)
    _add_routes(app, admin_region_pages)
    _add_routes(app, admin_sample_pages)
    _add_routes(app, admin_roster_pages)
    _add_routes(app, expert_pages)
    _add_routes(app, calendar_pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_routes(app, outbox_router)
    _add_routes(app, admin_mail_router)
    _add_routes(app, availability_router)
    _add_routes(app, consultations_router)
    _add_routes(app, calendars_router)
    _add_routes(app, calendar_feed_router)
    _add_routes(app, admin_sample_reports_router)
    _add_routes(app, contacts_router)
    _add_routes(app, queue_router)
    _add_routes(app, cases_router)
    _add_routes(app, saved_replies_router)
    _add_routes(app, admin_saved_replies_router)
    _add_routes(app, saved_reply_pages)
    _add_routes(app, admin_roster_router)  # roster, escalation chain, reports
    _add_routes(app, escalation_router)
    _add_routes(app, escalation_pages)
    _add_routes(app, reports_router)
    _add_routes(app, report_pages)
    _add_routes(app, set_aside_pages)
    _add_routes(app, host_link_router)
    _add_routes(app, webhook_router)
    _add_routes(app, inbound_webhook_router)
    _add_routes(app, whatsapp_webhook_router)
    _add_routes(app, whatsapp_case_router)
    _add_routes(app, inbound_triage_router)
    _add_routes(app, inbound_set_aside_router)
    _add_routes(app, audit_router)
    _add_routes(app, admin_privacy_router)
    _add_routes(app, privacy_router)
    return app
