"""Status errors with the codes, reasons and messages kube-apiserver returns.

Mirrors k8s.io/apimachinery/pkg/api/errors: each constructor builds the exact
metav1.Status body the real server sends. Imports nothing from the rest of the fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.k8sfake.meta import JsonObj


@dataclass(frozen=True)
class FieldError:
    """One field.ErrorList entry: `<field>: <type>: <detail>`."""

    field: str
    kind: str  # Required | Invalid | Duplicate | NotSupported | Forbidden
    value: Any = None
    detail: str = ""

    _REASONS = {
        "Required": ("FieldValueRequired", "Required value"),
        "Invalid": ("FieldValueInvalid", "Invalid value"),
        "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
        "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
        "Forbidden": ("FieldValueForbidden", "Forbidden"),
    }

    @property
    def cause_reason(self) -> str:
        """Return the StatusCause reason, e.g. FieldValueRequired."""
        return self._REASONS[self.kind][0]

    @property
    def body(self) -> str:
        """Return the message without the field path, as in a StatusCause."""
        text = self._REASONS[self.kind][1]
        if self.kind in ("Invalid", "Duplicate", "NotSupported"):
            text += ": " + _go_quote(self.value)
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"


def _go_quote(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class StatusError(Exception):
    """An API error carrying the metav1.Status body and HTTP code to send."""

    def __init__(self, code: int, reason: str, message: str, details: JsonObj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JsonObj:
        """Return the Status object as the apiserver serializes it."""
        body: JsonObj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> JsonObj:
    details: JsonObj = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(resource: str, group: str, name: str) -> StatusError:
    """Return 404 NotFound: `pods "x" not found`."""
    qualified = f"{resource}.{group}" if group else resource
    return StatusError(404, "NotFound", f'{qualified} "{name}" not found', _details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> StatusError:
    """Return 409 AlreadyExists: `pods "x" already exists`."""
    qualified = f"{resource}.{group}" if group else resource
    return StatusError(409, "AlreadyExists", f'{qualified} "{name}" already exists', _details(name, group, resource))


def conflict(resource: str, group: str, name: str) -> StatusError:
    """Return 409 Conflict for a stale resourceVersion precondition."""
    qualified = f"{resource}.{group}" if group else resource
    message = (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return StatusError(409, "Conflict", message, _details(name, group, resource))


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """Return 422 Invalid: `Pod "x" is invalid: spec.containers: Required value`."""
    qualified = f"{kind}.{group}" if group else kind
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.cause_reason, "message": e.body, "field": e.field} for e in errors]
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {listed}', details)


def bad_request(message: str) -> StatusError:
    """Return 400 BadRequest with `message`."""
    return StatusError(400, "BadRequest", message)


def expired(message: str) -> StatusError:
    """Return 410 Expired, e.g. `too old resource version: 5 (9)`."""
    return StatusError(410, "Expired", message)


def resource_not_found() -> StatusError:
    """Return the 404 for a path naming no served resource."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> StatusError:
    """Return 405 MethodNotAllowed."""
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str, *, builtin: bool = True) -> StatusError:
    """Return 415 UnsupportedMediaType for a patch type the resource does not accept."""
    accepted = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    if builtin:
        accepted.insert(2, "application/strategic-merge-patch+json")
    message = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return StatusError(415, "UnsupportedMediaType", message, {})


SERVED_MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def acceptable(accept: str) -> bool:
    """The API server's Accept negotiation (checked on 1.20): an empty header, `*/*`, or one of the
    served types (a `q` parameter allowed, any other parameter not); `text/plain`, `text/*` and
    `application/*` are refused, on pods/log too (which then answers text/plain)."""
    if not accept.strip():
        return True
    for clause in accept.split(","):
        media, *params = (part.strip() for part in clause.split(";"))
        names = {p.partition("=")[0].strip().lower() for p in params if p}
        q = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            weight = float(q)
        except ValueError:
            weight = 0.0
        if (media == "*/*" or media.lower() in SERVED_MEDIA_TYPES) and names <= {"q"} and weight > 0:
            return True
    return False


def not_acceptable(*, log: bool = False) -> StatusError:
    """Return 406 NotAcceptable as the API server words it (pods/log names what it accepts)."""
    if log:
        return StatusError(
            406, "NotAcceptable", "only the following media types are accepted: " + ", ".join(SERVED_MEDIA_TYPES), {}
        )
    return StatusError(406, "NotAcceptable", "406: Not Acceptable", {})


def internal_error(detail: str) -> StatusError:
    """Return 500 InternalError."""
    return StatusError(500, "InternalError", f"Internal error occurred: {detail}", {"causes": [{"message": detail}]})
