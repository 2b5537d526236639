from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.checks_as_code.loader import ChecksSyntaxError, document_load


class Command(BaseCommand):
    help = (
        "Apply a checks-as-code YAML file: users, teams, and projects with their templates, criteria, "
        "health checks and notification channels. The whole file is validated first; every problem "
        "is printed as 'path: message' (e.g. projects[0].criteria[1].op) and nothing is applied if "
        "there is any. Then everything is upserted in one transaction. Import never deletes: what "
        "the file leaves out is kept (and listed as 'not in file (kept)'), and a project field the "
        "file does not mention is left as it is. Importing the same file again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the YAML file to import ('-' reads standard input)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and print what would change, then roll everything back",
        )

    def handle(self, *args: Any, file: str, dry_run: bool = False, **options: Any) -> None:
        text = self.read(file)
        try:
            document = document_load(text)
        except ChecksSyntaxError as exc:
            raise CommandError(f"{file}: {exc}; nothing was applied") from None
        try:
            # The command line imports as no one in particular: whoever runs it holds the database.
            report = checks_import(document=document, dry_run=dry_run, actor=None, actor_label="import")
        except ChecksInvalid as exc:
            for path, message in exc.errors:
                self.stderr.write(f"{path}: {message}", style_func=self.style.ERROR)
            raise CommandError(f"{file}: {exc}") from None
        if options.get("verbosity", 1) >= 1:
            for line in report.lines:
                self.stdout.write(line, style_func=self.line_style(line))
        self.stdout.write(report.summary())
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was applied"))

    def read(self, file: str) -> str:
        try:
            if file == "-":
                return sys.stdin.read()
            return Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None

    def line_style(self, line: str) -> Any:
        return {
            "+": self.style.SUCCESS,
            "~": self.style.WARNING,
            "!": self.style.NOTICE,
        }.get(line[:1], lambda text: text)
