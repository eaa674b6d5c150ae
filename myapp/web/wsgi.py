"""WSGI entry module for gunicorn: builds the app from the environment's settings."""

from myapp.settings import load_settings
from myapp.web.app import create_app

application = create_app(load_settings())
