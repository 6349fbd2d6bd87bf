"""`manage.py demo`: migrate, an admin login, demo leads, and every process of the app.

Starts the sandbox provider, a Celery worker, celery-beat and the web server as child
processes sharing this terminal; Ctrl-C stops them all.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import user_role_set
from leads.demo_data import demo_rows
from leads.services import lead_input_from_mapping, leads_upsert


class Command(BaseCommand):
    help = (
        "Set up and run the demo: migrate, create the admin login (printed), load demo "
        "leads, then run the sandbox provider, a worker, beat and the web server until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=200, help="Demo leads (default 200).")
        parser.add_argument("--port", type=int, default=8000, help="Web port (default 8000).")
        parser.add_argument(
            "--sandbox-port", type=int, default=8765, help="Sandbox provider port (default 8765)."
        )
        parser.add_argument(
            "--sandbox-latency-ms",
            type=int,
            default=150,
            help="Latency of each sandbox answer, so enrichment is visible (default 150).",
        )
        parser.add_argument(
            "--no-serve",
            action="store_true",
            help="Only migrate, create the login and load the leads; start nothing.",
        )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        password = self._admin_login()
        self.stdout.write(f"Admin login: admin / {password}")
        role_logins = self._role_logins()
        for username, role_password in role_logins.items():
            self.stdout.write(f"{username.upper()} login: {username} / {role_password}")
        sandbox_url = f"http://127.0.0.1:{options['sandbox_port']}"
        env = {**os.environ, "SANDBOX_BASE_URL": sandbox_url, "PYTHONUNBUFFERED": "1"}
        children: list[subprocess.Popen] = []
        # A SIGTERM (from a supervisor or `timeout`) stops the children too, like Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            if not options["no_serve"]:
                children.append(
                    self._start(
                        "sandbox",
                        [
                            sys.executable,
                            "manage.py",
                            "sandbox_provider",
                            "--port",
                            str(options["sandbox_port"]),
                            "--latency-ms",
                            str(options["sandbox_latency_ms"]),
                        ],
                        env,
                    )
                )
                self._wait_for(f"{sandbox_url}/health", children[-1])
            self._load_leads(options["leads"])
            if options["no_serve"]:
                return
            celery = [sys.executable, "-m", "celery", "-A", "config"]
            children.append(
                self._start(
                    "worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"], env
                )
            )
            children.append(
                self._start(
                    "beat",
                    [
                        *celery,
                        "beat",
                        "--loglevel",
                        "INFO",
                        "--schedule",
                        str(settings.VAR_DIR / "celerybeat-schedule"),
                    ],
                    env,
                )
            )
            children.append(
                self._start(
                    "web",
                    [
                        sys.executable,
                        "manage.py",
                        "runserver",
                        "--noreload",
                        f"127.0.0.1:{options['port']}",
                    ],
                    env,
                )
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nLeadsmith is running: http://127.0.0.1:{options['port']}/admin/\n"
                    f"  login: admin / {password}\n"
                    + "".join(f"  login: {u} / {p}\n" for u, p in role_logins.items())
                    + f"  lead pages: http://127.0.0.1:{options['port']}/\n"
                    "  Ctrl-C stops web, worker, beat and the sandbox provider.\n"
                )
            )
            self._supervise(children)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(children)

    def _admin_login(self) -> str:
        """Create or reset the `admin` superuser; return its new password for the banner."""
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def _role_logins(self) -> dict[str, str]:
        """Create or reset one demo user per role (sdr, reviewer); return their passwords."""
        logins = {}
        for username, role in (("sdr", Role.SDR), ("reviewer", Role.REVIEWER)):
            password = secrets.token_urlsafe(9)
            user, _ = get_user_model().objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            user_role_set(user=user, role=role)
            logins[username] = password
        return logins

    def _load_leads(self, count: int) -> None:
        inputs = [lead_input_from_mapping(row) for row in demo_rows(count)]
        result = leads_upsert(inputs=inputs, source="demo", origin="demo")
        self.stdout.write(
            f"Demo leads: {len(result.created)} created, "
            f"{len(result.unchanged) + len(result.updated)} already there."
        )

    def _start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        self.stdout.write(f"Starting {name}: {' '.join(command[1:])}")
        return subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)

    def _wait_for(self, url: str, process: subprocess.Popen, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"{url} exited with {process.returncode} before it was up.")
            try:
                with urllib.request.urlopen(url, timeout=1):  # noqa: S310  (our own localhost)
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"{url} did not answer within {timeout:.0f}s.")

    def _supervise(self, children: list[subprocess.Popen]) -> None:
        while True:
            for child in children:
                if child.poll() is not None:
                    raise CommandError(
                        f"{' '.join(child.args[1:4])} exited with {child.returncode}; "
                        "stopping the others."
                    )
            time.sleep(0.5)

    def _stop(self, children: list[subprocess.Popen]) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
