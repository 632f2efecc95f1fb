"""Request validation: pydantic models in, ``{field, message}`` details out.

Request models forbid unknown fields; the system fields (ids, tenant,
audit columns) are refused by name before the model even runs, so the
caller learns exactly which fields the server owns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from werkzeug.datastructures import MultiDict

from ensemble.errors import InvalidInput

__all__ = [
    "RequestModel",
    "QueryModel",
    "ResponseModel",
    "ListQuery",
    "Item",
    "ItemList",
    "ListMeta",
    "ErrorBody",
    "Text",
    "Name",
    "Email",
    "Password",
    "Timestamp",
    "SYSTEM_FIELDS",
    "sort_param",
    "optional",
    "validate_body",
    "validate_query",
    "validation_details",
]

MAX_PAGE = 200
MAX_OFFSET = 10_000

# Fields the server owns.  Includes the spellings of the product documents'
# clients (companyId, createdBy, modifiedBy, ...) so that a client written
# against them gets a clear refusal rather than "unknown field".
SYSTEM_FIELDS = frozenset({
    "id", "tenant_id", "created_at", "created_by", "updated_at", "updated_by",
    "company_id", "created_by_name", "modified_by", "modified_by_name", "modified_at",
    "tenantId", "companyId", "createdAt", "createdBy", "createdByName",
    "updatedAt", "updatedBy", "modifiedBy", "modifiedByName", "modifiedAt",
})


def _clean_text(value: str) -> str:
    # Postgres text cannot hold NUL, and a lone surrogate cannot be encoded
    # as UTF-8: both would otherwise fail deep in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads like a type
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(_clean_text)]


Name = Text(200, 1)
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_clean_text),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128), AfterValidator(_clean_text)]

_MIN_TS = datetime(1900, 1, 1, tzinfo=timezone.utc)
_MAX_TS = datetime(9000, 1, 1, tzinfo=timezone.utc)


def _reasonable_datetime(value: datetime) -> datetime:
    # Converting an extreme year with an offset to UTC overflows in the driver.
    if not _MIN_TS <= value <= _MAX_TS:
        raise ValueError("must be between 1900 and 9000")
    return value.astimezone(timezone.utc)


Timestamp = Annotated[AwareDatetime, AfterValidator(_reasonable_datetime)]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> Any:
    """A field that may be omitted but not sent as ``null`` (PATCH of a NOT NULL column).

    Pydantic does not validate defaults, so the ``None`` default means
    "absent"; an explicit null fails the type.  The schema drops the default
    so the spec does not advertise ``null``.
    """
    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        """Only the fields the client actually sent (PATCH semantics)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class QueryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    # extra="ignore": a row may carry columns the API must not show
    # (password hashes, hub keys); only declared fields go out.
    model_config = ConfigDict(extra="ignore")


class ListQuery(QueryModel):
    limit: int = Field(50, ge=1, le=MAX_PAGE, description="Page size.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip (bounded; narrow the filter instead).")


def sort_param(allowed: Iterable[str], default: str) -> Any:
    """A ``sort`` query field whose values (``name`` or ``-name``) are listed in the spec."""
    values = tuple(sorted({v for name in allowed for v in (name, f"-{name}")}))
    return Annotated[
        Literal[values] | None,
        Field(description=f"Sort field; prefix - for descending. Default {default}."),
    ]


T = TypeVar("T")


class Item(ResponseModel, Generic[T]):
    data: T

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{params[0].__name__}Response"


class ListMeta(ResponseModel):
    total: int
    limit: int
    offset: int


class ItemList(ResponseModel, Generic[T]):
    data: list[T]
    meta: ListMeta

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{params[0].__name__}List"


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable error code.")
    message: str
    details: Any = Field(None, description="For 422: a list of {field, message}.")


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = [str(part) for part in err.get("loc", ()) if not str(part).startswith(("function-after", "literal["))]
        field = ".".join(loc) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        out.append({"field": field, "message": message})
    return out


def validate_body(model: type[BaseModel], body: Any) -> BaseModel:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("request body must be an object", details=[{"field": "body", "message": "expected an object"}])
    # A model may declare one of these names for its own meaning (login's
    # tenant_id picks which tenant to log into); then it is not refused here.
    system = sorted(name for name in body if name in SYSTEM_FIELDS and name not in model.model_fields)
    if system:
        raise InvalidInput(
            "system fields are set by the server",
            details=[{"field": name, "message": "set by the server; cannot be sent"} for name in system],
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput("request body is invalid", details=validation_details(exc)) from None


def _is_list(annotation: Any) -> bool:
    """``list[X]``, ``list[X] | None`` or ``Optional[list[X]]``."""
    if get_origin(annotation) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(annotation))


def validate_query(model: type[BaseModel], args: MultiDict[str, str]) -> BaseModel:
    """Query parameters into ``model``: repeated for list fields, else the first value."""
    data: dict[str, Any] = {}
    fields: Mapping[str, Any] = model.model_fields
    for name in args:
        values = args.getlist(name)
        info = fields.get(name)
        data[name] = values if info is not None and _is_list(info.annotation) else values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("query parameters are invalid", details=validation_details(exc)) from None
