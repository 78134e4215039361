"""Reading a calendar over the network, politely: a conditional GET for an ICS address
(``If-None-Match`` / ``If-Modified-Since`` with the validators of the last answer), a CalDAV
time-range query for an account; timeouts, a size limit, redirects only to addresses that pass
the same checks. Returns raw iCalendar data (``app/calendars/parse.py`` reads it).

Addresses are checked before each read: http(s) only (``webcal://`` is Apple's and Google's
name for https), https unless ``INTAKE_CALENDAR_ALLOW_HTTP``, and no address of this machine or
a private network unless ``INTAKE_CALENDAR_ALLOW_PRIVATE_ADDRESSES`` (a calendar address is
typed by a person; the worker must not become a way into the network).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.calendars.settings import CalendarSettings
from app.core.http import tls_context

USER_AGENT = "asylum-intake calendar reader"
MAX_REDIRECTS = 5


class FetchFailed(Exception):
    """The calendar could not be read; the message says why in a sentence (shown to people,
    never containing the secret address or the password)."""


@dataclass(frozen=True)
class Fetched:
    not_modified: bool
    data: list[bytes] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None


def normalise_address(raw: str) -> str:
    """``webcal://`` as ``https://``; anything but http(s) with a host raises ValueError."""
    text = raw.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals"):
        scheme = "https"
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an https:// (or webcal://) address")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def address_hint(address: str) -> str:
    """What people see of a secret address: its host and the last four characters."""
    parts = urlsplit(address)
    tail = (parts.path.removesuffix(".ics") + ("?" + parts.query if parts.query else ""))[-4:]
    return f"{parts.hostname or '?'} …{tail}"[:200]


def check_address(address: str, settings: CalendarSettings) -> None:
    """Refuse what the settings do not allow (scheme, private or loopback hosts)."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchFailed("The address is not an https:// address.")
    if parts.scheme == "http" and not settings.allow_http:
        raise FetchFailed("The address must start with https:// (plain http is refused).")
    if settings.allow_private_addresses:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed("The calendar's host name could not be found.") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise FetchFailed("The address points into a private network: refused.")


def fetch_ics(
    address: str,
    *,
    etag: str | None,
    last_modified: str | None,
    settings: CalendarSettings,
) -> Fetched:
    """GET the ICS address, conditionally; at most ``max_bytes`` read."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx.Timeout(settings.timeout_seconds)
    url = address
    with httpx.Client(
        timeout=timeout, verify=tls_context(), follow_redirects=False, headers=headers
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_address(url, settings)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = normalise_address(
                            str(response.url.join(response.headers["location"]))
                        )
                        continue
                    return _answer(response, settings)
            except httpx.TimeoutException:
                raise FetchFailed("The calendar did not answer in time.") from None
            except httpx.HTTPError as exc:
                raise FetchFailed(
                    f"The calendar could not be reached ({type(exc).__name__})."
                ) from None
            except ValueError:
                raise FetchFailed(
                    "The calendar redirected to an address that is not https."
                ) from None
    raise FetchFailed("The calendar redirected too many times.")


def _answer(response: httpx.Response, settings: CalendarSettings) -> Fetched:
    if response.status_code == 304:
        return Fetched(not_modified=True)
    if response.status_code in (401, 403):
        raise FetchFailed(
            f"The calendar refused the reading (HTTP {response.status_code}): the address may "
            "have been reset; copy the secret address again."
        )
    if response.status_code == 404:
        raise FetchFailed("The calendar address was not found (HTTP 404).")
    if response.status_code != 200:
        raise FetchFailed(f"The calendar answered HTTP {response.status_code}.")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_bytes:
        raise FetchFailed(f"The calendar is larger than {settings.max_bytes} bytes: refused.")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > settings.max_bytes:
            raise FetchFailed(f"The calendar is larger than {settings.max_bytes} bytes: refused.")
        chunks.append(chunk)
    return Fetched(
        not_modified=False,
        data=[b"".join(chunks)],
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )


def fetch_caldav(
    address: str,
    *,
    username: str,
    password: str,
    start: dt.datetime,
    end: dt.datetime,
    settings: CalendarSettings,
) -> Fetched:
    """The events of every calendar of the account (or of the one calendar the address names)
    over ``[start, end)``, as the server stores them (recurrences are expanded by our parser)."""
    from caldav.davclient import DAVClient  # only the worker's refresh needs the library
    from caldav.lib import error as caldav_error

    check_address(address, settings)
    try:
        with DAVClient(
            url=address,
            username=username,
            password=password,
            timeout=int(settings.timeout_seconds),
            headers={"User-Agent": USER_AGENT},
        ) as client:
            try:
                calendars = list(client.principal().calendars())  # type: ignore[no-untyped-call]
            except caldav_error.NotFoundError:
                calendars = []
            if not calendars:
                calendars = [client.calendar(url=address)]  # type: ignore[no-untyped-call]
            data: list[bytes] = []
            size = 0
            for calendar in calendars:
                for found in calendar.search(start=start, end=end, event=True, expand=False):
                    raw = found.data
                    blob = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
                    size += len(blob)
                    if size > settings.max_bytes:
                        raise FetchFailed(
                            f"The calendar is larger than {settings.max_bytes} bytes: refused."
                        )
                    data.append(blob)
    except FetchFailed:
        raise
    except caldav_error.AuthorizationError:
        raise FetchFailed("The CalDAV server refused the user name or app password.") from None
    except caldav_error.DAVError as exc:
        raise FetchFailed(
            f"The CalDAV server refused the reading ({type(exc).__name__})."
        ) from None
    except (OSError, ValueError) as exc:
        raise FetchFailed(
            f"The CalDAV server could not be reached ({type(exc).__name__})."
        ) from None
    except Exception as exc:  # the client library's transport raises its own kinds
        raise FetchFailed(f"The CalDAV server could not be read ({type(exc).__name__}).") from None
    return Fetched(not_modified=False, data=data)
