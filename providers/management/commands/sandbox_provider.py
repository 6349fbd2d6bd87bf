"""`manage.py sandbox_provider`: run the sandbox enrichment provider until Ctrl-C."""

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from providers.sandbox.server import serve


def _port(value: str) -> int:
    port = _integer(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (0-65535, 0 for any free one)")
    return port


def _non_negative(value: str) -> int:
    number = _integer(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is negative")
    return number


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not between 0 and 1")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds, 0 or more")
    return number


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


class Command(BaseCommand):
    help = (
        "Run the sandbox provider: a vendor-like enrichment API (person and company lookups) "
        "answering deterministic data, with optional latency, injected faults (503s, 429s, "
        "hangs, malformed answers), a rate limit and an API key. Point SANDBOX_BASE_URL at "
        "it; Ctrl-C stops it."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--port",
            type=_port,
            default=8765,
            help="TCP port to listen on (default 8765; 0 picks a free one).",
        )
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="IPv4 address to bind (default 127.0.0.1; 0.0.0.0 for every interface).",
        )
        parser.add_argument(
            "--latency-ms",
            type=_non_negative,
            default=0,
            metavar="MS",
            help="Delay added to every API answer, in milliseconds (default 0).",
        )
        parser.add_argument(
            "--error-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help="Share of API requests answered 503 at random, from 0 to 1 (default 0).",
        )
        parser.add_argument(
            "--rate-limited-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help=(
                "Share of API requests answered 429 with Retry-After at random, whatever the "
                "rate limit (default 0)."
            ),
        )
        parser.add_argument(
            "--retry-after",
            type=_non_negative,
            default=1,
            metavar="SECONDS",
            help="Retry-After of those random 429s (default 1).",
        )
        parser.add_argument(
            "--hang-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help=(
                "Share of API requests that hang for --hang-seconds, then get their answer "
                "(billed) or a closed connection, half and half (default 0)."
            ),
        )
        parser.add_argument(
            "--hang-seconds",
            type=_seconds,
            default=30.0,
            metavar="SECONDS",
            help="How long a hang lasts; make it longer than the client's timeout (default 30).",
        )
        parser.add_argument(
            "--malformed-rate",
            type=_fraction,
            default=0.0,
            metavar="F",
            help=(
                "Share of API requests answered 200 with a body the client cannot use: cut "
                "JSON, an HTML page, wrong types, missing keys or a 10 MB body (default 0)."
            ),
        )
        parser.add_argument(
            "--seed",
            type=_integer,
            default=None,
            metavar="N",
            help="Seed for the random faults, so a run can be repeated (default: random).",
        )
        parser.add_argument(
            "--rate-limit",
            type=_non_negative,
            default=0,
            metavar="PER_MIN",
            help=(
                "Requests allowed per fixed 60-second window across all clients; more get "
                "429 with Retry-After (default 0: no limit)."
            ),
        )
        parser.add_argument(
            "--api-key",
            default=None,
            metavar="KEY",
            help=(
                "Require 'Authorization: Bearer KEY' (default: the SANDBOX_API_KEY setting, "
                "so the app's own key works; empty: no key needed)."
            ),
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="Do not log a line per request.",
        )

    def handle(self, *args, **options) -> None:
        api_key = options["api_key"]
        try:
            serve(
                options["port"],
                host=options["host"],
                latency_ms=options["latency_ms"],
                error_rate=options["error_rate"],
                rate_limit_per_min=options["rate_limit"],
                api_key=settings.SANDBOX_API_KEY if api_key is None else api_key,
                quiet=options["quiet"],
                rate_limited_rate=options["rate_limited_rate"],
                retry_after_seconds=options["retry_after"],
                hang_rate=options["hang_rate"],
                hang_seconds=options["hang_seconds"],
                malformed_rate=options["malformed_rate"],
                seed=options["seed"],
            )
        except ValueError as exc:
            # The rates together cannot pass 1.
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from None
        except KeyboardInterrupt:
            self.stderr.write("Sandbox provider stopped.")
