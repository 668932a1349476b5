"""AssumeRole the AWS way for the accounts a test says cannot be entered.

moto's STS lets anyone assume any role ARN (the role need not exist). AWS refuses with AccessDenied when the role
does not exist or its trust policy does not allow the caller ("User: <arn> is not authorized to perform:
sts:AssumeRole on resource: <role arn>"). The control route `POST /sts/deny` {"accounts": [...]} names the
accounts whose roles refuse the caller (an empty list restores the default), so the collection's handling of an
unreachable account is tested against the error AWS really returns.
"""
from __future__ import annotations

from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

from .control import accounts_route

DENIED_ACCOUNTS: set[str] = accounts_route("/sts/deny")
_ORIGINAL_ASSUME_ROLE = STSBackend.assume_role


def _assume_role(self, **kwargs):
    role_arn = kwargs.get("role_arn", "")
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    if account in DENIED_ACCOUNTS:
        raise STSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::{self.account_id}:user/fleetlab is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}")
    return _ORIGINAL_ASSUME_ROLE(self, **kwargs)


def install() -> None:
    STSBackend.assume_role = _assume_role
