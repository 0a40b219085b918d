"""Grant, revoke and list roles:  manage.py role grant alice@example.com agent"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import roles, services
from accounts.selectors import assigned_role, has_mfa


class Command(BaseCommand):
    help = "Grant or revoke the agent/admin roles, or list who has which role."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for action in ("grant", "revoke"):
            p = sub.add_parser(action)
            p.add_argument("email")
            p.add_argument("role", choices=roles.ROLES)
        sub.add_parser("list")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        User = get_user_model()
        if action == "list":
            for user in User.objects.filter(groups__name__in=[roles.AGENT, roles.ADMIN]).distinct().order_by("email"):
                mfa = "MFA on" if has_mfa(user) else "MFA not set up"
                self.stdout.write(f"{user.email}\t{assigned_role(user)}\t{mfa}")
            return
        try:
            user = User.objects.get(email__iexact=options["email"])
        except User.DoesNotExist:
            raise CommandError(f"No user with email {options['email']}") from None
        if action == "grant":
            services.grant_role(user, options["role"])
        else:
            services.revoke_role(user, options["role"])
        done = {"grant": "granted", "revoke": "revoked"}[action]
        self.stdout.write(self.style.SUCCESS(f"{done} {options['role']} for {user.email}; now {assigned_role(user)}"))
