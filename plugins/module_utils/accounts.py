# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Many accounts and regions from one control point: assumed-role sessions and a bounded pool over them.

Targets
    A list of `{account_id?, role_arn?, external_id?, regions?}` (the `targets` option of the modules that use
    this file). A target with `role_arn` works in the role's account (STS AssumeRole, once per target); one
    without works with the task's own credentials (its account is read with STS GetCallerIdentity). `regions`
    defaults to the task's `region`. `targets_from_params()` checks the list and names the faulty entry.

Connection
    The task's amazon.aws connection options (region, profile, keys, endpoint_url, aws_ca_bundle, aws_config...)
    are read once (`Connection.from_module`). They give the base credentials; assumed credentials replace the
    keys only. `endpoint_url` is the SSM endpoint (as for every fleetpatch.ssm module): STS, EC2 and S3 use
    botocore's own configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the config file), because an
    SSM VPC endpoint is not an STS endpoint.

Scopes and failures
    A scope is one account in one region. `run_scopes()` runs a producer per scope on a bounded thread pool and
    streams what the producers yield back to the caller's thread (where SQLite writes happen). A scope whose
    role cannot be assumed, whose region does not answer, or whose producer raises, becomes a `Failure` naming
    the account, region, stage and AWS error code: the other scopes go on (MISSION.md R8).

Retries and pacing
    Every client is wrapped with the engine's `SSM_RETRY` (jittered exponential backoff that includes SSM's
    `ThrottlingException`, which amazon.aws's default list lacks); call with `aws_retry=True`. Under it, clients
    use botocore's `adaptive` retry mode (AWS SDKs and Tools reference guide, "Retry behavior"): a client-side
    token bucket whose rate follows the throttling responses, so the threads of one account-region, which share
    one client, slow down to the rate AWS allows instead of each backing off blindly. At 5,000 nodes this keeps a
    throttled collection within about 1.15 x the time the allowed rate needs (bench/bench_report.py). A
    `retries` setting in the task's `aws_config` replaces this one.
"""

from __future__ import annotations

import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.session
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper

from .ssm import SSM_RETRY
from .validation import ParameterError
from .validation import check_pattern
from .validation import field_path

# IAM role ARNs (IAM user guide, "IAM identifiers"): arn:<partition>:iam::<12-digit account>:role/<path/name>.
ROLE_ARN_PATTERN = r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}"
ACCOUNT_ID_PATTERN = r"\d{12}"
# STS AssumeRole: RoleSessionName 2-64 characters of [\w+=,.@-]; ExternalId 2-1224 of [\w+=,.@:/-].
SESSION_NAME_PATTERN = r"[\w+=,.@-]{2,64}"
EXTERNAL_ID_PATTERN = r"[\w+=,.@:/-]{2,1224}"
REGION_PATTERN = r"[a-z]{2}(-[a-z]+)+-\d+"
DEFAULT_SESSION_NAME = "fleetpatch-ssm"
# botocore's client-side rate limiting (module docstring); attempts count the first one.
ADAPTIVE_RETRIES = {"mode": "adaptive", "max_attempts": 5}
# The pool never runs more than this many scopes at once, whatever the caller asks for.
MAX_SCOPE_WORKERS = 64

# One model loader for every session: parsing botocore's JSON models is most of a client's creation cost and
# memory, and each assumed-role session would otherwise parse its own copy.
_LOADER_LOCK = threading.Lock()
_LOADER = None


def _shared_loader():
    global _LOADER  # pylint: disable=global-statement
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        return _LOADER


# ---------------------------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    """Where to collect: an account (assumed role, or the task's credentials) and its regions."""

    regions: tuple
    role_arn: str | None = None
    account_id: str | None = None
    external_id: str | None = None

    @property
    def label(self) -> str:
        return self.role_arn or self.account_id or "current credentials"


@dataclass(frozen=True)
class Scope:
    """One account in one region; `target` says how to reach it."""

    account_id: str
    region: str
    target: Target = field(compare=False)

    @property
    def key(self) -> tuple:
        return (self.account_id or "", self.region)


@dataclass
class Failure:
    """One account-region that could not be (fully) read, and why."""

    account_id: str | None
    region: str | None
    stage: str          # assume_role | identity | collect
    code: str           # the AWS error code, or the exception's class name
    message: str
    target: str = ""    # the role ARN or account the target named

    def as_dict(self) -> dict:
        return {"account_id": self.account_id, "region": self.region, "stage": self.stage, "code": self.code,
                "message": self.message, "target": self.target}


def error_code(error: BaseException) -> str:
    """AWS's error code of a botocore ClientError; the exception's class name otherwise."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code") or type(error).__name__
    return type(error).__name__


def _check_target(raw: dict, index: int, default_regions: list) -> Target:
    where = field_path("targets", index)
    role_arn, account_id = raw.get("role_arn"), raw.get("account_id")
    check_pattern(field_path(where, "role_arn"), role_arn, ROLE_ARN_PATTERN,
                  "an IAM role ARN, arn:aws:iam::<12-digit account id>:role/<name>")
    check_pattern(field_path(where, "account_id"), account_id, ACCOUNT_ID_PATTERN, "a 12-digit AWS account id")
    check_pattern(field_path(where, "external_id"), raw.get("external_id"), EXTERNAL_ID_PATTERN,
                  "2 to 1224 characters of letters, digits and +=,.@:/-")
    if role_arn:
        role_account = re.fullmatch(ROLE_ARN_PATTERN, role_arn).group(1)
        if account_id and account_id != role_account:
            raise ParameterError(f"{where}: account_id {account_id} is not the account of role_arn {role_arn}")
        account_id = role_account
    elif raw.get("external_id"):
        raise ParameterError(f"{where}: external_id needs a role_arn")
    regions = tuple(dict.fromkeys(raw.get("regions") or default_regions))
    if not regions:
        raise ParameterError(f"{where}: no regions: set targets[].regions or the task's region")
    for position, region in enumerate(regions):
        check_pattern(field_path(where, "regions", position), region, REGION_PATTERN, "an AWS region name")
    return Target(regions=regions, role_arn=role_arn, account_id=account_id, external_id=raw.get("external_id"))


def targets_from_params(raw_targets, default_region: str | None) -> list:
    """The checked targets; none given means the task's credentials in the task's region.

    A target without role_arn but with account_id names the account the task's credentials must be in (checked
    against GetCallerIdentity when the scopes are resolved). Two targets for the same account are refused: they
    would collect the same nodes twice.
    """
    default_regions = [default_region] if default_region else []
    targets = [_check_target(raw or {}, index, default_regions) for index, raw in enumerate(raw_targets or [{}])]
    first_of: dict = {}
    for index, target in enumerate(targets):
        account = f"account {target.account_id}" if target.account_id else "the task's own credentials"
        if account in first_of:
            raise ParameterError(f"targets[{index}]: {account} is already targets[{first_of[account]}]")
        first_of[account] = index
    return targets


def check_session_name(value: str) -> None:
    check_pattern("role_session_name", value, SESSION_NAME_PATTERN,
                  "2 to 64 characters of letters, digits and +=,.@-")


# ---------------------------------------------------------------------------------------------- sessions

def _new_session(access_key=None, secret_key=None, token=None, profile=None):
    """A boto3 session that shares the model loader (see `_shared_loader`)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    return boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                 aws_session_token=token, profile_name=profile, botocore_session=core)


@dataclass(frozen=True)
class Connection:
    """The task's connection options, as amazon.aws's `get_aws_connection_info` returns them."""

    region: str | None
    endpoint_url: str | None
    boto_params: dict

    @classmethod
    def from_module(cls, module) -> Connection:
        region, endpoint_url, boto_params = get_aws_connection_info(module)
        return cls(region, endpoint_url, dict(boto_params))

    def config(self):
        """The botocore Config of every client: ours, then the user's aws_config over it."""
        config = botocore.config.Config(user_agent_extra="fleetpatch.ssm", retries=ADAPTIVE_RETRIES)
        user = self.boto_params.get("aws_config")
        return config.merge(user) if user is not None else config

    def base_session(self):
        """A session with the task's credentials (or profile)."""
        params = self.boto_params
        return _new_session(params.get("aws_access_key_id"), params.get("aws_secret_access_key"),
                            params.get("aws_session_token"), params.get("profile_name"))


class Sessions:
    """boto3 sessions per target (role assumed once, lazily) and retrying clients per scope.

    `client_factory(session, service, region)` builds a raw client; tests replace it to hand out stubbed clients.
    Thread-safe: scopes of one account share its session, created under a lock (boto3 sessions are not
    thread-safe; their clients are).
    """

    def __init__(self, connection: Connection, session_name: str = DEFAULT_SESSION_NAME,
                 client_factory=None) -> None:
        self.connection = connection
        self.session_name = session_name
        self._client_factory = client_factory or self._boto3_client
        self._lock = threading.Lock()
        self._base = None
        self._sessions: dict = {}
        self._identity: dict = {}

    def _boto3_client(self, session, service: str, region: str):
        kwargs = {"region_name": region, "config": self.connection.config(),
                  "verify": self.connection.boto_params.get("verify")}
        if service == "ssm" and self.connection.endpoint_url:
            kwargs["endpoint_url"] = self.connection.endpoint_url
        return session.client(service, **kwargs)

    def _base_session(self):
        if self._base is None:
            self._base = self.connection.base_session()
        return self._base

    def client(self, scope: Scope, service: str):
        """A client for `service` in the scope's account and region; calls with aws_retry=True are retried."""
        with self._lock:
            raw = self._client_factory(self._session(scope.target), service, scope.region)
        return RetryingBotoClientWrapper(raw, SSM_RETRY)

    def _session(self, target: Target):
        """The target's session (called under the lock). Raises botocore errors when the role is refused."""
        if target.role_arn is None:
            return self._base_session()
        session = self._sessions.get(target.role_arn)
        if session is None:
            request = {"RoleArn": target.role_arn, "RoleSessionName": self.session_name}
            if target.external_id:
                request["ExternalId"] = target.external_id
            credentials = self._sts(target).assume_role(aws_retry=True, **request)["Credentials"]
            session = self._sessions[target.role_arn] = _new_session(
                credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])
        return session

    def _sts(self, target: Target):
        """STS with the task's own credentials, in the target's first region."""
        return RetryingBotoClientWrapper(
            self._client_factory(self._base_session(), "sts", target.regions[0]), SSM_RETRY)

    def reach(self, target: Target) -> str:
        """Assume the target's role now (or read the account of the task's own credentials); return the account
        id. Raises botocore's errors when the target cannot be reached."""
        with self._lock:
            if target.role_arn:
                self._session(target)
                return target.account_id
            if target not in self._identity:
                self._identity[target] = self._sts(target).get_caller_identity(aws_retry=True)["Account"]
            return self._identity[target]


def resolve_scopes(sessions: Sessions, targets: list) -> tuple:
    """(scopes, failures): every target's account-regions, with the accounts that cannot be reached.

    Reaching a target costs one STS call (AssumeRole, or GetCallerIdentity for the task's own credentials); a
    refused target becomes one failure per region, so every region it should have covered is named.
    """
    scopes, failures = [], []
    for target in targets:
        stage = "assume_role" if target.role_arn else "identity"
        try:
            account = sessions.reach(target)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            failures += [Failure(target.account_id, region, stage, error_code(error), str(error), target.label)
                         for region in target.regions]
            continue
        if target.account_id and account != target.account_id:
            failures += [Failure(target.account_id, region, stage, "AccountMismatch",
                                 f"the credentials act in account {account}, not {target.account_id}",
                                 target.label) for region in target.regions]
            continue
        scopes += [Scope(account, region, target) for region in target.regions]
    return scopes, failures


# ---------------------------------------------------------------------------------------------- the pool

@dataclass
class ScopeEnd:
    """A scope's producer has finished: `failure` is None when it ran to its end."""

    scope: Scope
    failure: Failure | None = None
    produced: int = 0


class _Stopped(Exception):
    """The caller stopped reading: producers end at their next item."""


def _put(out: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            out.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _run_one(scope: Scope, produce, out: queue.Queue, stop: threading.Event) -> None:
    produced = 0
    try:
        for item in produce(scope):
            _put(out, (scope, item), stop)
            produced += 1
    except _Stopped:
        return
    except Exception as error:  # pylint: disable=broad-except  # any failure of one scope is reported, never fatal
        message = str(error)
        if produced:
            message += f" (after {produced} records of this account-region were read)"
        failure = Failure(scope.account_id, scope.region, "collect", error_code(error), message, scope.target.label)
        _put(out, (scope, ScopeEnd(scope, failure, produced)), stop)
        return
    _put(out, (scope, ScopeEnd(scope, None, produced)), stop)


def run_scopes(scopes: list, produce, max_workers: int, buffer: int = 2000):
    """Run `produce(scope)` (a generator) for every scope on at most `max_workers` threads.

    Yields `(scope, item)` in the caller's thread as items arrive, and `(scope, ScopeEnd)` once per scope when
    its producer is done (with a `Failure` if it raised: what it yielded before stays yielded). The queue is
    bounded, so producers wait while the caller is busy: memory stays flat whatever the fleet size. If the caller
    stops early (an error on its side), the producers stop at their next item and nothing is left running.
    """
    workers = max(1, min(max_workers, MAX_SCOPE_WORKERS, len(scopes) or 1))
    out: queue.Queue = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    pending = len(scopes)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetpatch-scope")
    try:
        for scope in scopes:
            pool.submit(_run_one, scope, produce, out, stop)
        while pending:
            scope, item = out.get()
            if isinstance(item, ScopeEnd):
                pending -= 1
            yield scope, item
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
