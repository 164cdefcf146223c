"""The one family of Graph errors.

Every failure the service reports is a :class:`GraphError` carrying the HTTP
status, Graph's ``error.code`` and the exact ``error.message``. They are
rendered into Graph's error JSON in exactly one place
(:func:`graphdir.web.responses.error_response`). Messages follow
docs/behaviour.md#directory-error-messages and docs/behaviour.md#authentication-errors.
"""

from __future__ import annotations


class GraphError(Exception):
    """A Graph-shaped error: status + code + message (docs/behaviour.md#error-body)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"GraphError({self.status}, {self.code!r}, {self.message!r})"


# --- 400 ---------------------------------------------------------------------

def bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def invalid_object_id(value: str) -> GraphError:
    """Malformed object id in a path or reference (observed, docs/behaviour.md#directory-error-messages)."""
    return bad_request(f"Invalid object identifier '{value}'.")


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def invalid_skip_token() -> GraphError:
    """A ``$skiptoken`` that is not one this listing issued (paging: https://learn.microsoft.com/en-us/graph/paging)."""
    return bad_request("Invalid skip token: the $skiptoken value is not valid for this request.")


def value_too_large() -> GraphError:
    """A value the directory cannot store or compare (beyond the database's string or integer limits)."""
    return bad_request("A value in the request is too large.")


def already_exist(prop: str) -> GraphError:
    """Duplicate add of a member or owner (docs/behaviour.md#directory-error-messages)."""
    return bad_request(
        "One or more added object references already exist for the following modified properties: "
        f"'{prop}'."
    )


def mail_enabled_readonly() -> GraphError:
    return bad_request("Cannot Update a mail-enabled security groups and or distribution list.")


def mail_enabled_create() -> GraphError:
    return bad_request("Cannot Create a mail-enabled security groups and or distribution list.")


def on_premises_readonly() -> GraphError:
    return bad_request(
        "Unable to update the specified properties for on-premises mastered Directory Sync objects "
        "or objects currently undergoing migration."
    )


def last_owner() -> GraphError:
    return bad_request("The group must have at least one owner, hence this owner cannot be removed.")


def too_many_links() -> GraphError:
    return bad_request("A resource cannot contain more than 20 link changes.")


def invalid_request_body() -> GraphError:
    return GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")


def property_not_found(prop: str, type_name: str) -> GraphError:
    """Unknown property in a request body (the OData reader's message, code BadRequest) [INF]."""
    return GraphError(
        400,
        "BadRequest",
        f"The property '{prop}' does not exist on type '{type_name}'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type.",
    )


def required_property(prop: str) -> GraphError:
    """A required property missing on create (OBS: msgraph-sdk-code-generator#244)."""
    return bad_request(f"Property {prop} value is required but is empty or missing.")


def invalid_property_value(prop: str, resource: str) -> GraphError:
    """A body property with the wrong JSON type or an out-of-range value."""
    return bad_request(f"Invalid value specified for property '{prop}' of resource '{resource}'.")


def count_not_supported() -> GraphError:
    return bad_request("$count is not currently supported.")


def search_needs_consistency() -> GraphError:
    return unsupported_query(
        "Request with $search query parameter only works through MSGraph with a special request "
        "header: 'ConsistencyLevel: eventual'"
    )


def advanced_operator(op: str) -> GraphError:
    return unsupported_query(
        f"Operator '{op}' is not supported because the required parameters might be missing. "
        "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
    )


def unsupported_filter_property(prop: str, resource: str) -> GraphError:
    return unsupported_query(
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'."
    )


# --- 401 / 403 / 404 / 405 / 413 / 429 -------------------------------------

def unauthenticated(message: str) -> GraphError:
    """401 InvalidAuthenticationToken (docs/behaviour.md#authentication-errors) with Graph's WWW-Authenticate header."""
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
            'client_id="00000003-0000-0000-c000-000000000000"'
        },
    )


def forbidden() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def quota_exceeded(count: int, limit: int, prop: str) -> GraphError:
    return GraphError(
        403,
        "Directory_QuotaExceeded",
        f"Unable to perform operation as '{count}' would exceed the maximum quota count '{limit}' for forward-link '{prop}'.",
    )


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def segment_not_found(segment: str) -> GraphError:
    """Unknown URL segment: Graph's router answers 400 BadRequest 'Resource not found for the segment'."""
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def payload_too_large(limit: int) -> GraphError:
    return GraphError(413, "Request_BadRequest", f"The request body exceeds the maximum allowed size of {limit} bytes.")


# --- the HTTP layer (docs/behaviour.md#http-layer-errors; codes and wording are ours [INF]) ---

def request_timeout() -> GraphError:
    """The request body did not arrive within ``body_read_timeout`` (docs/behaviour.md#connection-limits)."""
    return GraphError(408, "RequestTimeout", "The request body was not received in time.", {"Connection": "close"})


def uri_too_long(limit: int) -> GraphError:
    return GraphError(414, "BadRequest", f"The request URI is longer than the maximum of {limit} bytes.", {"Connection": "close"})


def headers_too_large(limit: int) -> GraphError:
    return GraphError(431, "BadRequest", f"The request headers are larger than the maximum of {limit} bytes.", {"Connection": "close"})


def internal_error() -> GraphError:
    return GraphError(500, "InternalServerError", "An internal server error occurred.")


def service_unavailable() -> GraphError:
    return GraphError(503, "ServiceNotAvailable", "The service is temporarily unavailable. Please retry later.", {"Retry-After": "1"})


# --- $filter / $search parsing (added by the OData filter module) -----------

def invalid_filter(detail: str) -> GraphError:
    """Malformed ``$filter`` (syntax error, unknown function): Graph's OData parser answers
    ``400 BadRequest`` with ``Invalid filter clause: <detail>``."""
    return GraphError(400, "BadRequest", f"Invalid filter clause: {detail}")


def invalid_search(detail: str) -> GraphError:
    """Malformed or unsupported ``$search`` (https://learn.microsoft.com/en-us/graph/search-query-parameter); the wording is ours [INF]."""
    return unsupported_query(f"Invalid $search clause: {detail}")


# --- action parameters and the membership functions (docs/behaviour.md#membership-functions) ---

def too_many_identifiers(limit: int) -> GraphError:
    """More ids than a function takes: ``getByIds`` over 1,000 (observed, kubeguard/guard#132); the same
    text for ``checkMemberGroups``/``checkMemberObjects`` over 20 (ours, by analogy)."""
    return bad_request(f"Number of included identifiers cannot exceed '{limit}'.")


def result_size_limit_exceeded(limit: int) -> GraphError:
    """``getMemberGroups``/``getMemberObjects`` with more than ``limit`` results: the code is documented
    (https://learn.microsoft.com/en-us/graph/api/directoryobject-getmembergroups), the text ours."""
    return GraphError(
        400,
        "Directory_ResultSizeLimitExceeded",
        f"The result exceeds the maximum of {limit} groups for this function. Use the transitiveMemberOf relationship instead.",
    )


def unknown_parameter(name: str, operation: str) -> GraphError:
    """A body member that is not a parameter of the action (the OData reader's message) [INF]."""
    return GraphError(400, "BadRequest", f"The parameter '{name}' in the request payload is not a valid parameter for the operation '{operation}'.")


def unexpected_node(found: str, expected: str) -> GraphError:
    """A JSON value of the wrong shape for a parameter (an object or array where a string is due, …) [INF]."""
    return GraphError(400, "BadRequest", f"An unexpected '{found}' node was found when reading from the JSON reader. A '{expected}' node was expected.")


def cannot_convert(edm_type: str) -> GraphError:
    """A JSON primitive of the wrong type for a parameter (a number where a string is due, …) [INF]."""
    return GraphError(400, "BadRequest", f"Cannot convert a primitive value to the expected type '{edm_type}'. See the inner exception for more details.")


def null_not_allowed(name: str, edm_type: str) -> GraphError:
    """``null`` for a non-nullable parameter (the OData reader's message) [INF]."""
    t = f"{edm_type}[Nullable=False]"
    return GraphError(
        400,
        "BadRequest",
        f"A null value was found for the property named '{name}', which has the expected type '{t}'. The expected type '{t}' does not allow null values.",
    )


def query_options_not_supported() -> GraphError:
    """Query options on ``POST /directoryObjects/getByIds`` (observed, kubeguard/guard#132)."""
    return bad_request(
        "The following query options are not supported by this request method or cannot be applied to the requested resource: "
        "$filter,$expand,$orderby,$count,$inlinecount,$select,$skiptoken,$skip,$top"
    )
