# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS API actions fleetpatch.ssm can call, derived from its code, checked against docs/iam/*.json.

Usage:
    iam_actions.py            every action, with the places that call it
    iam_actions.py --check    compare with the policy documents; exit 1 and say what differs

How the scan works (docs/iam/README.md explains it for reviewers):

1. Python (plugins/modules, module_utils, inventory, plugin_utils) is parsed, never imported. A *client* is an
   expression the scan can tie to one AWS service:
   - a call that creates one: `ssm_client(module)`, or any `...client...(…, "<service>", …)` call whose string
     argument is a botocore service name (`module.client("ssm")`, `sessions.client(scope, "ec2")`,
     `_client_factory(session, "sts", region)`), and a function whose `return` is such a call;
   - a name or `self.<attribute>` assigned from one, in the same function (or, for attributes, the same file);
   - a name spelled like a service (`ssm`, `ec2`, `sts`, `organizations`);
   - the engine's generic `client` / `self.client` / `self._client`, which module_utils/ssm.py defines as the
     SSM client (`ssm_client`, `ManagedResource.client`): the operation must then be an SSM one.
2. Calls on a client are operations when botocore's model of that service has the method: `client.get_x(...)`,
   `client.get_paginator("list_x")`, `client.get_waiter("x")` (the waiter's operation), and calls of any helper
   that hands a client and an operation name to `get_paginator` (`paginate`, `paginated_items`: found by the
   scan, not listed here).
3. The IAM action is `<IAM prefix>:<OperationName>`: botocore's service model names the operation (snake_case
   to OperationName through `method_to_api_mapping`'s source, `xform_name`), never a hand-made list. The IAM
   prefix is the model's signing name, except where IAM_PREFIXES says otherwise.
4. Anything the scan cannot tie to a service, or an operation name that is not a literal, is an error: the scan
   would rather stop than miss an action.

Ansible tasks of the roles and playbooks that call AWS through amazon.aws modules are read from their YAML, and
their actions come from AMAZON_AWS_TASK_ACTIONS (a new module or s3_object mode there is an error until it is
added). Actions no API call names (iam:PassRole) come from IMPLIED_ACTIONS.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import botocore.exceptions
import botocore.session
import yaml
from botocore import xform_name

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIRS = ("plugins/modules", "plugins/module_utils", "plugins/inventory", "plugins/plugin_utils")
TASK_FILES = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "site.yml")
POLICY_DIR = REPO / "docs" / "iam"

# module_utils/ssm.py: `ssm_client()` and `ManagedResource.client` are the SSM client the engine hands out.
ENGINE_CLIENT_FACTORY = "ssm_client"
ENGINE_CLIENT_NAMES = {"client", "_client"}
ENGINE_SERVICE = "ssm"

# Signing names that are not their service's IAM prefix (Service Authorization Reference): the Resource Groups
# Tagging API signs as `tagging`, its actions are `tag:GetResources`, ...
IAM_PREFIXES = {"tagging": "tag"}

# Permissions a request needs beyond its own action (each service's "Actions, resources and condition keys" page).
IMPLIED_ACTIONS = {
    # ServiceRoleArn of a maintenance window task, IamRole of a hybrid activation: the caller passes a role.
    "ssm:RegisterTaskWithMaintenanceWindow": {"iam:PassRole"},
    "ssm:UpdateMaintenanceWindowTask": {"iam:PassRole"},
    "ssm:CreateActivation": {"iam:PassRole"},
}
# STS: "No permissions are required to perform this operation" (GetCallerIdentity API reference); an explicit
# deny does not stop it. Called, but no policy needs to grant it.
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}

# What the amazon.aws modules used in roles/playbooks call (read from amazon.aws 10.x's source), keyed by module
# (and mode, for s3_object). iam:ListAccountAliases (aws_caller_info's optional alias) is left out: nothing uses
# the alias and the module tolerates its denial.
_S3_OBJECT_COMMON = {"s3:ListBucket", "s3:GetBucketOwnershipControls"}  # HeadBucket; ACLs enabled or not
AMAZON_AWS_TASK_ACTIONS = {
    "amazon.aws.sts_assume_role": {"sts:AssumeRole"},
    "amazon.aws.aws_caller_info": {"sts:GetCallerIdentity"},
    # HeadObject (s3:GetObject) then PutObject with the object's ACL (s3:PutObjectAcl), then GetObjectTagging.
    "amazon.aws.s3_object:put": _S3_OBJECT_COMMON | {"s3:GetObject", "s3:PutObject", "s3:PutObjectAcl",
                                                     "s3:GetObjectTagging"},
    "amazon.aws.s3_object:get": _S3_OBJECT_COMMON | {"s3:GetObject"},
    "amazon.aws.s3_object:list": _S3_OBJECT_COMMON,
}

# docs/iam: the identity policies of the roles that run the collection's code (their union must be exactly what
# the code calls), and the roles AWS services and agents use (their actions are fixed by AWS's documentation).
CALLER_POLICIES = ("controller-role-policy.json", "target-role-policy.json")
# AmazonSSMManagedInstanceCore (AWS managed policy, v2) ...
MANAGED_INSTANCE_CORE = {
    "ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
    "ssm:DescribeDocument", "ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters", "ssm:ListAssociations",
    "ssm:ListInstanceAssociations", "ssm:PutInventory", "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
    "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
}
# ... plus S3: AWS-managed buckets and InstallOverrideLists (read), Run Command output (write, with its ACL, and
# the bucket's encryption setting the agent checks first).
NODE_ACTIONS = MANAGED_INSTANCE_CORE | {"s3:GetObject", "s3:PutObject", "s3:PutObjectAcl",
                                        "s3:GetEncryptionConfiguration"}
# The maintenance window service role for Run Command tasks (SSM user guide, "Create a custom maintenance window
# service role"), without the Automation, Lambda and Step Functions parts the collection never registers.
WINDOW_ROLE_ACTIONS = {"ssm:SendCommand", "ssm:CancelCommand", "ssm:ListCommands", "ssm:ListCommandInvocations",
                       "ssm:GetCommandInvocation", "ssm:ListTagsForResource", "ssm:GetParameters"}
SERVICE_POLICIES = {
    "instance-profile-policy.json": NODE_ACTIONS,
    "hybrid-activation-role-policy.json": NODE_ACTIONS,
    "maintenance-window-role-policy.json": WINDOW_ROLE_ACTIONS,
}
# Bucket policies may grant only what the principals they name need (checked against these sets).
BUCKET_POLICIES = ("report-bucket-policy.json",)
TRUST_POLICIES = {
    "target-role-trust-policy.json": "controller",
    "hybrid-activation-role-trust-policy.json": "ssm",
    "maintenance-window-role-trust-policy.json": "ssm",
    "instance-profile-trust-policy.json": "ec2",
}


class ScanError(Exception):
    """The scan met code it cannot map to an AWS service; the message names the file and line."""


@dataclass(frozen=True, order=True)
class Use:
    """One place that makes AWS call `action`."""

    action: str
    where: str   # path:line, or the task file for amazon.aws tasks


# ---------------------------------------------------------------------------------------------- botocore

class Catalog:
    """botocore's service models: which services exist, their operations, waiters and IAM prefixes."""

    def __init__(self) -> None:
        self._session = botocore.session.get_session()
        self.services = frozenset(self._session.get_available_services())
        self._methods: dict = {}

    def methods(self, service: str) -> dict:
        """{snake_case method: OperationName} of the service's client."""
        if service not in self._methods:
            model = self._session.get_service_model(service)
            self._methods[service] = {xform_name(name): name for name in model.operation_names}
        return self._methods[service]

    def waiter_operation(self, service: str, waiter: str) -> str | None:
        """The operation a waiter polls; boto3 names waiters in snake_case (`command_executed`)."""
        try:
            model = self._session.get_waiter_model(service)
        except botocore.exceptions.DataNotFoundError:
            return None
        names = {xform_name(name): name for name in model.waiter_names}
        return model.get_waiter(names[waiter]).operation if waiter in names else None

    def action(self, service: str, operation: str) -> str:
        signing_name = self._session.get_service_model(service).signing_name
        return f"{IAM_PREFIXES.get(signing_name, signing_name)}:{operation}"


# ---------------------------------------------------------------------------------------------- Python scan

def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _callee_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _target_key(node) -> str | None:
    """`name` or `self.attr` as a key for client bindings."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return None


class _Module:
    """One parsed file: its functions, client bindings and the helpers it defines."""

    def __init__(self, path: Path, catalog: Catalog, factories: dict, root: Path = REPO) -> None:
        self.path = path
        self.rel = path.relative_to(root).as_posix()
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.catalog = catalog
        self.factories = factories          # function name -> service (functions that return a client)
        self.attributes: dict = {}          # self.<attr> -> service, file-wide
        self.functions = [node for node in ast.walk(self.tree)
                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        # `api.create_activation(client, ...)`: a function of an imported module (scanned in its own file).
        self.imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(self.tree)
                         if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}

    def constructed_service(self, node) -> str | None:
        """The service of a client-creating call somewhere in `node` (None when there is none)."""
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            name = _callee_name(call)
            if name == ENGINE_CLIENT_FACTORY:
                return ENGINE_SERVICE
            if name in self.factories:
                return self.factories[name]
            if "client" in name.lower():
                for arg in call.args:
                    if _literal(arg) in self.catalog.services:
                        return _literal(arg)
        return None

    def find_factories(self) -> dict:
        """Functions of this file whose return value is a client of one service."""
        found = {}
        for function in self.functions:
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    service = self.constructed_service(node.value)
                    if service:
                        found[function.name] = service
        return found

    def bindings(self, scope) -> dict:
        """Names (and self attributes) assigned a client in `scope`."""
        bound = {}
        for node in ast.walk(scope):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                service = self.constructed_service(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    key = _target_key(target)
                    if service and key:
                        bound[key] = service
        return bound


class PythonScan:
    """Every AWS operation the plugins' Python can call (see the module docstring for the rules)."""

    def __init__(self, catalog: Catalog, root: Path = REPO, dirs=PYTHON_DIRS) -> None:
        self.catalog = catalog
        self.root = root
        self.files = sorted(path for d in dirs for path in (root / d).glob("*.py") if path.name != "__init__.py")
        self.uses: set = set()
        self.errors: list = []

    def run(self) -> set:
        factories: dict = {}
        modules = [_Module(path, self.catalog, factories, self.root) for path in self.files]
        for module in modules:
            factories.update(module.find_factories())
        for module in modules:
            module.attributes = {k: v for k, v in module.bindings(module.tree).items() if k.startswith("self.")}
        helpers = self._paginate_helpers(modules)
        for module in modules:
            self._scan_module(module, helpers)
        if self.errors:
            raise ScanError("\n".join(sorted(set(self.errors))))
        return self.uses

    # -- helpers that take (client, "operation") and reach get_paginator

    @staticmethod
    def _paginate_helpers(modules) -> dict:
        """{function name: (client argument index, operation argument index)}, to a fixed point."""
        helpers: dict = {}
        changed = True
        while changed:
            changed = False
            for module in modules:
                for function in module.functions:
                    if function.name in helpers:
                        continue
                    params = [arg.arg for arg in function.args.args]
                    for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                        found = PythonScan._forwards(call, params, helpers)
                        if found:
                            helpers[function.name] = found
                            changed = True
                            break
        return helpers

    @staticmethod
    def _forwards(call: ast.Call, params: list, helpers: dict):
        """(client index, operation index) when `call` hands two of `params` on to a paginator."""
        name = _callee_name(call)
        if name == "get_paginator" and isinstance(call.func, ast.Attribute) and call.args:
            receiver, operation = _target_key(call.func.value), call.args[0]
        elif name in helpers:
            client_at, operation_at = helpers[name]
            if len(call.args) <= max(client_at, operation_at):
                return None
            receiver, operation = _target_key(call.args[client_at]), call.args[operation_at]
        else:
            return None
        if receiver in params and isinstance(operation, ast.Name) and operation.id in params:
            return params.index(receiver), params.index(operation.id)
        return None

    # -- the calls

    def _scan_module(self, module: _Module, helpers: dict) -> None:
        module_bindings = module.bindings(module.tree)
        for function in module.functions:
            local = {**module_bindings, **module.attributes, **module.bindings(function)}
            params = {arg.arg for arg in function.args.args}
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                self._scan_call(module, call, local, params, helpers)

    def _scan_call(self, module: _Module, call: ast.Call, local: dict, params: set, helpers: dict) -> None:
        where = f"{module.rel}:{call.lineno}"
        name = _callee_name(call)
        if name in helpers:
            client_at, operation_at = helpers[name]
            if len(call.args) > max(client_at, operation_at):
                self._by_name(module, call.args[client_at], call.args[operation_at], local, params, where)
            return
        if not isinstance(call.func, ast.Attribute):
            return
        receiver = call.func.value
        if name in ("get_paginator", "get_waiter") and call.args:
            self._by_name(module, receiver, call.args[0], local, params, where, waiter=name == "get_waiter")
            return
        if isinstance(receiver, ast.Name) and receiver.id in module.imported:
            return
        named = (_target_key(receiver) or "").rsplit(".", 1)[-1].lstrip("_")
        services = set(self.created_services) | ({named} & self.catalog.services)
        if any(name in self.catalog.methods(service) for service in services):
            service = self._service_of(module, receiver, local, name, where)
            if service:
                self._record(service, name, where)

    def _by_name(self, module, receiver, operation, local, params, where, waiter=False) -> None:
        """A paginator, waiter or helper call: the operation is a string argument."""
        method = _literal(operation)
        if method is None:
            if isinstance(operation, ast.Name) and operation.id in params:
                return  # a helper passing its own argument on: its callers are scanned
            self.errors.append(f"{where}: the operation name is not a string literal; the scan cannot read it")
            return
        service = self._service_of(module, receiver, local, None, where)
        if service is None:
            return
        if waiter:
            operation_name = self.catalog.waiter_operation(service, method)
            if operation_name is None:
                self.errors.append(f"{where}: {service} has no waiter {method!r}")
                return
            self.uses.add(Use(self.catalog.action(service, operation_name), where))
            return
        self._record(service, method, where)

    def _record(self, service: str, method: str, where: str) -> None:
        operation = self.catalog.methods(service).get(method)
        if operation is None:
            self.errors.append(f"{where}: {method} is not an operation of the {service} client")
            return
        self.uses.add(Use(self.catalog.action(service, operation), where))

    def _service_of(self, module, receiver, local: dict, method, where: str) -> str | None:
        key = _target_key(receiver)
        if key in local:
            return local[key]
        if isinstance(receiver, ast.Call) and module.constructed_service(receiver):
            return module.constructed_service(receiver)
        name = (key or "").rsplit(".", 1)[-1].lstrip("_")
        if name in self.catalog.services:
            return name
        if (key or "").rsplit(".", 1)[-1] in ENGINE_CLIENT_NAMES:
            return ENGINE_SERVICE
        called = f".{method}()" if method else ""
        self.errors.append(f"{where}: cannot tell which AWS service's client {ast.unparse(receiver)!r}{called} "
                           "is; assign it from a client-creating call or name it after its service (ssm, ec2, ...)")
        return None

    @cached_property
    def created_services(self) -> list:
        """The services the collection creates clients of (method names of other services are not AWS calls)."""
        created = set()
        for path in self.files:
            module = _Module(path, self.catalog, {}, self.root)
            created |= {module.constructed_service(node) for node in ast.walk(module.tree)
                        if isinstance(node, ast.Call)}
        return sorted(created - {None})


# ---------------------------------------------------------------------------------------------- task scan

class _AnsibleYaml(yaml.SafeLoader):
    """YAML with Ansible's local tags (!unsafe, !vault) read as plain values."""


_AnsibleYaml.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None))


def _tasks(node, skip=("module_defaults",)):
    """Every mapping in a loaded YAML document, except under `module_defaults` (defaults, not tasks)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in skip:
                yield from _tasks(value)
    elif isinstance(node, list):
        for item in node:
            yield from _tasks(item)


def task_uses(root: Path = REPO, patterns=TASK_FILES) -> set:
    """Actions of the amazon.aws modules the roles and playbooks call (AMAZON_AWS_TASK_ACTIONS)."""
    uses, unknown = set(), []
    for path in sorted(p for pattern in patterns for p in root.glob(pattern)):
        rel = path.relative_to(root).as_posix()
        for task in _tasks(yaml.load(path.read_text(), Loader=_AnsibleYaml)):
            for key, args in task.items():
                if not (isinstance(key, str) and key.startswith("amazon.aws.")):
                    continue
                mode = (args or {}).get("mode") if isinstance(args, dict) else None
                entry = f"{key}:{mode}" if key == "amazon.aws.s3_object" else key
                if entry not in AMAZON_AWS_TASK_ACTIONS:
                    unknown.append(f"{rel}: {entry} is not in AMAZON_AWS_TASK_ACTIONS (tests/tools/iam_actions.py)")
                    continue
                uses |= {Use(action, rel) for action in AMAZON_AWS_TASK_ACTIONS[entry]}
    if unknown:
        raise ScanError("\n".join(sorted(set(unknown))))
    return uses


def code_uses(root: Path = REPO) -> set:
    """Every action the collection can make AWS check, with where; implied actions included."""
    uses = PythonScan(Catalog(), root).run() | task_uses(root)
    for use in list(uses):
        uses |= {Use(action, f"{use.where} ({use.action})") for action in IMPLIED_ACTIONS.get(use.action, ())}
    return uses


def required_actions(uses) -> set:
    return {use.action for use in uses} - NEEDS_NO_PERMISSION


# ---------------------------------------------------------------------------------------------- policies

def load_policy(path: Path) -> dict:
    return json.loads(path.read_text())


def statements(policy: dict) -> list:
    found = policy.get("Statement", [])
    return found if isinstance(found, list) else [found]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed_actions(policy: dict) -> set:
    """The actions of the policy's Allow statements."""
    return {action for statement in statements(policy) if statement.get("Effect") == "Allow"
            for action in _as_list(statement.get("Action", []))}


def policy_problems(name: str, policy: dict, expected: set, required: set | None = None) -> list:
    """Why `policy` is not least privilege for `expected` (required: what it must grant; default: all of it)."""
    granted = allowed_actions(policy)
    problems = [f"{name}: wildcard action {action!r} (list the actions)" for action in sorted(granted)
                if "*" in action]
    problems += [f"{name}: grants {action}, which nothing needs" for action in sorted(granted - expected)]
    needed = expected if required is None else required
    problems += [f"{name}: lacks {action}" for action in sorted(needed - granted)]
    problems += [f"{name}: statement {statement.get('Sid', index)} uses NotAction" for index, statement
                 in enumerate(statements(policy)) if "NotAction" in statement]
    return problems


def _conditions(statement: dict) -> dict:
    """{condition key: (operator, value)} of a statement."""
    return {key: (operator, value) for operator, block in (statement.get("Condition") or {}).items()
            for key, value in block.items()}


def trust_problems(name: str, policy: dict, trusted: str) -> list:
    """A trust policy lets exactly its principal assume the role, with the conditions AWS recommends."""
    problems = []
    for statement in statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        if _as_list(statement.get("Action")) != ["sts:AssumeRole"]:
            problems.append(f"{name}: a trust statement allows {statement.get('Action')}, not only sts:AssumeRole")
        principal = statement.get("Principal") or {}
        conditions = _conditions(statement)
        if trusted == "controller":
            if set(principal) != {"AWS"} or not all(":role/" in arn for arn in _as_list(principal["AWS"])):
                problems.append(f"{name}: the principal must be the controller role's ARN")
            if conditions.get("sts:ExternalId", ("",))[0] != "StringEquals":
                problems.append(f"{name}: no StringEquals sts:ExternalId condition (targets[].external_id)")
        else:
            if principal != {"Service": f"{trusted}.amazonaws.com"}:
                problems.append(f"{name}: the principal must be {trusted}.amazonaws.com only")
            if trusted == "ssm":
                if conditions.get("aws:SourceAccount", ("",))[0] != "StringEquals":
                    problems.append(f"{name}: no StringEquals aws:SourceAccount condition (confused deputy)")
                operator, arn = conditions.get("aws:SourceArn", ("", ""))
                if operator not in ("ArnEquals", "ArnLike") or not str(arn).startswith("arn:aws:ssm:"):
                    problems.append(f"{name}: no ArnEquals/ArnLike aws:SourceArn arn:aws:ssm:... condition")
    return problems


def check(policy_dir: Path = POLICY_DIR, uses=None) -> list:
    """Every difference between the code's actions and the policy documents (empty: they agree)."""
    uses = code_uses() if uses is None else uses
    needed = required_actions(uses)
    called = {use.action for use in uses}
    problems = []
    union: set = set()
    for name in CALLER_POLICIES:
        policy = load_policy(policy_dir / name)
        problems += policy_problems(name, policy, called, required=set())
        union |= allowed_actions(policy)
    problems += [f"{' + '.join(CALLER_POLICIES)}: neither grants {action}, which the code calls ("
                 + ", ".join(sorted(use.where for use in uses if use.action == action)[:3]) + ")"
                 for action in sorted(needed - union)]
    for name, expected in SERVICE_POLICIES.items():
        problems += policy_problems(name, load_policy(policy_dir / name), expected)
    for name in BUCKET_POLICIES:
        problems += policy_problems(name, load_policy(policy_dir / name), called | NODE_ACTIONS, required=set())
    for name, trusted in TRUST_POLICIES.items():
        problems += trust_problems(name, load_policy(policy_dir / name), trusted)
    return problems


# ---------------------------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/iam/*.json; exit 1 on a difference")
    args = parser.parse_args(argv)
    try:
        uses = code_uses()
    except ScanError as error:
        print(f"iam_actions: the scan stopped:\n{error}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(uses=uses)
        for problem in problems:
            print(problem)
        print(f"iam_actions: {len(required_actions(uses))} actions needed; "
              + ("the policies differ" if problems else "docs/iam agrees"))
        return 1 if problems else 0
    places = defaultdict(list)
    for use in sorted(uses):
        places[use.action].append(use.where)
    for action, where in sorted(places.items()):
        note = " (needs no permission)" if action in NEEDS_NO_PERMISSION else ""
        print(f"{action}{note}\n    " + "\n    ".join(where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
