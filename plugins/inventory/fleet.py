# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: fleet
short_description: EC2 instances, SSM managed nodes (hybrid too) and Azure VMs in one inventory, one host per machine
version_added: 0.1.0
description:
  - Reads EC2 instances (DescribeInstances), SSM managed nodes (DescribeInstanceInformation, with the tags of hybrid
    C(mi-) nodes) and Azure virtual machines (list_all with their power state) in several AWS accounts, regions and
    Azure subscriptions at once, on a bounded pool of threads, and merges them into one host per machine.
  - An EC2 instance and its SSM record are one host. An Azure VM registered as a hybrid node is one host with both
    clouds' facts (O(hybrid_match) says how a node is recognised as a VM).
  - Hosts are grouped by patch group (C(PatchGroup) or C(Patch Group) tag), operating system, cloud, account or
    subscription, region or location and SSM ping status (O(default_groups)), plus the usual constructed
    O(keyed_groups), O(groups) and O(compose).
  - Host variables are C(fleet_*) facts that read the same whatever the sources (C(fleet_id), C(fleet_cloud),
    C(fleet_patch_group), C(fleet_os_family), C(fleet_ping_status), C(fleet_tags), ...; docs/inventory.md lists
    them); a fact a machine does not have is not set. The sources' own records are there on request
    (O(source_hostvars)).
  - One account, region or subscription that fails (role not assumable, region not enabled, throttling beyond the
    retries, Azure authentication) is a warning naming it and the rest of the fleet is returned; with O(strict)
    it is an error. An incomplete result is never cached.
  - The configuration file name must end with C(fleet.yml) or C(fleet.yaml), for example C(prod.fleet.yml).
  - "Documentation: docs/inventory.md of the collection (merge rules, groups, AWX)."
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
requirements:
  - boto3 and botocore (AWS sources)
  - azure-identity and azure-mgmt-compute (Azure source only)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    required: true
    choices: [fleetpatch.ssm.fleet]
  sources:
    description:
      - What to read. C(ec2) lists instances, C(ssm) lists managed nodes (EC2 and hybrid), C(azure) lists the VMs of
        O(azure_subscriptions).
      - With C(ec2) off, EC2 nodes come from SSM alone and carry no tags (SSM returns none for EC2 nodes), so no
        patch group.
    type: list
    elements: str
    choices: [ec2, ssm, azure]
    default: [ec2, ssm, azure]
  accounts:
    description:
      - AWS accounts reached through a role, each an IAM role ARN or a mapping with C(role_arn) and optional
        C(name) (hostvar C(fleet_account_name)), C(regions) (instead of O(regions)) and C(external_id).
      - The inventory's own credentials assume each role (after O(assume_role_arn), when set).
    type: list
    elements: raw
    default: []
  include_current_account:
    description: Also read the account of the inventory's own credentials, without a role.
    type: bool
    default: true
  organization:
    description:
      - Read every ACTIVE account of the AWS Organization (ListAccounts, from the management account or a delegated
        administrator) through the role C(role_name) in each, with optional C(external_id), C(exclude_accounts)
        (account ids) and C(regions).
      - An account also listed in O(accounts), or the current one, is read once, as listed there.
    type: dict
  regions:
    description:
      - Regions to read in every account without its own C(regions).
      - Empty (the default) reads the regions enabled in each account (DescribeRegions), so a disabled opt-in
        region is never called.
    type: list
    elements: str
    default: []
  ec2_filters:
    description:
      - DescribeInstances filters (name to value or list of values), as for amazon.aws.aws_ec2.
      - Without C(instance-state-name), running, pending, stopping and stopped instances are listed.
    type: dict
    default: {}
  ssm_filters:
    description:
      - DescribeInstanceInformation filters (key to value or list), for example C(PingStatus), C(PlatformTypes),
        C(ResourceType) or C(tag:<key>). AWS does not combine tag filters with the other keys.
    type: dict
    default: {}
  hybrid_tags_source:
    description:
      - Where the tags of hybrid C(mi-) nodes (their patch group) are read; DescribeInstanceInformation returns none.
      - C(tagging_api) one paged Resource Groups Tagging API GetResources (resource type C(ssm:managed-instance))
        per account and region with hybrid nodes, 100 nodes a call (IAM action C(tag:GetResources)). Where it is
        denied, a warning names the account and region and their nodes' tags are read as with C(per_node).
      - C(per_node) one SSM ListTagsForResource per hybrid node (IAM action C(ssm:ListTagsForResource)).
    type: str
    choices: [tagging_api, per_node]
    default: tagging_api
  azure_subscriptions:
    description: Azure subscriptions to read, each an id or a mapping with C(id) and C(name).
    type: list
    elements: raw
    default: []
    env:
      - name: AZURE_SUBSCRIPTION_ID
  azure_endpoint:
    description: Azure Resource Manager endpoint (another cloud, Azure Stack, a test endpoint).
    type: str
    default: https://management.azure.com
    env:
      - name: FLEETPATCH_AZURE_ENDPOINT
  azure_tenant_id:
    description:
      - Tenant of the service principal. azure-identity's C(AZURE_TENANT_ID) wins over AWX's C(AZURE_TENANT).
    type: str
    env:
      - name: AZURE_TENANT
      - name: AZURE_TENANT_ID
  azure_client_id:
    description: Application (client) id of the service principal.
    type: str
    env:
      - name: AZURE_CLIENT_ID
  azure_client_secret:
    description:
      - Secret of the service principal. Without it, azure-identity's DefaultAzureCredential is used (environment,
        workload identity, managed identity, Azure CLI).
      - azure-identity's C(AZURE_CLIENT_SECRET) wins over AWX's C(AZURE_SECRET).
    type: str
    env:
      - name: AZURE_SECRET
      - name: AZURE_CLIENT_SECRET
  azure_authority_host:
    description: Microsoft Entra ID authority host, for a sovereign or private cloud.
    type: str
    env:
      - name: AZURE_AUTHORITY_HOST
  azure_disable_instance_discovery:
    description:
      - Turn off MSAL's authority validation (it asks login.microsoftonline.com about the authority host).
      - By default on for an O(azure_authority_host) that is not one of Microsoft's public authorities, off otherwise.
    type: bool
  hybrid_match:
    description:
      - How a hybrid node is recognised as an Azure VM, rules tried in this order; each pairs only one VM with one
        node.
      - C(source_id) the node's SSM SourceType is C(Microsoft.Compute/virtualMachines) and its SourceId is the VM's
        vmId. C(tag) a tag of the node (O(hybrid_match_tags)) holds the VM's vmId or resource id. C(computer_name)
        the node's computer name and the VM's agree on the first label and are unique.
    type: list
    elements: str
    choices: [source_id, tag, computer_name]
    default: [source_id, tag, computer_name]
  hybrid_match_tags:
    description: Tag keys of hybrid nodes whose value is the Azure VM's vmId or resource id (O(hybrid_match)=tag).
    type: list
    elements: str
    default: [AzureVmId, AzureResourceId]
  hostnames:
    description:
      - Host name preferences, the first with a value wins; the machine id (node, instance or VM id) when none has.
      - C(name) (EC2 or hybrid Name tag, Azure VM name, else an on-premises node's short computer name),
        C(instance_id), C(vm_id), C(azure_name), C(computer_name), C(short_computer_name), C(private_ip_address),
        C(private_dns_name), C(public_ip_address), C(public_dns_name) or C(tag:<key>).
      - A name wanted by several machines stays with the one that appeared first; the others get
        C(<name>_<machine id>).
    type: list
    elements: str
    default: [name, instance_id, vm_id]
  ansible_host_from:
    description: Preferences for C(ansible_host) (same values as O(hostnames)); not set when none has a value.
    type: list
    elements: str
    default: [private_ip_address]
  default_groups:
    description:
      - Group categories to create. C(patch_group) one group per patch group (under C(patch_groups), with
        C(no_patch_group)); C(os) os_<family>, os_<family>_<version>, os_<linux|windows>; C(cloud) cloud_<aws|azure|
        onprem|gcp>; C(account) account_<id>, subscription_<id>; C(region) region_<aws region>, location_<azure
        location>; C(ssm) ssm_managed or ssm_unmanaged, ssm_<ping status>.
    type: list
    elements: str
    choices: [patch_group, os, cloud, account, region, ssm]
    default: [patch_group, os, cloud, account, region, ssm]
  patch_group_prefix:
    description: Prefix of the patch group groups (the patch group C(prod-sensitive) is the group C(prod_sensitive)).
    type: str
    default: ""
  include_host_filters:
    description: Jinja2 conditions on the host variables; when given, a machine is kept if one of them is true.
    type: list
    elements: str
    default: []
  exclude_host_filters:
    description: Jinja2 conditions on the host variables; a machine is left out if one of them is true.
    type: list
    elements: str
    default: []
  source_hostvars:
    description:
      - Sources whose whole record is also stored as a host variable (C(fleet_ec2), C(fleet_ssm), C(fleet_azure)).
      - O(compose), O(groups), O(keyed_groups) and the host filters see them in any case. Storing them costs time
        and memory for every host (C(ansible-inventory --list --export), which an AWX sync runs, writes each host
        variable of each host), so by default hosts carry the C(fleet_*) summary only.
    type: list
    elements: str
    choices: [ec2, ssm, azure]
    default: []
  ssm_connection:
    description:
      - Set C(ansible_connection=amazon.aws.aws_ssm), C(ansible_aws_ssm_instance_id) and C(ansible_aws_ssm_region)
        on managed nodes, so that roles reach them through Session Manager instead of SSH.
    type: bool
    default: false
  ssm_bucket_name:
    description: C(ansible_aws_ssm_bucket_name) for O(ssm_connection) (the connection plugin's file transfers).
    type: str
  max_workers:
    description: Calls in flight at once (accounts, regions, subscriptions and tag lookups share the pool).
    type: int
    default: 8
  max_attempts:
    description:
      - Attempts per API call, the first included. Throttling and transient errors are retried with jittered
        exponential backoff (botocore's standard retry mode; azure-core's retry policy, which honours Retry-After).
    type: int
    default: 10
  strict:
    description:
      - Besides its constructed meaning (template errors are fatal), makes a failed account, region or subscription
        an error instead of a warning.
"""

EXAMPLES = r"""
# prod.fleet.yml: three accounts through a role, two regions, two Azure subscriptions
plugin: fleetpatch.ssm.fleet
regions: [eu-west-1, us-east-1]
accounts:
  - role_arn: arn:aws:iam::234567890123:role/FleetpatchInventory
    name: production
  - role_arn: arn:aws:iam::345678901234:role/FleetpatchInventory
    name: nonproduction
    regions: [eu-west-1]
azure_subscriptions:
  - {id: 1f6b2c8e-3a4d-4e5f-8a9b-0c1d2e3f4a5b, name: azure-prod}
  - 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetpatch-inventory
cache_timeout: 3600

---
# Every account of the organization, Session Manager connections, extra groups per Tier tag
plugin: fleetpatch.ssm.fleet
sources: [ec2, ssm]
organization:
  role_name: FleetpatchInventory
  exclude_accounts: ["111111111111"]
regions: [eu-west-1]
ssm_connection: true
ssm_bucket_name: my-ssm-transfer-bucket
keyed_groups:
  - key: fleet_tags.Tier | default('none')
    prefix: tier
exclude_host_filters:
  - fleet_ec2 is not none and fleet_ec2.state != 'running'
"""

import hashlib
import json
from dataclasses import dataclass
from dataclasses import field

try:
    import botocore.config
    import botocore.exceptions
    import botocore.parsers
except ImportError:
    pass  # AWSInventoryBase.require_aws_sdk reports it when AWS is read

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from ansible_collections.amazon.aws.plugins.plugin_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

from ansible_collections.fleetpatch.ssm.plugins.module_utils import azure_compute
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_aws
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_azure
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_hosts
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_facts import machine_facts
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_facts import patch_group_drift
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import JobFailure
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_jobs import run_jobs
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import Sources
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_merge import merge

CACHE_FORMAT = 1
# Options that change what is read: a cached result read with other values is not this inventory's.
_QUERY_OPTIONS = ("sources", "accounts", "include_current_account", "organization", "regions", "region",
                  "ec2_filters", "ssm_filters", "azure_subscriptions", "azure_endpoint", "endpoint_url", "profile",
                  "assume_role_arn")
_REPORTED_FAILURES = 20


@dataclass(frozen=True)
class _Layout:
    hostnames: list
    ansible_host_from: list
    ssm_connection: bool
    ssm_bucket: str
    categories: list
    patch_group_prefix: str
    unstored: frozenset
    strict: bool
    compose: dict
    groups: dict
    keyed_groups: list
    include_filters: list
    exclude_filters: list

    @property
    def constructed(self) -> bool:
        """Whether the user asked for compose, groups or keyed_groups (Jinja2 per host: skipped when not)."""
        return bool(self.compose or self.groups or self.keyed_groups)


@dataclass
class Read:
    """What one run read: the sources, the AWS account names, what failed, and the account-regions where the
    hybrid nodes' tags had to be read node by node (GetResources denied)."""

    sources: Sources
    account_names: dict
    failures: list
    tagging_denied: list = field(default_factory=list)


def _inventory_data(inventory):
    """The inventory data behind ansible-core 2.19's per-source proxy (the object itself before 2.19 and in tests).

    The proxy's set_variable deep-copies each value and tags every string in it with the source's origin, so that
    plugins that do not say whether their values are templates get ansible-core's default (not trusted). At fleet
    scale that copy is most of a cached run (about 17 variables x 6,000 hosts). This plugin's values are fresh
    JSON data it built itself, never templates: set on the inventory data directly they are just as untrusted
    (ansible-core 2.19 renders only strings tagged as trusted) and the copy is saved. Only the built-in host
    variables and groups take this path; compose, groups and keyed_groups still go through the proxy.
    """
    return getattr(inventory, "__wrapped__", inventory)


class InventoryModule(AWSInventoryBase):
    """fleetpatch.ssm.fleet. AWSInventoryBase (amazon.aws) gives the standard AWS credential, endpoint and region
    options with their environment variables and templating, and assume_role_arn for the base identity: a user of
    aws_ec2 keeps their settings. Its one-client-at-a-time region loop is not used: clients come from one session
    (fleet_aws.AwsClients) and all calls go through one bounded pool (fleet_jobs)."""

    NAME = "fleetpatch.ssm.fleet"
    INVENTORY_FILE_SUFFIXES = ("fleet.yml", "fleet.yaml")

    class TemplatedOptions(AWSInventoryBase.TemplatedOptions):
        """Options that may hold Jinja2 (a lookup for a secret, say). Only what is a template is rendered: amazon.aws's
        version renders every element of a list through an argument ansible-core 2.19 deprecates."""

        TEMPLATABLE_OPTIONS = AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS + (
            "accounts", "organization", "ec2_filters", "ssm_filters", "azure_subscriptions", "azure_endpoint",
            "azure_tenant_id", "azure_client_id", "azure_client_secret", "azure_authority_host")

        def get(self, *args):
            value = self.original_options.get(*args)
            if not value or not self.templar or args[0] not in self.TEMPLATABLE_OPTIONS:
                return value
            return self.templar.template(value)

    def parse(self, inventory, loader, path, cache=True):
        # Not AWSInventoryBase.parse: it assumes assume_role_arn at once, an API call even when the cache answers.
        BaseInventoryPlugin.parse(self, inventory, loader, path)
        self._read_config_data(path)
        self._check_options()
        fingerprint = self._query_fingerprint()
        read = self._from_cache(path, cache, fingerprint)
        if read is None:
            read = self._read_fleet()
            self._report(read.failures)
            self._warn_tagging_denied(read.tagging_denied)
            self._to_cache(path, fingerprint, read)
        self._populate(read)

    # -------------------------------------------------------------------------------------------------- options
    def _check_options(self):
        try:
            fleet_hosts.check_preferences("hostnames", self.get_option("hostnames"))
            fleet_hosts.check_preferences("ansible_host_from", self.get_option("ansible_host_from"))
            self._accounts = fleet_aws.accounts_from_options(self.get_option("accounts"))
            self._subscriptions = fleet_azure.subscriptions_from_options(self.get_option("azure_subscriptions"))
            self._organization = self._organization_option()
        except ValueError as error:
            raise AnsibleParserError(f"{self.NAME}: {error}") from None
        for option in ("max_workers", "max_attempts"):
            if self.get_option(option) < 1:
                raise AnsibleParserError(f"{self.NAME}: {option} must be 1 or more")

    def _organization_option(self):
        organization = self.get_option("organization")
        if not organization:
            return None
        unknown = set(organization) - {"role_name", "external_id", "exclude_accounts", "regions"}
        if unknown or not organization.get("role_name"):
            raise ValueError(f"organization: needs role_name; allowed keys: role_name, external_id, "
                             f"exclude_accounts, regions (unknown: {sorted(unknown)})")
        bad = [a for a in organization.get("exclude_accounts") or [] if not fleet_aws.valid_account_id(a)]
        if bad:
            raise ValueError(f"organization.exclude_accounts: {bad} are not 12-digit account ids")
        return organization

    def _query_fingerprint(self) -> str:
        query = {option: self.get_option(option) for option in _QUERY_OPTIONS}
        return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()

    # ---------------------------------------------------------------------------------------------------- cache
    def _from_cache(self, path, cache, fingerprint):
        """The cached read of this inventory, or None (cache off, refresh asked, expired, or other options)."""
        if not (cache and self.get_option("cache")):
            return None
        try:
            entry = self._cache[self.get_cache_key(path)]
        except KeyError:
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or entry.get("query") != fingerprint:
            return None
        data = json.loads(entry["read"])
        sources = Sources(data["ec2"], data["ssm"], data["azure"], {tuple(pair) for pair in data["ec2_listed"]},
                          data["ec2_enabled"])
        return Read(sources, data["account_names"], [])

    def _to_cache(self, path, fingerprint, read):
        if not self.get_option("cache"):
            return
        if read.failures:
            self.warn(f"{self.NAME}: this incomplete result is not cached; the next run reads the fleet again")
            return
        sources = read.sources
        data = {"ec2": sources.ec2, "ssm": sources.ssm, "azure": sources.azure,
                "ec2_listed": sorted(sources.ec2_listed), "ec2_enabled": sources.ec2_enabled,
                "account_names": read.account_names}
        # One JSON string: the cache adjudicator deep-copies what it stores; one string copies for free, thousands
        # of nested records do not.
        self._cache[self.get_cache_key(path)] = {"format": CACHE_FORMAT, "query": fingerprint,
                                                 "read": json.dumps(data, separators=(",", ":"))}

    # ----------------------------------------------------------------------------------------------- read fleet
    def _read_fleet(self) -> Read:
        """Every configured source, on one pool: AWS accounts first (their chains of calls are the longest)."""
        sources = set(self.get_option("sources"))
        jobs, errors, failures = [], (), []
        aws = self._aws_collector(sources, failures) if sources & {"ec2", "ssm"} else None
        if aws:
            jobs += self._account_jobs(aws, failures)
            errors += self._aws_errors()
        azure = self._azure() if "azure" in sources and self._subscriptions else None
        if azure:
            jobs += azure.jobs()
            errors += self._azure_errors()
        failures += run_jobs(jobs, self.get_option("max_workers"), errors)
        read_sources = Sources(aws.ec2 if aws else [], aws.ssm if aws else [], azure.vms if azure else [],
                               aws.ec2_listed if aws else set(), "ec2" in sources)
        names = {account_id: account.name for account_id, account in (aws.accounts if aws else {}).items()}
        return Read(read_sources, names, failures, aws.tagging_denied if aws else [])

    def _aws_collector(self, sources, failures):
        """The AWS collector on one session built from the standard AWS options (amazon.aws's connection info)."""
        self.require_aws_sdk()
        self._set_frozen_credentials()
        region, endpoint_url, params = get_aws_connection_info(self)
        self._home_region = region or (self.get_option("regions") or ["us-east-1"])[0]
        profile, verify, aws_config = (params.pop(key, None) for key in ("profile_name", "verify", "aws_config"))
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": self.get_option("max_attempts")},
                                        max_pool_connections=self.get_option("max_workers"),
                                        user_agent_extra="fleetpatch.ssm-fleet-inventory")
        if aws_config:
            config = config.merge(aws_config)
        credentials = dict(params, **self._frozen_credentials)
        credentials.pop("profile_name", None)
        session = fleet_aws.make_session(credentials, None if self._frozen_credentials else profile)
        return fleet_aws.AwsCollector(
            fleet_aws.AwsClients(session, endpoint_url, config, verify), self._home_region, self.get_option("regions"),
            sources, fleet_aws.ec2_filters(self.get_option("ec2_filters")),
            fleet_aws.ssm_filters(self.get_option("ssm_filters")), self.get_option("hybrid_tags_source"))

    @staticmethod
    def _aws_errors():
        """The SDK's answers for "this part of AWS did not answer": service errors after the retries, connection
        errors, and a reply that is not the service's (a proxy's or load balancer's error page)."""
        return (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                botocore.parsers.ResponseParserError)

    def _account_jobs(self, collector, failures):
        """The current account first (no role needed), then the listed accounts, then the organization's."""
        jobs = []
        if self.get_option("include_current_account") or self._organization:
            try:
                account_id = fleet_aws.current_account(collector.clients.client("sts", self._home_region))[0]
            except self._aws_errors() as error:  # the roles may still work: report, go on
                failures.append(JobFailure("current credentials (GetCallerIdentity)", error))
            else:
                if self.get_option("include_current_account"):
                    jobs += collector.add_account(fleet_aws.Account(account_id, account_id))
        for account in self._accounts:
            jobs += collector.add_account(account)
        if self._organization:
            organization = self._organization
            jobs.append(collector.organization_job(organization["role_name"], organization.get("external_id"),
                                                   organization.get("exclude_accounts"), organization.get("regions")))
        return jobs

    def _azure(self):
        credential = azure_compute.make_credential(
            {option: self.get_option(option) for option in azure_compute.CREDENTIAL_OPTIONS})
        return fleet_azure.AzureCollector(credential, self.get_option("azure_endpoint").rstrip("/"),
                                          self._subscriptions, self.get_option("max_attempts"))

    @staticmethod
    def _azure_errors():
        from azure.core.exceptions import AzureError

        return (AzureError,)

    def _report(self, failures):
        """One warning (or, with strict, one error) that names every part of the fleet that could not be read."""
        if not failures:
            return
        failures = sorted(failures, key=lambda failure: failure.where)
        lines = [f"  - {failure}" for failure in failures[:_REPORTED_FAILURES]]
        if len(failures) > _REPORTED_FAILURES:
            lines.append(f"  - and {len(failures) - _REPORTED_FAILURES} more")
        message = (f"{self.NAME}: {len(failures)} part(s) of the fleet could not be read; their machines are missing "
                   "from this inventory:\n" + "\n".join(lines))
        if self.get_option("strict"):
            raise AnsibleParserError(message)
        self.warn(message)

    def _warn_tagging_denied(self, labels):
        """Where GetResources was denied the inventory is complete but slower: say where, and what would fix it."""
        if not labels:
            return
        shown = ", ".join(sorted(labels)[:_REPORTED_FAILURES])
        more = f" and {len(labels) - _REPORTED_FAILURES} more" if len(labels) > _REPORTED_FAILURES else ""
        self.warn(f"{self.NAME}: tag:GetResources was denied in {len(labels)} account-region(s) ({shown}{more}); "
                  "their hybrid nodes' tags were read one node at a time (ssm:ListTagsForResource). Allow "
                  "tag:GetResources to the inventory's role, or set hybrid_tags_source: per_node.")

    # ------------------------------------------------------------------------------------------------- populate
    def _populate(self, read):
        layout = self._layout()
        machines = merge(read.sources, self.get_option("hybrid_match"), self.get_option("hybrid_match_tags"),
                         lambda note: self.warn(f"{self.NAME}: {note}"))
        all_facts = [facts for facts in (machine_facts(machine, read.account_names) for machine in machines)
                     if self._wanted(facts, layout)]
        self._warn_patch_group_drift(machines)
        data = _inventory_data(self.inventory)
        linked = set()
        for host, facts in fleet_hosts.assign_hostnames(all_facts, layout.hostnames):
            self._add_host(data, host, facts, layout, linked)

    def _layout(self):
        """What each host needs from the options, read once (options are read through templating)."""
        unstored = {f"fleet_{source}" for source in ("ec2", "ssm", "azure")} - \
            {f"fleet_{source}" for source in self.get_option("source_hostvars")}
        return _Layout(self.get_option("hostnames"), self.get_option("ansible_host_from"),
                       self.get_option("ssm_connection"), self.get_option("ssm_bucket_name"),
                       self.get_option("default_groups"), self.get_option("patch_group_prefix"),
                       frozenset(unstored), self.get_option("strict"), self.get_option("compose"),
                       self.get_option("groups"), self.get_option("keyed_groups"),
                       self.get_option("include_host_filters"), self.get_option("exclude_host_filters"))

    def _wanted(self, facts, layout) -> bool:
        include, exclude = layout.include_filters, layout.exclude_filters
        if include and not any(self._condition(condition, facts, layout.strict) for condition in include):
            return False
        return not any(self._condition(condition, facts, layout.strict) for condition in exclude)

    def _condition(self, condition, facts, strict) -> bool:
        """A host filter on the machine's facts (Constructable's expression evaluation, as for compose)."""
        try:
            return bool(self._compose(condition, facts))
        except Exception as error:  # a template error on one host: constructed's rule (strict: fail, else skip)
            if strict:
                raise AnsibleParserError(f"{self.NAME}: host filter {condition!r}: {error}") from error
            return False

    def _add_host(self, data, host, facts, layout, linked):
        """The host, its variables (a fact the machine does not have is not set), its default groups (each group
        linked to its parent once: `linked`), then constructed's compose, groups and keyed_groups, if configured.
        `data`: the inventory data, see _inventory_data."""
        data.add_host(host)
        variables = dict(facts, **fleet_hosts.connection_vars(facts, layout.ansible_host_from, layout.ssm_connection,
                                                              layout.ssm_bucket))
        for name, value in variables.items():
            if value is not None and name not in layout.unstored:
                data.set_variable(host, name, value)
        for group, parent in fleet_hosts.default_groups(facts, layout.categories, layout.patch_group_prefix):
            if group not in linked:
                data.add_group(parent)
                data.add_group(group)
                data.add_child(parent, group)
                linked.add(group)
            data.add_child(group, host)
        if layout.constructed:  # through self.inventory: what templates produce gets ansible-core's own handling
            self._set_composite_vars(layout.compose, variables, host, strict=layout.strict)
            self._add_host_to_composed_groups(layout.groups, variables, host, strict=layout.strict)
            self._add_host_to_keyed_groups(layout.keyed_groups, variables, host, strict=layout.strict)

    def _warn_patch_group_drift(self, machines):
        drift = [(m.azure["name"], pair) for m in machines if (pair := patch_group_drift(m))]
        if drift:
            examples = ", ".join(f"{name} (VM {vm or 'none'}, node {node or 'none'})" for name, (vm, node) in drift[:5])
            self.warn(f"{self.NAME}: {len(drift)} Azure VM(s) registered in SSM have another patch group on their "
                      f"managed node (which Patch Manager uses) than on the VM: {examples}")
