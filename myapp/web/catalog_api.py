"""REST for the read-only catalog of published task templates under /api/v1/templates/.

User templates and their review are template_api.py (/api/v1/user_templates/).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.web.access import visible_projects
from myapp.web.api import services


class TemplateApi(BaseApi):
    resource_name = "templates"
    class_permission_name = "Templates"
    method_permission_name = {"list": "read"}
    openapi_spec_tag = "Templates"

    @expose("/", methods=["GET"])
    @protect()
    def list(self) -> Response:
        """List the published task templates usable in your projects.
        ---
        get:
          responses:
            200: {description: Templates}
        """
        from myapp.db.template_review import masked_template_dict  # secret defaults never leave

        return self.response(
            200, result=[masked_template_dict(t) for t in services().templates.list(visible_projects())]
        )


def register(appbuilder: Any) -> None:
    """Add the TemplateApi to the app."""
    appbuilder.add_api(TemplateApi)
