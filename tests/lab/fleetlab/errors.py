"""AWS error codes of the SSM API, raised by lab handlers and serialized by moto like AWS does.

Codes are the exception shape names of botocore's SSM model, so clients see the same `Error.Code` as with AWS.
"""
from moto.core.exceptions import ServiceException


class LabError(ServiceException):
    """Base of every SSM error the lab raises; `code` is the AWS error code."""

    def __init__(self, message: str) -> None:
        super().__init__(self.code, message)


class ValidationException(LabError):
    code = "ValidationException"


class DoesNotExistException(LabError):
    code = "DoesNotExistException"


class AlreadyExistsException(LabError):
    code = "AlreadyExistsException"


class ResourceInUseException(LabError):
    code = "ResourceInUseException"


class ResourceLimitExceededException(LabError):
    code = "ResourceLimitExceededException"


class IdempotentParameterMismatch(LabError):
    code = "IdempotentParameterMismatch"


class InvalidInstanceId(LabError):
    code = "InvalidInstanceId"


class InvalidFilterKey(LabError):
    code = "InvalidFilterKey"


class InvalidFilter(LabError):
    code = "InvalidFilter"


class InvalidFilterValue(LabError):
    code = "InvalidFilterValue"


class InvalidInstanceInformationFilterValue(LabError):
    code = "InvalidInstanceInformationFilterValue"


class InvalidNextToken(LabError):
    code = "InvalidNextToken"


class InvalidResourceId(LabError):
    code = "InvalidResourceId"


class InvalidResourceType(LabError):
    code = "InvalidResourceType"


class InvalidActivation(LabError):
    code = "InvalidActivation"


class InvalidActivationId(LabError):
    code = "InvalidActivationId"


class InvalidCommandId(LabError):
    code = "InvalidCommandId"


class InvalidPluginName(LabError):
    code = "InvalidPluginName"


class TargetInUseException(LabError):
    code = "TargetInUseException"


class InvocationDoesNotExist(LabError):
    code = "InvocationDoesNotExist"


class InvalidDocument(LabError):
    code = "InvalidDocument"


class InvalidParameters(LabError):
    code = "InvalidParameters"


class InvalidOutputFolder(LabError):
    code = "InvalidOutputFolder"


class InvalidTypeNameException(LabError):
    code = "InvalidTypeNameException"


class InvalidTarget(LabError):
    code = "InvalidTarget"


class TooManyTagsError(LabError):
    code = "TooManyTagsError"


class FeatureNotAvailableException(LabError):
    code = "FeatureNotAvailableException"


class ServiceSettingNotFound(LabError):
    code = "ServiceSettingNotFound"


class ThrottlingException(LabError):
    """AWS answers throttled SSM calls with HTTP 400 and this code; botocore retries it in its standard mode."""

    code = "ThrottlingException"


class InternalServerError(LabError):
    code = "InternalServerError"
