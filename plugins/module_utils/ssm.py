# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The engine every fleetpatch.ssm module runs on: connection, retries, paging, errors, and the declarative cycle.

Connection
    `ssm_client(module)` -> a boto3 SSM client built by amazon.aws's AnsibleAWSModule from the standard AWS
    options (region, profile, keys, endpoint_url, aws_config...), so `module_defaults: group/fleetpatch.ssm.ssm`
    and the amazon.aws environment variables work unchanged. Every call made with `aws_retry=True` is retried.

Retries
    SSM answers throttled calls with `ThrottlingException`, which amazon.aws's AWSRetry default list lacks (it
    has `Throttling`); SSM publishes no rate limits, and fleets hit them. `SSM_RETRY` adds it (and SSM's
    `TooManyUpdates`, `InternalServerError`) to a jittered exponential backoff. Creates pass a ClientToken where
    the API takes one, so a retried create cannot create twice.

Paging
    `paginate(client, "describe_patch_baselines", Filters=...)` walks botocore's paginator one page at a time;
    each page is its own retried call (a throttled third page does not re-read pages one and two). Page size is
    the operation's MaxResults limit from botocore's model, capped at 50: larger pages are what throttle first.

Errors
    `SSMErrorHandler` (amazon.aws's AWSErrorHandler pattern) turns botocore errors into `AnsibleSSMError` with a
    description of what failed; `DoesNotExistException` means "absent" to its list/deletion handlers.
    `ParameterError` (validation.py) is a task the module refuses; nothing has been written when it is raised.

Declaring a resource
    A module describes the resource it manages with a `ManagedResource` subclass and hands it to `ensure()`:

        class PatchGroupResource(ManagedResource):
            result_key = "patch_group"        # the module result carries the state under this key

            def validate(self):               # parameters only, no AWS call; raise ParameterError
            def read(self):                   # the current state, in the user's terms (snake_case option
                                              # names, normalised), or None when it does not exist
            def desired(self, current):       # the state the task asks for, same shape and normalisation,
                                              # AWS's documented defaults filled in; only the fields the task
                                              # manages (a field the task leaves to AWS is simply not a key)
            def create(self, desired):        # the writes; never called in check mode
            def update(self, current, desired, changed):   # changed = the keys of desired that differ
            def check_delete(self, current):  # optional: raise ParameterError to refuse (e.g. still in use)
            def delete(self, current):
            def predict(self, current, desired):  # optional: the after state check mode reports
            self.outputs                      # optional dict: results besides the state (e.g. a code AWS
                                              # returns once), on every exit, failures included

        def main():
            module = AnsibleAWSModule(argument_spec=..., supports_check_mode=True)   # with a `state` option
            ensure(PatchGroupResource(module))

    `ensure()` runs validate -> read -> compare -> write -> re-read and exits with `changed`, the state under
    `result_key` and a `diff` (before/after limited to the fields the task manages). Because both sides are
    normalised the same way, order and case that AWS ignores never show as a change; a run that changes nothing
    costs exactly what `read()` costs. Check mode stops before the writes and reports `predict()`.
    Inside the methods, `self.client` is the retrying SSM client (created on first use) and `self.params` the
    module's parameters. Calls go in small functions decorated with an `SSMErrorHandler` handler (baseline.py is
    the example); tags.py handles `tags`/`purge_tags` for any SSM resource type; validation.py has the field
    checks whose messages name the field, the value and what is allowed.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from .validation import ParameterError

# SSM's throttling and transient error codes (API reference, "Common Errors" and each operation's errors).
RETRY_CODES = ["ThrottlingException", "TooManyUpdates", "InternalServerError"]
SSM_RETRY = AWSRetry.jittered_backoff(retries=10, delay=1, backoff=2.0, max_delay=30,
                                      catch_extra_error_codes=RETRY_CODES)
MAX_PAGE_SIZE = 50


class AnsibleSSMError(AnsibleAWSError):
    """An SSM call failed; `message` says what the module was doing, `exception` is botocore's error."""


class SSMErrorHandler(AWSErrorHandler):
    _CUSTOM_EXCEPTION = AnsibleSSMError

    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("DoesNotExistException")


def ssm_client(module):
    """The module's SSM client; calls made with aws_retry=True retry throttling with jittered backoff."""
    return module.client("ssm", retry_decorator=SSM_RETRY)


def page_size(client, method: str):
    """The operation's MaxResults bounds from botocore's model, capped at MAX_PAGE_SIZE (None: no limit key)."""
    operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[method])
    limit = operation.input_shape.members.get("MaxResults")
    if limit is None:
        return None
    return max(limit.metadata.get("min", 1), min(MAX_PAGE_SIZE, limit.metadata.get("max", MAX_PAGE_SIZE)))


@SSM_RETRY
def _first_page(page_iterator) -> dict:
    return next(iter(page_iterator))


def paginate(client, method: str, **params):
    """Yield every page of a paginated SSM operation (botocore's paginator), each page one retried call.

    A page iterator cannot continue after an exception, so each page is fetched by a fresh iterator that starts
    at the previous page's NextToken (encoded as botocore's StartingToken through `resume_token`).
    """
    paginator = client.get_paginator(method)
    config = {"PageSize": page_size(client, method), "StartingToken": None}
    while True:
        pages = paginator.paginate(PaginationConfig=config, **params)
        page = _first_page(pages)
        yield page
        if not page.get("NextToken"):
            return
        pages.resume_token = {"NextToken": page["NextToken"]}  # every SSM paginator's input token
        config = dict(config, StartingToken=pages.resume_token)


def paginated_items(client, method: str, result_key: str, **params) -> list:
    """All items under `result_key` across the pages of `method`."""
    items = []
    for page in paginate(client, method, **params):
        items.extend(page.get(result_key) or [])
    return items


def iso_dates(record: dict, *fields: str) -> dict:
    """Timestamps as ISO 8601 text in results (Ansible's JSON has no datetime)."""
    for field in fields:
        if record.get(field) is not None and hasattr(record[field], "isoformat"):
            record[field] = record[field].isoformat()
    return record


class ManagedResource:
    """Base of a declarative resource; see the module docstring for what a subclass provides."""

    result_key = "resource"

    def __init__(self, module, client=None) -> None:
        self.module = module
        self.params = module.params
        self._client = client
        # Results besides the resource's state (e.g. a secret AWS returns once at creation). Every exit carries
        # them, failures included: what AWS gave once must not be lost when a later step fails.
        self.outputs = {}

    @property
    def client(self):
        """The SSM client, created on first use: a task that fails validation never loads the SDK's model."""
        if self._client is None:
            self._client = ssm_client(self.module)
        return self._client

    def validate(self) -> None:
        """Check the parameters without calling AWS; raise ParameterError."""

    def read(self):
        raise NotImplementedError

    def desired(self, current) -> dict:
        raise NotImplementedError

    def create(self, desired: dict) -> None:
        raise NotImplementedError

    def update(self, current: dict, desired: dict, changed: list) -> None:
        raise NotImplementedError

    def check_delete(self, current: dict) -> None:
        """Raise ParameterError when the resource must not be deleted (called in check mode too)."""

    def delete(self, current: dict) -> None:
        raise NotImplementedError

    def predict(self, current, desired: dict) -> dict:
        """What check mode reports as the after state: the current one with the desired fields applied."""
        return dict(current or {}, **desired)


def changed_fields(current: dict, desired: dict) -> list:
    """The keys of `desired` whose value differs in `current` (both normalised by the resource)."""
    return sorted(key for key, value in desired.items() if current.get(key) != value)


def _view(state, fields) -> dict:
    """`state` limited to `fields`, for the diff (an absent resource is shown as {})."""
    if not state:
        return {}
    return {field: state.get(field) for field in fields}


def _ensure_absent(resource: ManagedResource, current) -> dict:
    if current is None:
        return {"changed": False, resource.result_key: None}
    resource.check_delete(current)
    if not resource.module.check_mode:
        resource.delete(current)
    return {"changed": True, resource.result_key: None, "diff": {"before": current, "after": {}}}


def _ensure_present(resource: ManagedResource, current) -> dict:
    desired = resource.desired(current)
    changes = sorted(desired) if current is None else changed_fields(current, desired)
    if not changes:
        return {"changed": False, resource.result_key: current}
    if resource.module.check_mode:
        after = resource.predict(current, desired)
    else:
        if current is None:
            resource.create(desired)
        else:
            resource.update(current, desired, changes)
        after = resource.read()
    diff = {"before": _view(current, desired), "after": _view(after, desired)}
    return {"changed": True, resource.result_key: after, "diff": diff}


def ensure(resource: ManagedResource) -> None:
    """Run the declarative cycle for `resource` (its module's `state`: present | absent) and exit the module."""
    module = resource.module
    state = module.params["state"]
    try:
        resource.validate()
        current = resource.read()
        result = _ensure_absent(resource, current) if state == "absent" else _ensure_present(resource, current)
    except ParameterError as error:
        module.fail_json(msg=str(error), **resource.outputs)
    except AnsibleAWSError as error:
        if error.exception:
            module.fail_json_aws(error.exception, msg=error.message, **resource.outputs)
        module.fail_json(msg=error.message, **resource.outputs)
    module.exit_json(**result, **resource.outputs)
