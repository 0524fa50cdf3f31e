"""The sample app's own suite (real PostgreSQL and Redis on loopback) passes."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sample_app_suite_passes_against_real_postgresql_and_redis():
    log = ROOT / ".logs" / "sample_app.log"
    log.parent.mkdir(exist_ok=True)
    result = subprocess.run(["make", "--no-print-directory", "-C", "sample_app", "test"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"sample app suite failed, see {log}:\n{result.stdout[-3000:]}"
    summary = re.search(r"=+ (\d+) passed[^=]*=+\s*$", result.stdout)
    assert summary and int(summary.group(1)) >= 20, result.stdout[-2000:]
    assert " failed" not in summary.group(0) and " error" not in summary.group(0)
