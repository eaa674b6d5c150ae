"""Flask adapter: the app factory, REST API and pages."""
