"""Name, label and metadata validation with the apiserver's exact wording.

Ports the checks of k8s.io/apimachinery/pkg/util/validation that clients hit
most (object names, label keys and values). Imports only errors and meta.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.k8sfake.errors import FieldError
from tests.k8sfake.meta import JsonObj, metadata

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

NameCheck = Callable[[str], list[str]]


def _check(value: str, regex: str, limit: int, message: str) -> list[str]:
    problems = []
    if len(value) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not re.fullmatch(regex, value):
        problems.append(message)
    return problems


def dns1123_subdomain(value: str) -> list[str]:
    """Return the problems with `value` as an RFC 1123 subdomain (pod, job, CR names)."""
    return _check(
        value,
        _DNS1123_SUBDOMAIN,
        253,
        (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123_SUBDOMAIN}')"
        ),
    )


def dns1123_label(value: str) -> list[str]:
    """Return the problems with `value` as an RFC 1123 label (container and namespace names)."""
    return _check(
        value,
        _DNS1123_LABEL,
        63,
        (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            f"validation is '{_DNS1123_LABEL}')"
        ),
    )


def dns1035_label(value: str) -> list[str]:
    """Return the problems with `value` as an RFC 1035 label (service names)."""
    return _check(
        value,
        _DNS1035_LABEL,
        63,
        (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            f"regex used for validation is '{_DNS1035_LABEL}')"
        ),
    )


def label_value(value: str) -> list[str]:
    """Return the problems with a label value."""
    return _check(
        value,
        _LABEL_VALUE,
        63,
        (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            f"'12345', regex used for validation is '{_LABEL_VALUE}')"
        ),
    )


def qualified_name(value: str) -> list[str]:
    """Return the problems with a label or annotation key (`[prefix/]name`)."""
    prefix, _, name = value.rpartition("/")
    problems = []
    if "/" in value and not prefix:
        problems.append("prefix part must be non-empty")
    elif prefix:
        problems += ["prefix part " + p for p in dns1123_subdomain(prefix)]
    if not name:
        return problems + ["name part must be non-empty"]
    return problems + _check(
        name,
        _QUALIFIED_NAME,
        63,
        (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}')"
        ),
    )


def validate_metadata(obj: JsonObj, check_name: NameCheck) -> list[FieldError]:
    """Return the metadata errors ValidateObjectMeta reports (name, labels)."""
    meta = metadata(obj)
    name = str(meta.get("name") or "")
    errors: list[FieldError] = []
    if not name:
        errors.append(FieldError("metadata.name", "Required", detail="name or generateName is required"))
    else:
        errors += [FieldError("metadata.name", "Invalid", name, p) for p in check_name(name)]
    labels = meta.get("labels") or {}
    for key, value in labels.items():
        errors += [FieldError("metadata.labels", "Invalid", key, p) for p in qualified_name(str(key))]
        if not isinstance(value, str):
            errors.append(FieldError(f"metadata.labels.{key}", "Invalid", value, "must be a string"))
            continue
        errors += [FieldError("metadata.labels", "Invalid", value, p) for p in label_value(value)]
    return errors
