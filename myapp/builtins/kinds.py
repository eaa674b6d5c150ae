"""Kind-specific template checks (`resource`, `distributed`, `seqpod`), run when a template is parsed."""

from __future__ import annotations

from myapp.builtins.distributed import check_distributed_template
from myapp.builtins.k8s_resource import check_resource_template
from myapp.builtins.seqpod import check_seqpod_template
from myapp.core.errors import SpecError
from myapp.core.model import TemplateSpec


def kind_errors(template: TemplateSpec) -> list[SpecError]:
    """Return what is wrong with the kind-specific part of `template` (empty for `pod`)."""
    if template.kind == "resource":
        return check_resource_template(template)
    if template.kind == "distributed":
        return check_distributed_template(template)
    if template.kind == "seqpod":
        return check_seqpod_template(template)
    return []
