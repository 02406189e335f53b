"""The wheel `pip install .` builds: one top-level package, `idp`, with the dashboard
(admin/, as idp.admin) and the migrations (migrations/, as idp.migrations) inside it, so
that installing idp claims no generic name such as `admin` or `migrations`; and a fresh
environment with that wheel alone runs the migrations and serves the dashboard."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ISSUER, TEST_KEK

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the Dockerfile copies (links kept as links), so the build
    leaves nothing in the repository."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("idp", "admin", "migrations"):
        shutil.copytree(
            ROOT / name,
            src / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("idp-*.whl")
    return built


def test_the_wheel_installs_only_idp(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"idp"}
    for folder in ("admin", "migrations"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"idp/{path.relative_to(ROOT)}" in names, path


def test_an_environment_with_the_wheel_alone_migrates_and_serves_the_dashboard(
    wheel: Path, tmp_path: Path
) -> None:
    """The wheel in a virtual environment that sees this one's dependencies but not the
    repository: idp.migrate finds the migrations (what `idp db upgrade` runs), and the
    dashboard's templates and static files load from the installed package."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    zipfile.ZipFile(wheel).extractall(site)
    # This environment's packages (the dependencies), without its editable idp: a path
    # in a .pth file is added as it is, the .pth files inside it are not read.
    Path(site, "outer.pth").write_text(sysconfig.get_path("purelib") + "\n")
    script = """
import sys, idp, idp.admin, idp.migrate
from pathlib import Path
site, instance, kek, issuer = sys.argv[1:]
assert Path(idp.__file__).is_relative_to(site), idp.__file__
url = "sqlite:///" + instance + "/idp.db"
idp.migrate.upgrade(url)
idp.migrate.check(url)
app = idp.create_app({
    "server": {"issuer": issuer, "instance_path": instance, "secret_key": "k"},
    "database": {"url": url},
    "keys": {"kek": kek},
})
dashboard = app.extensions["idp.admin"]
assert Path(dashboard.root_path).is_relative_to(site), dashboard.root_path
dashboard.jinja_env.get_template("_macros.html")
css = app.test_client().get("/admin/static/admin.css")
assert css.status_code == 200 and css.data, css.status
assert "admin" not in sys.modules and "migrations" not in sys.modules
print("ok")
"""
    run = subprocess.run(
        [python, "-I", "-c", script, site, str(tmp_path), TEST_KEK, ISSUER],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.endswith("ok\n"), run.stderr[-3000:]
