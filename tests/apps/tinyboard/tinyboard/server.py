"""WSGI module for gunicorn (tinyboard.server:app). Like many apps, it writes
a file when the server starts: into TINYBOARD_DATA_DIR."""
import os
from datetime import datetime, timezone

from . import create_app

app = create_app()
os.makedirs(app.config["DATA_DIR"], exist_ok=True)
with open(os.path.join(app.config["DATA_DIR"], "startup.log"), "a", encoding="utf-8") as log:
    log.write(f"{datetime.now(timezone.utc).isoformat()} started pid {os.getpid()}\n")
