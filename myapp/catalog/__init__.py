"""The template catalog: `plugins.py` loads templates from plugin folders and the `myapp.templates`
entry points, `cube_import.py` imports Cube Studio job templates as ours. Parsing is core/templates.py;
the built-in templates' own code is builtins/; stored and user templates are db/."""
