# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS half of the fleet inventory: which accounts and regions to read, and what EC2 and SSM say there.

`AwsCollector.add_account(account)` (and `organization_job`) give the jobs (fleet_jobs) that read an account in its
regions; their results land in `collector.ec2` and `collector.ssm` (plain JSON-able records: `ec2_record`,
`ssm_record`).

AWS rules followed (API references of STS, Organizations, EC2 and SSM):
* AssumeRole: RoleSessionName 2-64 characters of [\\w+=,.@-]; ExternalId when the role's trust policy asks for one.
* Organizations ListAccounts (from the management account or a delegated administrator) lists member accounts;
  only ACTIVE ones are read. `State` replaces `Status`, which AWS retires on 2026-09-09: State first.
* DescribeRegions without AllRegions "displays" only the regions enabled for the account: discovering regions this
  way never calls a disabled opt-in region.
* DescribeInstances pages hold at most 1000 instances. Like amazon.aws.aws_ec2, only running, pending, stopping
  and stopped instances are listed unless the filters name the states.
* DescribeInstanceInformation pages hold 5-50 nodes; it omits stopped and terminated instances and returns no tags.
  An EC2 node's tags are the instance's own (EC2). A hybrid node's tags (where Patch Manager reads its patch group)
  come, for a whole account-region at once, from the Resource Groups Tagging API: GetResources "supports all
  resource types"; ResourceTypeFilters `ssm:managed-instance` (service[:resourceType] as in the ARN
  arn:<partition>:ssm:<region>:<account>:managed-instance/<mi- id>); ResourcesPerPage 1-100; PaginationToken.
  It "does not return untagged resources": a node it does not name has no tags. Its IAM action is
  tag:GetResources; where that is denied, each node's tags come from SSM ListTagsForResource (ResourceType
  ManagedInstance), one call per node.
* Timestamps travel as ISO 8601 text in query/XML responses (EC2) and as epoch seconds in JSON ones (SSM). The
  inventory keeps three of them, so botocore is told to leave them as sent (its default parser, dateutil, reads every
  timestamp of every page: about a second of CPU per 5,000 instances) and `iso_timestamp` reads the three.
* Throttling: SSM publishes no rate limits and answers ThrottlingException (EC2: RequestLimitExceeded). botocore's
  "standard" retry mode retries these and transient errors with jittered exponential backoff.
"""

from __future__ import annotations

import datetime
import re
import threading
from dataclasses import dataclass
from dataclasses import field
from typing import Iterable
from typing import Optional

try:
    import boto3
    import botocore.exceptions
    import botocore.session
    import botocore.utils
except ImportError:
    pass  # the plugin reports missing SDKs (AWSInventoryBase.require_aws_sdk) before any AWS source is read

from .fleet_jobs import LOOKUP
from .fleet_jobs import UNLOCK
from .fleet_jobs import Job

SESSION_NAME = "fleetpatch-inventory"
EC2_PAGE_SIZE = 1000  # DescribeInstances MaxResults: 5-1000
SSM_PAGE_SIZE = 50  # DescribeInstanceInformation MaxResults: 5-50
TAGGING_PAGE_SIZE = 100  # GetResources ResourcesPerPage: 1-100
MANAGED_INSTANCE_TYPE = "ssm:managed-instance"  # GetResources ResourceTypeFilters: service[:resourceType]
# Error codes of a request the caller's policies (identity policy, SCP, permissions boundary) do not allow.
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
DEFAULT_INSTANCE_STATES = ("running", "pending", "stopping", "stopped")
_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/\S+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


class AccountSpecError(ValueError):
    """An `accounts` / `organization` entry that does not describe an account (the message says which)."""


@dataclass
class Account:
    """An AWS account to read: with the inventory's own credentials (role_arn None) or through a role."""

    account_id: str
    name: str
    role_arn: Optional[str] = None
    external_id: Optional[str] = None
    regions: tuple = ()  # empty: the regions enabled for the account (DescribeRegions)
    credentials: dict = field(default_factory=dict)  # boto3 client keyword arguments once the role is assumed

    def label(self, *parts: str) -> str:
        named = f" ({self.name})" if self.name != self.account_id else ""
        return " ".join((f"account {self.account_id}{named}",) + parts)


# ---------------------------------------------------------------------------------------------------------------
# Accounts from the options
# ---------------------------------------------------------------------------------------------------------------

def role_account(role_arn: str) -> str:
    """The account id of an IAM role ARN (arn:<partition>:iam::<12 digits>:role/<name>)."""
    match = _ROLE_ARN.match(role_arn or "")
    if not match:
        raise AccountSpecError(f"accounts: {role_arn!r} is not an IAM role ARN (arn:aws:iam::<account id>:role/<name>)")
    return match.group("account")


def accounts_from_options(entries: Iterable) -> list[Account]:
    """`accounts` option entries: a role ARN, or a mapping with role_arn and optional name, regions, external_id."""
    accounts = []
    for index, entry in enumerate(entries or []):
        if isinstance(entry, str):
            entry = {"role_arn": entry}
        if not isinstance(entry, dict):
            raise AccountSpecError(f"accounts[{index}]: expected a role ARN or a mapping, got {type(entry).__name__}")
        unknown = set(entry) - {"role_arn", "name", "regions", "external_id"}
        if unknown:
            raise AccountSpecError(f"accounts[{index}]: unknown key(s) {sorted(unknown)}; "
                                   "allowed: role_arn, name, regions, external_id")
        account_id = role_account(entry.get("role_arn"))
        accounts.append(Account(account_id, str(entry.get("name") or account_id), entry["role_arn"],
                                entry.get("external_id"), tuple(entry.get("regions") or ())))
    return accounts


def organization_role_arn(partition: str, account_id: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def active_organization_accounts(organizations) -> list[tuple[str, str, str]]:
    """(account id, name, partition) of the organization's ACTIVE accounts (ListAccounts, every page)."""
    accounts = []
    for page in organizations.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 20}):
        for account in page.get("Accounts") or []:
            if (account.get("State") or account.get("Status")) == "ACTIVE":
                partition = (account.get("Arn") or "arn:aws:").split(":")[1]
                accounts.append((account["Id"], account.get("Name") or account["Id"], partition))
    return accounts


# ---------------------------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------------------------

class AwsClients:
    """boto3 clients from one session, per account credentials, region and service, created once and reused.

    Creation is serialised: boto3 sessions are not thread-safe, the clients they make are. One session (one
    loaded service model per service) keeps hundreds of account-region clients cheap to make.
    """

    def __init__(self, session, endpoint_url: Optional[str], config, verify=None) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._config = config
        self._verify = verify
        self._lock = threading.Lock()
        self._clients: dict = {}

    def client(self, service: str, region: str, credentials: Optional[dict] = None):
        credentials = credentials or {}
        key = (service, region, credentials.get("aws_access_key_id"))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint_url, config=self._config,
                    verify=self._verify, **credentials)
        return client


def assume_role(sts, account: Account) -> dict:
    """Temporary credentials of the account's role, as boto3 client keyword arguments."""
    params = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME}
    if account.external_id:
        params["ExternalId"] = account.external_id
    credentials = sts.assume_role(**params)["Credentials"]
    return {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"]}


def enabled_regions(ec2) -> list[str]:
    return sorted(region["RegionName"] for region in ec2.describe_regions().get("Regions") or [])


# ---------------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------------

def iso_timestamp(value) -> Optional[str]:
    """An AWS timestamp, as sent (ISO 8601 text or epoch seconds) or parsed (datetime), as ISO 8601 in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:  # RFC 822 and other forms botocore accepts
            moment = botocore.utils.parse_timestamp(value)
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat()


def tag_dict(tags: Optional[list]) -> dict:
    """An AWS tag list (Key/Value) as a dict."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}


def ec2_record(instance: dict, account_id: str, region: str) -> dict:
    """What the inventory keeps of a DescribeInstances instance (JSON-able: it goes to the inventory cache)."""
    placement = instance.get("Placement") or {}
    return {
        "instance_id": instance["InstanceId"],
        "account_id": account_id,
        "region": region,
        "state": (instance.get("State") or {}).get("Name"),
        "instance_type": instance.get("InstanceType"),
        "availability_zone": placement.get("AvailabilityZone"),
        "private_ip_address": instance.get("PrivateIpAddress"),
        "private_dns_name": instance.get("PrivateDnsName") or None,
        "public_ip_address": instance.get("PublicIpAddress"),
        "public_dns_name": instance.get("PublicDnsName") or None,
        "vpc_id": instance.get("VpcId"),
        "subnet_id": instance.get("SubnetId"),
        "image_id": instance.get("ImageId"),
        "architecture": instance.get("Architecture"),
        "platform": instance.get("Platform"),  # "windows" or absent
        "platform_details": instance.get("PlatformDetails"),
        "launch_time": iso_timestamp(instance.get("LaunchTime")),
        "key_name": instance.get("KeyName"),
        "iam_instance_profile": (instance.get("IamInstanceProfile") or {}).get("Arn"),
        "security_groups": [group["GroupId"] for group in instance.get("SecurityGroups") or []],
        "tags": tag_dict(instance.get("Tags")),
    }


def ssm_record(info: dict, account_id: str, region: str) -> dict:
    """What the inventory keeps of an InstanceInformation record. `tags` is None until read (hybrid nodes only)."""
    return {
        "instance_id": info["InstanceId"],
        "account_id": account_id,
        "region": region,
        "ping_status": info.get("PingStatus"),
        "last_ping": iso_timestamp(info.get("LastPingDateTime")),
        "agent_version": info.get("AgentVersion"),
        "is_latest_version": info.get("IsLatestVersion"),
        "platform_type": info.get("PlatformType"),
        "platform_name": info.get("PlatformName"),
        "platform_version": info.get("PlatformVersion"),
        "resource_type": info.get("ResourceType"),
        "ip_address": info.get("IPAddress"),
        "computer_name": info.get("ComputerName"),
        "name": info.get("Name"),
        "activation_id": info.get("ActivationId"),
        "registration_date": iso_timestamp(info.get("RegistrationDate")),
        "iam_role": info.get("IamRole"),
        "source_id": info.get("SourceId"),
        "source_type": info.get("SourceType"),
        "tags": None,
    }


def is_hybrid(record: dict) -> bool:
    return record.get("resource_type") == "ManagedInstance"


def describe_instances(ec2, filters: list, account_id: str, region: str) -> list[dict]:
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=filters, PaginationConfig={"PageSize": EC2_PAGE_SIZE})
    return [ec2_record(instance, account_id, region)
            for page in pages for reservation in page.get("Reservations") or []
            for instance in reservation.get("Instances") or []]


def describe_managed_nodes(ssm, filters: list, account_id: str, region: str) -> list[dict]:
    params = {"Filters": filters} if filters else {}
    pages = ssm.get_paginator("describe_instance_information").paginate(
        PaginationConfig={"PageSize": SSM_PAGE_SIZE}, **params)
    return [ssm_record(info, account_id, region) for page in pages for info in page.get("InstanceInformationList") or []]


def managed_instance_tags(ssm, node_id: str) -> dict:
    response = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node_id)
    return tag_dict(response.get("TagList"))


def tagged_managed_instances(tagging) -> dict[str, dict]:
    """{managed node id: tags} of every tagged managed node of the client's account-region (GetResources, every
    page). A node it does not name has no tags."""
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=[MANAGED_INSTANCE_TYPE], PaginationConfig={"PageSize": TAGGING_PAGE_SIZE})
    return {mapping["ResourceARN"].rsplit("/", 1)[-1]: tag_dict(mapping.get("Tags"))
            for page in pages for mapping in page.get("ResourceTagMappingList") or []}


def is_access_denied(error: BaseException) -> bool:
    return isinstance(error, botocore.exceptions.ClientError) and \
        error.response.get("Error", {}).get("Code") in _ACCESS_DENIED


def ec2_filters(filters: Optional[dict]) -> list[dict]:
    """The `ec2_filters` option (name -> value or list) as DescribeInstances Filters; the default state filter
    applies unless the option names instance-state-name itself."""
    filters = dict(filters or {})
    filters.setdefault("instance-state-name", list(DEFAULT_INSTANCE_STATES))
    return [{"Name": name, "Values": [str(v) for v in (values if isinstance(values, list) else [values])]}
            for name, values in sorted(filters.items())]


def ssm_filters(filters: Optional[dict]) -> list[dict]:
    """The `ssm_filters` option (key -> value or list) as DescribeInstanceInformation Filters."""
    return [{"Key": key, "Values": [str(v) for v in (values if isinstance(values, list) else [values])]}
            for key, values in sorted((filters or {}).items())]


# ---------------------------------------------------------------------------------------------------------------
# The collector: jobs for every account, region and source
# ---------------------------------------------------------------------------------------------------------------

class AwsCollector:
    """Jobs that read `accounts` (EC2 and/or SSM) in their regions; results in `ec2`, `ssm`, `ec2_listed`.

    `ec2_listed` holds the (account, region) pairs whose EC2 listing succeeded: the merge needs to know where the
    absence of an instance from EC2 means something (fleet_merge). `tagging_denied` names the account-regions
    where GetResources was denied and the hybrid nodes' tags were read one node at a time.
    """

    def __init__(self, clients: AwsClients, home_region: str, regions: Iterable[str], sources: Iterable[str],
                 instance_filters: list, node_filters: list, hybrid_tags_source: str = "tagging_api") -> None:
        self.clients = clients
        self._home_region = home_region
        self._regions = tuple(regions or ())
        self._sources = tuple(source for source in ("ec2", "ssm") if source in set(sources))
        self._instance_filters = instance_filters
        self._node_filters = node_filters
        self._hybrid_tags_source = hybrid_tags_source
        self.accounts: dict[str, Account] = {}
        self.ec2: list[dict] = []
        self.ssm: list[dict] = []
        self.ec2_listed: set = set()
        self.tagging_denied: list[str] = []

    # -- accounts
    def add_account(self, account: Account) -> list[Job]:
        """The jobs that read `account`; none when it is already being read (first definition wins)."""
        if account.account_id in self.accounts or not self._sources:
            return []
        self.accounts[account.account_id] = account
        if account.role_arn is None:
            return self._region_step(account)
        return [Job(account.label("assume role", account.role_arn),
                    lambda: assume_role(self.clients.client("sts", self._home_region), account),
                    lambda credentials: self._assumed(account, credentials), UNLOCK)]

    def organization_job(self, role_name: str, external_id: Optional[str], exclude: Iterable[str],
                         regions: Iterable[str]) -> Job:
        """ListAccounts with the inventory's own credentials, then the ACTIVE accounts through `role_name`."""
        excluded = set(exclude or ())

        def accounts_found(found: list) -> list[Job]:
            jobs = []
            for account_id, name, partition in found:
                if account_id not in excluded:
                    role_arn = organization_role_arn(partition, account_id, role_name)
                    jobs += self.add_account(Account(account_id, name, role_arn, external_id, tuple(regions or ())))
            return jobs

        return Job("organization accounts (ListAccounts)",
                   lambda: active_organization_accounts(self.clients.client("organizations", self._home_region)),
                   accounts_found, UNLOCK)

    def _assumed(self, account: Account, credentials: dict) -> list[Job]:
        account.credentials = credentials
        return self._region_step(account)

    # -- regions
    def _region_step(self, account: Account) -> list[Job]:
        regions = account.regions or self._regions
        if regions:
            return self._region_jobs(account, regions)
        return [Job(account.label("enabled regions (DescribeRegions)"),
                    lambda: enabled_regions(self.clients.client("ec2", self._home_region, account.credentials)),
                    lambda found: self._region_jobs(account, found), UNLOCK)]

    def _region_jobs(self, account: Account, regions: Iterable[str]) -> list[Job]:
        jobs = []
        for region in regions:
            if "ec2" in self._sources:
                jobs.append(self._ec2_job(account, region))
            if "ssm" in self._sources:
                jobs.append(self._ssm_job(account, region))
        return jobs

    # -- sources (clients are made by the workers: making one is CPU work the scheduling thread need not wait for)
    def _ec2_job(self, account: Account, region: str) -> Job:
        def listing() -> list[dict]:
            ec2 = self.clients.client("ec2", region, account.credentials)
            return describe_instances(ec2, self._instance_filters, account.account_id, region)

        def listed(records: list) -> None:
            self.ec2.extend(records)
            self.ec2_listed.add((account.account_id, region))

        return Job(account.label(region, "ec2"), listing, listed)

    def _ssm_job(self, account: Account, region: str) -> Job:
        def listing() -> list[dict]:
            ssm = self.clients.client("ssm", region, account.credentials)
            return describe_managed_nodes(ssm, self._node_filters, account.account_id, region)

        def listed(records: list) -> list[Job]:
            self.ssm.extend(records)
            hybrid = [record for record in records if is_hybrid(record)]
            if not hybrid:
                return []
            if self._hybrid_tags_source == "per_node":
                return [self._node_tags_job(account, region, record) for record in hybrid]
            return [self._region_tags_job(account, region, hybrid)]

        return Job(account.label(region, "ssm"), listing, listed)

    def _region_tags_job(self, account: Account, region: str, hybrid: list) -> Job:
        """The tags of the region's hybrid nodes in one paged GetResources, run once the nodes are listed (a node
        registered in between is not listed either); where it is denied, one ListTagsForResource per node."""
        def lookup() -> Optional[dict]:
            tagging = self.clients.client("resourcegroupstaggingapi", region, account.credentials)
            try:
                return tagged_managed_instances(tagging)
            except botocore.exceptions.ClientError as error:
                if is_access_denied(error):
                    return None
                raise

        def found(tags_by_node: Optional[dict]) -> list[Job]:
            if tags_by_node is None:
                self.tagging_denied.append(account.label(region))
                return [self._node_tags_job(account, region, record) for record in hybrid]
            for record in hybrid:
                record["tags"] = tags_by_node.get(record["instance_id"], {})
            return []

        return Job(account.label(region, "ssm", f"tags of {len(hybrid)} hybrid node(s) (GetResources; left out: "
                                                "their patch group is unknown)"), lookup, found)

    def _node_tags_job(self, account: Account, region: str, record: dict) -> Job:
        def tagged(tags: dict) -> None:
            record["tags"] = tags

        node_id = record["instance_id"]
        return Job(account.label(region, "ssm", f"tags of {node_id} (left out: its patch group is unknown)"),
                   lambda: managed_instance_tags(self.clients.client("ssm", region, account.credentials), node_id),
                   tagged, LOOKUP)


def current_account(sts) -> tuple[str, str]:
    """(account id, partition) of the inventory's own credentials (GetCallerIdentity)."""
    identity = sts.get_caller_identity()
    return identity["Account"], identity["Arn"].split(":")[1]


def valid_account_id(value: str) -> bool:
    return bool(_ACCOUNT_ID.match(str(value)))


def _as_sent(value):
    return value


def make_session(credentials: dict, profile: Optional[str]):
    """The base boto3 session: a profile, explicit keys, or boto3's default chain. Its clients leave timestamps as
    the service sent them (read by `iso_timestamp`)."""
    core = botocore.session.Session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    if profile:
        return boto3.session.Session(profile_name=profile, botocore_session=core)
    return boto3.session.Session(botocore_session=core, **{k: v for k, v in credentials.items() if v})
