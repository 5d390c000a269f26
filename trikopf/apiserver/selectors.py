"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Label selectors (``?labelSelector=``) are a comma-separated conjunction of requirements::

    app=web, tier in (front, back), !legacy, release, env!=prod, replicas>2

Field selectors (``?fieldSelector=``) are a comma-separated conjunction of ``field=value``,
``field==value`` or ``field!=value`` terms; a backslash escapes ``,``, ``=``, ``!`` and ``\\``.

Both parsers are pure functions with no I/O; they raise :class:`SelectorError` with a message
close to the real server's for malformed input, which the server answers with 400 BadRequest.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "Operator",
    "SelectorError",
    "parse_field_selector",
    "parse_label_selector",
    "supported_field_labels",
]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed or is not supported."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Operator(str, enum.Enum):
    """The operators of a label requirement (the wire spelling is the value)."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# --- validation of label keys and values, as in the API machinery ---------------------------

_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',"
    "  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _key_problems(key: str) -> list[str]:
    problems: list[str] = []
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif prefix:
        if len(prefix) > 253:
            problems.append("prefix part must be no more than 253 characters")
        if not _DNS_SUBDOMAIN_RE.match(prefix):
            problems.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character"
            )
    if not name:
        problems.append("name part must be non-empty")
    else:
        if len(name) > 63:
            problems.append("name part must be no more than 63 characters")
        if not _NAME_RE.match(name):
            problems.append(_NAME_RULE)
    return problems


def _validate_key(key: str) -> None:
    problems = _key_problems(key)
    if problems:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": ' + "; ".join(problems)
        )


def _validate_value(value: str, index: int, key: str) -> None:
    problems: list[str] = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if value and not _NAME_RE.match(value):
        problems.append(_VALUE_RULE)
    if problems:
        raise SelectorError(
            f"unable to parse requirement: values[{index}][{key}]: "
            f'Invalid value: "{value}": ' + "; ".join(problems)
        )


# --- label selectors ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LabelRequirement:
    """One requirement of a label selector: ``key <operator> values``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a set of labels satisfies this requirement."""
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            # A missing key is "not equal" to anything, as on a real server.
            return self.key not in labels or labels[self.key] not in self.values
        # gt / lt compare integers; a missing or non-integer label never matches.
        if self.key not in labels:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if op is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        if op is Operator.GREATER_THAN:
            return f"{self.key}>{self.values[0]}"
        if op is Operator.LESS_THAN:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op.value}{self.values[0]}"


@attrs.frozen(kw_only=True)
class LabelSelector:
    """A conjunction of label requirements; the empty selector matches everything."""

    requirements: tuple[LabelRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selector selects every object."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels (``None`` means none) is selected."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN_RE = re.compile(
    r"""
    \s*(?:
        (?P<op>==|!=|=|\(|\)|,|!|>|<)
      | (?P<word>[^\s=!(),<>]+)
    )
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # pragma: no cover - the pattern accepts every non-space character
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos}")
        tokens.append(match.group("op") or match.group("word"))
        pos = match.end()
    return tokens


_OPERATORS = {"=", "==", "!=", ",", "(", ")", "!", ">", "<"}


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector (``?labelSelector=``); raise :class:`SelectorError` if malformed."""
    tokens = _tokenize(text)
    requirements: list[LabelRequirement] = []
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def found(token: str | None) -> str:
        return "end of string" if token is None else f"'{token}'"

    while pos < len(tokens):
        negated = False
        if tokens[pos] == "!":
            negated = True
            pos += 1
        key = peek()
        if key is None or key in _OPERATORS:
            raise SelectorError(f"found {found(key)}, expected: identifier")
        pos += 1
        _validate_key(key)
        following = peek()
        if negated:
            if following not in (None, ","):
                raise SelectorError(f"found {found(following)}, expected: ',' or 'end of string'")
            requirements.append(LabelRequirement(key=key, operator=Operator.DOES_NOT_EXIST))
        elif following in (None, ","):
            requirements.append(LabelRequirement(key=key, operator=Operator.EXISTS))
        elif following in ("=", "==", "!="):
            pos += 1
            value = peek()
            if value is None or value == ",":
                value = ""  # "key=" selects an empty value, as on a real server
            elif value in _OPERATORS:
                raise SelectorError(f"found {found(value)}, expected: identifier")
            else:
                pos += 1
            _validate_value(value, 0, key)
            requirements.append(
                LabelRequirement(key=key, operator=Operator(following), values=(value,))
            )
        elif following in (">", "<"):
            pos += 1
            value = peek()
            if value is None or value in _OPERATORS:
                raise SelectorError(f"found {found(value)}, expected: identifier")
            pos += 1
            try:
                int(value)
            except ValueError:
                raise SelectorError(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an "
                    f'integer: values[0][{key}]: Invalid value: "{value}"'
                ) from None
            op = Operator.GREATER_THAN if following == ">" else Operator.LESS_THAN
            requirements.append(LabelRequirement(key=key, operator=op, values=(value,)))
        elif following in ("in", "notin"):
            pos += 1
            if peek() != "(":
                raise SelectorError(f"found {found(peek())}, expected: '('")
            pos += 1
            values: list[str] = []
            expect_value = True
            while True:
                token = peek()
                if token is None:
                    raise SelectorError("found 'end of string', expected: ')'")
                pos += 1
                if token == ")":
                    if expect_value and values:
                        values.append("")  # a trailing comma stands for an empty value
                    break
                if token == ",":
                    if expect_value:
                        values.append("")
                    expect_value = True
                    continue
                if token in _OPERATORS or not expect_value:
                    raise SelectorError(f"found '{token}', expected: ',' or ')'")
                values.append(token)
                expect_value = False
            if not values:
                raise SelectorError(
                    "unable to parse requirement: values: Invalid value: []: "
                    "for 'in', 'notin' operators, values set can't be empty"
                )
            for index, value in enumerate(values):
                _validate_value(value, index, key)
            requirements.append(
                LabelRequirement(key=key, operator=Operator(following), values=tuple(values))
            )
        else:
            raise SelectorError(f"found {found(following)}, expected: in, notin, =, ==, !=, gt, lt")
        # Between requirements: a comma, then another requirement.
        token = peek()
        if token is None:
            break
        if token != ",":
            raise SelectorError(f"found {found(token)}, expected: ',' or 'end of string'")
        pos += 1
        if peek() is None:
            raise SelectorError("found 'end of string', expected: identifier")
    return LabelSelector(requirements=tuple(requirements))


# --- field selectors ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FieldRequirement:
    """One term of a field selector: ``field = value`` or ``field != value``."""

    field: str
    value: str
    negated: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's field (as the server renders it as text) satisfies the term."""
        actual = field_value(obj, self.field)
        return (actual != self.value) if self.negated else (actual == self.value)

    def __str__(self) -> str:
        value = _escape_field_value(self.value)
        return f"{self.field}{'!=' if self.negated else '='}{value}"


@attrs.frozen(kw_only=True)
class FieldSelector:
    """A conjunction of field requirements; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selector selects every object."""
        return not self.requirements

    @property
    def fields(self) -> tuple[str, ...]:
        """The field labels the selector refers to, in order."""
        return tuple(r.field for r in self.requirements)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object is selected."""
        return all(r.matches(obj) for r in self.requirements)

    def check_supported(self, *, group: str, kind: str, extra: Sequence[str] = ()) -> None:
        """Raise :class:`SelectorError` if a field is not selectable for this kind.

        ``extra`` adds fields a custom resource declares as ``selectableFields``.
        """
        allowed = supported_field_labels(group=group, kind=kind) | {f.lstrip(".") for f in extra}
        for field in self.fields:
            if field not in allowed:
                raise SelectorError(f"field label not supported: {field}")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape_field_value(raw: str) -> str:
    out: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char != "\\":
            if char in ",=":
                raise SelectorError(f"invalid field selector value: unescaped {char!r} in {raw!r}")
            out.append(char)
            continue
        following = next(chars, None)
        if following is None:
            raise SelectorError(f"invalid field selector value: trailing backslash in {raw!r}")
        if following not in "\\,=!":
            raise SelectorError(f"invalid field selector value: invalid escape sequence in {raw!r}")
        out.append(following)
    return "".join(out)


def _find_unescaped_operator(term: str) -> tuple[int, str] | None:
    escaped = False
    for index, char in enumerate(term):
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
            continue
        if term.startswith("!=", index):
            return index, "!="
        if term.startswith("==", index):
            return index, "=="
        if char == "=":
            return index, "="
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a field selector (``?fieldSelector=``); raise :class:`SelectorError` if malformed."""
    requirements: list[FieldRequirement] = []
    if not text.strip():
        return FieldSelector()
    for term in _split_unescaped(text, ","):
        term = term.strip()
        if not term:
            raise SelectorError(f"invalid selector: '{text}'; can't understand ''")
        found = _find_unescaped_operator(term)
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        index, op = found
        field = term[:index].strip()
        if not field:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        value = _unescape_field_value(term[index + len(op) :].strip())
        requirements.append(FieldRequirement(field=field, value=value, negated=op == "!="))
    return FieldSelector(requirements=tuple(requirements))


# Fields that differ from a plain dotted path into the object.
_FIELD_ALIASES = {"source": "source.component"}


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """Render an object's field as the text a field selector compares against.

    Missing fields are the empty string; booleans are ``true``/``false``; numbers are decimal.
    """
    node: Any = obj
    for part in _FIELD_ALIASES.get(field, field).split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
        if node is None:
            return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (int, float, str)):
        return str(node)
    return ""


_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_KIND_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    ("", "Event"): _EVENT_FIELDS,
    ("events.k8s.io", "Event"): frozenset(
        {
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        }
    ),
    ("", "Namespace"): frozenset({"status.phase"}),
    ("", "Secret"): frozenset({"type"}),
    ("", "Node"): frozenset({"spec.unschedulable"}),
    ("", "ReplicationController"): frozenset({"status.replicas"}),
    ("apps", "ReplicaSet"): frozenset({"status.replicas"}),
    ("batch", "Job"): frozenset({"status.successful"}),
    ("certificates.k8s.io", "CertificateSigningRequest"): frozenset({"spec.signerName"}),
}


def supported_field_labels(*, group: str, kind: str) -> frozenset[str]:
    """The field labels a real server accepts in field selectors for this kind."""
    return _COMMON_FIELDS | _KIND_FIELDS.get((group, kind), frozenset())
