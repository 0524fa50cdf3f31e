"""WSGI entry point for gunicorn: ``flaskstack_sample.wsgi:app``."""
from . import create_app

app = create_app()
