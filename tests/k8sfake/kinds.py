"""The other built-in resources: namespaces, services, events, batch/v1 jobs, CRDs.

Each is a ResourceType with the defaults and validation of its apiserver
strategy, reduced to what clients of a scheduler observe.
"""

from __future__ import annotations

import base64
import copy

from tests.k8sfake.errors import FieldError
from tests.k8sfake.meta import JsonObj, format_time, metadata, name_of
from tests.k8sfake.pods import default_pod_spec, validate_pod
from tests.k8sfake.resources import CreateEnv, ResourceType
from tests.k8sfake.validation import dns1035_label, dns1123_label, dns1123_subdomain, validate_metadata

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
CRD_GROUP = "apiextensions.k8s.io"


def _default_namespace(ns: JsonObj, env: CreateEnv) -> None:
    metadata(ns).setdefault("labels", {})["kubernetes.io/metadata.name"] = name_of(ns)
    ns["spec"] = {"finalizers": ["kubernetes"]}
    ns["status"] = {"phase": "Active"}


NAMESPACE_TYPE = ResourceType(
    group="",
    version="v1",
    kind="Namespace",
    plural="namespaces",
    singular="namespace",
    namespaced=False,
    short_names=("ns",),
    return_deleted_object=True,
    field_labels=("status.phase",),
    name_check=dns1123_label,
    default=_default_namespace,
    validate=lambda ns: validate_metadata(ns, dns1123_label),
)


def _default_service(svc: JsonObj, env: CreateEnv) -> None:
    spec = svc.setdefault("spec", {})
    for key, value in (
        ("type", "ClusterIP"),
        ("sessionAffinity", "None"),
        ("ipFamilies", ["IPv4"]),
        ("ipFamilyPolicy", "SingleStack"),
        ("internalTrafficPolicy", "Cluster"),
    ):
        spec.setdefault(key, value)
    if not spec.get("clusterIP"):
        spec["clusterIP"] = env.next_cluster_ip()
    spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    svc["status"] = {"loadBalancer": {}}


def _validate_service(svc: JsonObj) -> list[FieldError]:
    errors = validate_metadata(svc, dns1035_label)
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
        errors.append(FieldError("spec.ports", "Required"))
    for index, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errors.append(
                FieldError(f"spec.ports[{index}].port", "Invalid", number, "must be between 1 and 65535, inclusive")
            )
        if len(ports) > 1 and not port.get("name"):
            errors.append(FieldError(f"spec.ports[{index}].name", "Required"))
    if spec.get("type") not in SERVICE_TYPES:
        errors.append(
            FieldError(
                "spec.type",
                "NotSupported",
                spec.get("type"),
                "supported values: " + ", ".join(f'"{t}"' for t in SERVICE_TYPES),
            )
        )
    return errors


SERVICE_TYPE = ResourceType(
    group="",
    version="v1",
    kind="Service",
    plural="services",
    singular="service",
    short_names=("svc",),
    categories=("all",),
    return_deleted_object=True,
    field_labels=("spec.clusterIP", "spec.type"),
    name_check=dns1035_label,
    default=_default_service,
    validate=_validate_service,
)

EVENT_TYPE = ResourceType(
    group="",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    short_names=("ev",),
    status_subresource=False,
    field_labels=tuple(
        f"involvedObject.{f}"
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    )
    + ("reason", "reportingComponent", "source", "type"),
    validate=lambda event: validate_metadata(event, dns1123_subdomain),
)


def _default_job(job: JsonObj, env: CreateEnv) -> None:
    spec = job.setdefault("spec", {})
    uid, name = metadata(job)["uid"], name_of(job)
    if "parallelism" not in spec and "completions" not in spec:
        spec["completions"] = 1
    for key, value in (
        ("parallelism", 1),
        ("backoffLimit", 6),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
        ("podReplacementPolicy", "TerminatingOrFailed"),
    ):
        spec.setdefault(key, value)
    template = spec.setdefault("template", {})
    labels = metadata(template).setdefault("labels", {})
    for prefix in ("batch.kubernetes.io/", ""):
        labels[f"{prefix}controller-uid"] = uid
        labels[f"{prefix}job-name"] = name
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    metadata(job).setdefault("labels", dict(labels))
    default_pod_spec(template.setdefault("spec", {}))
    job["status"] = {}


def _validate_job(job: JsonObj) -> list[FieldError]:
    errors = validate_metadata(job, dns1123_subdomain)
    template_spec = copy.deepcopy(((job.get("spec") or {}).get("template") or {}).get("spec") or {})
    template_spec.setdefault("restartPolicy", "Always")
    pod_errors = validate_pod({"metadata": {"name": "template"}, "spec": template_spec})
    errors += [
        FieldError("spec.template." + e.field, e.kind, e.value, e.detail)
        for e in pod_errors
        if e.field.startswith("spec.") and e.field != "spec.restartPolicy"
    ]
    policy = template_spec["restartPolicy"]
    if policy not in ("OnFailure", "Never"):
        errors.append(
            FieldError(
                "spec.template.spec.restartPolicy", "NotSupported", policy, 'supported values: "OnFailure", "Never"'
            )
        )
    return errors


JOB_TYPE = ResourceType(
    group="batch",
    version="v1",
    kind="Job",
    plural="jobs",
    singular="job",
    categories=("all",),
    field_labels=("status.successful",),
    default=_default_job,
    validate=_validate_job,
    tracks_generation=True,
)


def _validate_crd(crd: JsonObj) -> list[FieldError]:
    errors = validate_metadata(crd, dns1123_subdomain)
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if name_of(crd) and name_of(crd) != expected:
        errors.append(FieldError("metadata.name", "Invalid", name_of(crd), 'must be spec.names.plural+"."+spec.group'))
    for key in ("plural", "kind"):
        if not names.get(key):
            errors.append(FieldError(f"spec.names.{key}", "Required"))
    if not spec.get("versions"):
        errors.append(
            FieldError("spec.versions", "Invalid", [], "must have exactly one version marked as storage version")
        )
    return errors


def _default_crd(crd: JsonObj, env: CreateEnv) -> None:
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    spec.setdefault("scope", "Namespaced")
    stamp = format_time(env.now)
    stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    crd["status"] = {
        "acceptedNames": dict(names),
        "storedVersions": stored,
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": stamp}
            for kind, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }


CRD_TYPE = ResourceType(
    group=CRD_GROUP,
    version="v1",
    kind="CustomResourceDefinition",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    default=_default_crd,
    validate=_validate_crd,
    tracks_generation=True,
)


def _default_secret(secret: JsonObj, env: CreateEnv) -> None:
    secret.setdefault("type", "Opaque")
    data = secret.setdefault("data", {})
    for key, value in (secret.pop("stringData", None) or {}).items():  # stringData is write-only
        data[key] = base64.b64encode(str(value).encode()).decode()


def _validate_secret(secret: JsonObj) -> list[FieldError]:
    errors = validate_metadata(secret, dns1123_subdomain)
    for key, value in (secret.get("data") or {}).items():
        try:
            base64.b64decode(str(value), validate=True)
        except ValueError:
            errors.append(FieldError(f"data[{key}]", "Invalid", "<value omitted>", "illegal base64 data"))
    return errors


SECRET_TYPE = ResourceType(
    group="",
    version="v1",
    kind="Secret",
    plural="secrets",
    singular="secret",
    status_subresource=False,
    field_labels=("type",),
    default=_default_secret,
    validate=_validate_secret,
)


def _validate_lease(lease: JsonObj) -> list[FieldError]:
    errors = validate_metadata(lease, dns1123_subdomain)
    duration = (lease.get("spec") or {}).get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        errors.append(FieldError("spec.leaseDurationSeconds", "Invalid", duration, "must be greater than 0"))
    return errors


LEASE_TYPE = ResourceType(
    group="coordination.k8s.io",
    version="v1",
    kind="Lease",
    plural="leases",
    singular="lease",
    status_subresource=False,
    validate=_validate_lease,
)

BUILTIN_TYPES = (NAMESPACE_TYPE, SERVICE_TYPE, EVENT_TYPE, JOB_TYPE, CRD_TYPE, SECRET_TYPE, LEASE_TYPE)


def crd_object(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    singular: str | None = None,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    status_subresource: bool = True,
) -> JsonObj:
    """Return the CustomResourceDefinition manifest for one served version."""
    subresources: JsonObj = {"status": {}} if status_subresource else {}
    return {
        "apiVersion": f"{CRD_GROUP}/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": singular or kind.lower(),
                "listKind": f"{kind}List",
                **({"shortNames": list(short_names)} if short_names else {}),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def types_from_crd(crd: JsonObj) -> list[ResourceType]:
    """Return one custom ResourceType per served version of `crd`."""
    spec, names = crd["spec"], crd["spec"]["names"]
    return [
        ResourceType(
            group=spec["group"],
            version=v["name"],
            kind=names["kind"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope") != "Cluster",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status_subresource="status" in (v.get("subresources") or {}),
            typed=False,
            tracks_generation=True,
            validate=lambda obj: validate_metadata(obj, dns1123_subdomain),
        )
        for v in spec.get("versions") or []
        if v.get("served", True)
    ]
