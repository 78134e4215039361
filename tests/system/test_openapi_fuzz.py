"""Every operation of the OpenAPI document, fuzzed in-process (schemathesis over ASGI) as admin,
staff and an expert, inside the test's rolled-back transaction.

The data: the authorisation matrix's world (a request with an accepted expert and a booked
consultation, a CV, a second request), plus a roster shift. Each operation gets a few examples
generated from its schema, deterministically (derandomize): about half with the world's real
path values (so answers carry real objects through the response checks), half generated; then
a couple that violate the schema (negative data). An operation the role may not call gets one
example: its refusal must be documented too. Each
example runs in a savepoint rolled back afterwards, so none changes what the next one sees (a
sign-out, a deletion).

The checks, and why these:
- ``not_a_server_error``: no input answers 5xx.
- ``status_code_conformance``: every status answered is documented for the operation.
- ``content_type_conformance``: the body's type is the documented one (JSON, CSV, files).
- ``response_schema_conformance``: the body matches the documented model, errors included.
Not run: ``response_headers_conformance`` (no operation documents headers), the negative-data and
positive-data acceptance checks (generated values that pass the schema may still be refused by
rules a schema cannot say: a slot that is not free, an illegal status move; and a refused
negative value is already covered by the checks above), and the stateful resource checks
(use-after-free and the like need links between operations that the document does not declare).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from functools import cache
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from app.models import User
from tests import authz_matrix as matrix
from tests.factories import shift
from tests.system.test_authz_matrix import world  # noqa: F401  (the fixture)

pytestmark = pytest.mark.heavy

# Examples per operation a role may call (one for an operation it may not). Enough to reach
# every branch of the schemas' types; more is a longer run, not another kind of input.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# Then a couple of schema-violating examples (wrong types, out-of-range values, bodies that
# are not JSON): each must be a documented 4xx in the error shape, never a 5xx.
NEGATIVE_EXAMPLES = max(1, EXAMPLES // 2)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROLES = ("admin", "staff", "expert_assigned")
# Real objects this test adds to the matrix's world (there: ids that do not exist).
OWN_PATH_VALUES = {"shift_id": "@shift_id"}


@cache
def _app_and_operations() -> tuple[Any, list[Any]]:
    """Built once per run: the document of ~130 operations takes seconds to load."""
    from app.main import create_app

    app = create_app()
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    return app, [result.ok() for result in schema.get_all_operations()]


def _allowed(role: str, method: str, path: str) -> bool:
    row = matrix.MATRIX.get((method, path))
    return row is None or row.statuses[matrix.ROLES.index(role)] not in (401, 403)


def _real_path(path: str, values: dict[str, str]) -> dict[str, str] | None:
    names = re.findall(r"\{([a-z_]+)\}", path)
    if not names:
        return None
    found = {}
    for name in names:
        value = OWN_PATH_VALUES.get(name, matrix.PATH_VALUES.get(name))
        if value is None:
            return None
        found[name] = values.get(value, value) if value.startswith("@") else value
    return found


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(
    db: Session,
    world: dict[str, Any],  # noqa: F811
    role: str,
) -> None:
    app, operations = _app_and_operations()
    values = dict(world["values"])
    staff_user = db.get(User, uuid.UUID(values["@staff_id"]))
    assert staff_user is not None
    # A night shift: its end is before its start.
    values["@shift_id"] = str(shift(db, staff_user, 2, "22:00", "06:00").id)
    headers = world["headers"][role]
    failures: list[str] = []
    seen: dict[str, list[int]] = {}
    started = time.monotonic()
    with asgi.get_client(app) as session:
        for operation in operations:
            allowed = _allowed(role, operation.method.upper(), operation.path)
            real = _real_path(operation.path, values) if allowed else None
            passes = [(GenerationMode.POSITIVE, EXAMPLES if allowed else 1)]
            if allowed:
                passes.append((GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))
            for mode, examples in passes:
                strategy = operation.as_strategy(mode)
                if real is not None:
                    strategy = st.one_of(
                        strategy, operation.as_strategy(mode, path_parameters=real)
                    )

                @given(case=strategy)
                @settings(
                    max_examples=examples,
                    derandomize=True,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: Any) -> None:
                    savepoint = db.begin_nested()
                    db.connection()  # SAVEPOINT now, not on the session's next statement
                    try:
                        response = case.call(session=session, headers=headers)
                        seen.setdefault(case.operation.label, []).append(response.status_code)
                        case.validate_response(response, checks=CHECKS)
                    finally:
                        savepoint.rollback()
                        db.expire_all()

                try:
                    run()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to make invalid
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # schemathesis' FailureGroup: a BaseExceptionGroup
                    failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    if os.environ.get("FUZZ_STATS") == "1":
        for label, statuses in seen.items():
            print(role, label, statuses)
    print(f"{role}: {len(operations)} operations in {time.monotonic() - started:.1f}s")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def test_every_documented_422_and_400_is_the_one_error_shape() -> None:
    """FastAPI documents its own 422 as ``{"detail": [...]}``; what is answered is the error
    shape of app/core/errors.py, and the document says so."""
    app, _ = _app_and_operations()
    document = app.openapi()
    assert "HTTPValidationError" not in str(document)
    unprocessable = [
        op["responses"]["422"]
        for ops in document["paths"].values()
        for op in ops.values()
        if "422" in op.get("responses", {})
    ]
    assert len(unprocessable) > 50
    for answer in unprocessable:
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, answer
    # A body that is not JSON at all is a 400 before any field is read: documented wherever
    # an operation takes a body.
    with_body = [
        op for ops in document["paths"].values() for op in ops.values() if "requestBody" in op
    ]
    assert len(with_body) >= 30
    for op in with_body:
        schema = op["responses"]["400"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, op["operationId"]


def test_roster_shift_times_are_wall_clock_times_as_documented(
    db: Session,
    world: dict[str, Any],  # noqa: F811
    client: Any,
) -> None:
    """A shift's times are local to its zone: documented as HH:MM[:SS], never as OpenAPI's
    ``time`` (which carries an offset); a time sent with an offset is refused."""
    app, _ = _app_and_operations()
    shift_schema = app.openapi()["components"]["schemas"]["ShiftOut"]["properties"]
    pattern = re.compile(shift_schema["starts_local"]["pattern"])
    assert "format" not in shift_schema["starts_local"]
    admin = world["headers"]["admin"]
    body = {"user_id": world["values"]["@staff_id"], "weekday": 2, "starts_local": "22:00"}
    created = client.post(
        "/api/v1/admin/roster/shifts", json=body | {"ends_local": "06:00"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert pattern.match(created.json()["starts_local"]) and pattern.match(
        created.json()["ends_local"]
    )
    offset = client.post(
        "/api/v1/admin/roster/shifts", json=body | {"ends_local": "06:00+01:00"}, headers=admin
    )
    assert offset.status_code == 422, offset.text
    assert [f["field"] for f in offset.json()["error"]["fields"]] == ["ends_local"]
