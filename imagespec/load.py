"""YAML -> pydantic models, keeping file:line:col of every key and list item.

Parsing uses ruamel.yaml's round-trip loader, whose nodes know where they
stand.  Each file becomes plain data plus a position map (key path -> Pos);
pydantic validates the plain data and every error is mapped back through the
position map, so messages read ``profiles/login.yaml:12:5: ...``.  All files
are read and all problems reported in one pass.
"""

from __future__ import annotations

import datetime
import re
import typing
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import ConfigError, Pos, Problem, suggest
from .model import Profile, Site
from .safe import OBJECT_NAME_RE, unsafe_char
from .source import SiteSource

KeyPath = tuple[Union[str, int], ...]
PosMap = dict[KeyPath, Pos]

SITE_FILE = "imagespec.yaml"
PROFILE_DIR = "profiles"


@dataclass(frozen=True)
class Located:
    """A validated model plus where each of its keys and items came from."""

    path: str
    positions: PosMap

    def pos(self, *keys: Union[str, int]) -> Pos:
        """Position of a key path, falling back to the nearest enclosing node."""
        path: KeyPath = tuple(keys)
        while path:
            found = self.positions.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return Pos(self.path, 1, 1)

    def at(self, *prefix: Union[str, int]) -> Callable[[str], Pos]:
        """Position lookup for the keys under a fixed key path (e.g. a profile's attributes)."""
        return lambda name: self.pos(*prefix, name)


@dataclass(frozen=True)
class LoadedProfile(Located):
    name: str = ""
    model: Profile = field(default_factory=Profile)


@dataclass(frozen=True)
class LoadedSite(Located):
    model: Site = field(default_factory=lambda: Site(site=""))


@dataclass
class SiteDocs:
    """Everything loaded from a site: settings, profiles, and the source to read files from."""

    source: SiteSource
    site: LoadedSite
    profiles: dict[str, LoadedProfile]
    warnings: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------- YAML parsing

_yaml = YAML(typ="rt")
_yaml.allow_duplicate_keys = False

# Bounds on one document, so that a small hostile file cannot exhaust the machine:
# aliases are expanded while converting, so "billion laughs" hits MAX_NODES at once.
MAX_NODES = 200_000
MAX_DEPTH = 32
_STR_TAG = "tag:yaml.org,2002:str"
# Fields whose free text may span lines; no other string may hold a control character.
_MULTILINE_KEYS = frozenset({"description"})


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int]:
    """Where a key stands; keys brought in by a YAML merge (`<<`) have no place of their own."""
    try:
        found = node.lc.key(key)
    except (KeyError, TypeError):
        found = None
    if not found:
        return node.lc.line or 0, node.lc.col or 0
    return int(found[0]), int(found[1])


class _Converter:
    """ruamel nodes -> plain Python values, recording positions and refusing what YAML reinterprets.

    YAML reads `true:` as a boolean key, `0755` as the number 755 and `.nan`
    as a float; imagespec wants the text the admin wrote, so such scalars are
    errors that say to quote them.
    """

    def __init__(self, rel: str):
        self.rel = rel
        self.positions: PosMap = {}
        self.problems: list[Problem] = []
        self.nodes = 0

    def pos(self, path: KeyPath) -> Pos:
        while path and path not in self.positions:
            path = path[:-1]
        return self.positions.get(path, Pos(self.rel, 1, 1))

    def fail(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.pos(path), message))

    def convert(self, node: Any, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError([Problem(self.pos(path), _TOO_LARGE)])
        if len(path) > MAX_DEPTH:
            raise ConfigError([Problem(self.pos(path), _TOO_DEEP)])
        tag = getattr(getattr(node, "tag", None), "value", None)
        if isinstance(node, TaggedScalar) and tag == _STR_TAG:
            return self.scalar(str(node.value), path)
        if tag and not tag.startswith("tag:yaml.org,2002:"):
            self.fail(path, f"YAML tag '{tag}' is not supported; remove it")
            return None
        if isinstance(node, CommentedMap):
            return self.mapping(node, path)
        if isinstance(node, CommentedSeq):
            return [self.convert(value, (*path, i)) for i, value in self.items(node, path)]
        return self.scalar(node, path)

    def items(self, node: CommentedSeq, path: KeyPath) -> Iterator[tuple[int, Any]]:
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            self.positions[(*path, index)] = Pos(self.rel, line + 1, col + 1)
            yield index, value

    def mapping(self, node: CommentedMap, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            line, col = _key_position(node, key)
            name = _key_text(key)
            here = (*path, name)
            self.positions[here] = Pos(self.rel, line + 1, col + 1)
            if name == _NOT_TEXT:
                self.fail(here, f"the key {key!r} is not text; write a plain name")
                continue
            if not isinstance(key, (str, TaggedScalar)):
                self.fail(
                    here, f"the key '{name}' is read by YAML as {_kind(key)}; quote it: '{name}':"
                )
                continue
            self.check_text(name, here, multiline=False)
            out[name] = self.convert(value, here)
        return out

    def scalar(self, node: Any, path: KeyPath) -> Any:
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            if _reformatted(node):
                self.fail(
                    path,
                    f"the number {node} is not written as plain decimal digits; quote it if it is text",
                )
            return int(node)
        if isinstance(node, float):
            self.fail(
                path,
                f"the number {node!r} is read by YAML as a floating-point number, which changes its text (8.10 becomes 8.1); quote it",
            )
            return None
        if isinstance(node, str):
            self.check_text(str(node), path, multiline=bool(path) and path[-1] in _MULTILINE_KEYS)
            return str(node)
        if isinstance(node, (datetime.date, datetime.datetime)):
            return node  # the schema's type error says to quote it
        self.fail(path, f"a YAML {type(node).__name__} is not allowed here; write plain text")
        return None

    def check_text(self, text: str, path: KeyPath, multiline: bool) -> None:
        bad = unsafe_char(text, multiline)
        if bad is not None:
            what = unicodedata.name(bad, f"U+{ord(bad):04X}")
            self.fail(
                path, f"contains the control character {what}; write one line of visible text"
            )


_TOO_LARGE = f"more than {MAX_NODES} values (YAML aliases expand into copies); split the file or drop the aliases"
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels; imagespec files are only a few levels deep"
_NOT_TEXT = "\0not text"


def _flow_depth(text: str) -> int:
    """How deep [ and { nest, roughly (quotes and comments are not parsed).

    ruamel's parser takes seconds on thousands of nested brackets before it
    runs out of stack, so deep flow nesting is refused before parsing.
    """
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def _reformatted(number: int) -> bool:
    """True when YAML's integer is not the text written: 0755, 0o755, 0x1f, 1_000, +5."""
    if type(number) is int:
        return False
    width = getattr(number, "_width", None)
    plain = type(number).__name__ == "ScalarInt" and not getattr(number, "_underscore", None)
    return not (plain and width == len(str(int(number))))


def _key_text(key: Any) -> str:
    """A mapping key as the text written; _NOT_TEXT for a sequence or mapping used as a key."""
    if isinstance(key, TaggedScalar):
        return str(key.value)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return str(key).lower()
    if isinstance(key, (str, int, float, datetime.date)):
        return str(key)
    return _NOT_TEXT


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a date" if isinstance(value, datetime.date) else type(value).__name__


def _yaml_message(exc: MarkedYAMLError) -> str:
    duplicate = re.search(r'found duplicate key "(.*?)"', str(exc.problem or ""))
    if duplicate:
        return f"duplicate key '{duplicate.group(1)}'; keep only one of them"
    what = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
    return "YAML syntax error: " + " ".join(what.split())


def parse_yaml(rel: str, data: bytes) -> tuple[Any, PosMap]:
    """Parse one YAML document; raise ConfigError with the position of a syntax error."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [Problem(Pos(rel, line, col), f"not UTF-8 text ({exc.reason}); save the file as UTF-8")]
        ) from None
    if _flow_depth(text) > 4 * MAX_DEPTH:  # generous: brackets inside plain text count too
        raise ConfigError([Problem(Pos(rel, 1, 1), _TOO_DEEP)])
    try:
        node = _yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Pos(rel, mark.line + 1, mark.column + 1) if mark else Pos(rel, 1, 1)
        raise ConfigError([Problem(where, _yaml_message(exc))]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(Pos(rel, 1, 1), f"YAML error: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Problem(Pos(rel, 1, 1), _TOO_DEEP)]) from None
    converter = _Converter(rel)
    data = converter.convert(node, ())
    if converter.problems:
        raise ConfigError(converter.problems)
    return data, converter.positions


# ---------------------------------------------------------------- validation

_TYPE_WORDS = {
    "string_type": "a string",
    "list_type": "a list",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date ({value}); quote it"
    return type(value).__name__


def _resolve_loc(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, Any, Optional[str]]:
    """Map a pydantic loc onto the data: (data path, value there, trailing missing key).

    pydantic adds union member tags ('str', 'list[str]') to loc; they match
    nothing in the data and are skipped.
    """
    path: list[Union[str, int]] = []
    current = data
    tail: Optional[str] = None
    for index, part in enumerate(loc):
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(current, dict):
            tail = part
    return tuple(path), current, tail


def _model_fields_at(model: type[BaseModel], path: KeyPath) -> list[str]:
    """Names of the fields the model allows at a data path (for 'did you mean')."""
    annotation: Any = model
    for part in path:
        annotation = _descend(annotation, part)
        if annotation is None:
            return []
    target = _unwrap_model(annotation)
    return list(_yaml_keys(target)) if target else []


def _yaml_keys(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields by the key written in YAML (a field's alias, e.g. sync's `from`)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _unwrap_model(annotation: Any) -> Optional[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found:
            return found
    return None


def _descend(annotation: Any, part: Union[str, int]) -> Any:
    model = _unwrap_model(annotation) if typing.get_origin(annotation) not in (dict, list) else None
    if model is not None and isinstance(part, str):
        info = _yaml_keys(model).get(part)
        return info.annotation if info else None
    for candidate in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(candidate)
        if origin is dict and isinstance(part, str):
            return typing.get_args(candidate)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(candidate)[0]
    return None


def _problems_from(
    exc: ValidationError, model: type[BaseModel], data: Any, located: Located
) -> list[Problem]:
    """Turn pydantic errors into one problem per offending place."""
    grouped: dict[tuple[KeyPath, Optional[str]], list[dict[str, Any]]] = {}
    for err in exc.errors():
        path, _value, tail = _resolve_loc(data, tuple(err["loc"]))
        grouped.setdefault((path, tail), []).append(dict(err))
    problems = []
    for (path, tail), errors in grouped.items():
        problems.append(Problem(located.pos(*path), _message(errors, path, tail, model, data)))
    return problems


def _message(
    errors: list[dict[str, Any]],
    path: KeyPath,
    tail: Optional[str],
    model: type[BaseModel],
    data: Any,
) -> str:
    first = errors[0]
    kind = first["type"]
    where = ".".join(str(p) for p in path) or "top level"
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _model_fields_at(model, path[:-1])
        hint = suggest(key, allowed)
        if not hint and allowed:
            hint = f"; allowed keys: {', '.join(allowed)}"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"missing required key '{tail}' in {where}; add it"
    _, value, _ = _resolve_loc(data, path)
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return f"{where}: {_describe(value)} is not allowed; use one of {expected}"
    bounds = {"greater_than_equal": "at least {ge}", "less_than_equal": "at most {le}"}
    if kind in bounds:
        return f"{where}: must be {bounds[kind].format(**first.get('ctx', {}))}, got {_describe(value)}"
    words = [_TYPE_WORDS[e["type"]] for e in errors if e["type"] in _TYPE_WORDS]
    if words and len(words) == len(errors):
        expected = " or ".join(dict.fromkeys(words))
        return f"{where}: expected {expected}, got {_describe(value)}"
    msg = str(first["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{where}: {msg}"


def _drop_empty_sections(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    """`packages:` with every item commented out is an empty list, not an error."""
    for key in keys:
        if key in data and data[key] is None:
            del data[key]


def _load_document(
    source: SiteSource, rel: str, model: type[BaseModel], empty_ok: bool
) -> tuple[Optional[BaseModel], PosMap, list[Problem]]:
    try:
        raw = source.read(rel)
    except FileNotFoundError:
        return None, {}, [Problem(Pos(rel), "file not found")]
    except OSError as exc:
        return None, {}, [Problem(Pos(rel), f"cannot read: {exc.strerror or exc}")]
    try:
        data, positions = parse_yaml(rel, raw)
    except ConfigError as exc:
        return None, {}, list(exc.problems)
    if data is None and empty_ok:
        data = {}
    located = Located(rel, positions)
    if not isinstance(data, dict):
        return (
            None,
            positions,
            [Problem(Pos(rel, 1, 1), f"expected a mapping, got {_describe(data)}")],
        )
    _drop_empty_sections(data, tuple(model.model_fields))
    try:
        return model.model_validate(data), positions, []
    except ValidationError as exc:
        return None, positions, _problems_from(exc, model, data, located)


class ParseCache(Protocol):
    """Parse results kept beyond this process (cache.DiskCache), keyed by content."""

    def get(self, key: tuple[str, ...]) -> Any: ...

    def put(self, key: tuple[str, ...], value: Any) -> None: ...


class NoCache:
    """No persistent cache: each process parses each blob once."""

    def get(self, key: tuple[str, ...]) -> Any:
        return None

    def put(self, key: tuple[str, ...], value: Any) -> None:
        return None


_PARSED: dict[tuple[str, str, str], tuple[Optional[BaseModel], PosMap, list[Problem]]] = {}


def _load_cached(
    source: SiteSource,
    rel: str,
    model: type[BaseModel],
    empty_ok: bool,
    cache: ParseCache,
) -> tuple[Optional[BaseModel], PosMap, list[Problem]]:
    """Parse each distinct blob once per process (git revisions share most blobs), and
    once ever with a persistent cache."""
    key = source.cache_key(rel)
    if key is None:
        return _load_document(source, rel, model, empty_ok)
    cache_id = (model.__name__, rel, key)
    if cache_id not in _PARSED:
        found = cache.get(cache_id)
        if found is None:
            found = _load_document(source, rel, model, empty_ok)
            cache.put(cache_id, found)
        _PARSED[cache_id] = found
    return _PARSED[cache_id]


def load_site(source: SiteSource, cache: ParseCache = NoCache()) -> SiteDocs:
    """Read imagespec.yaml and every profile; raise ConfigError listing every problem.

    The persistent parse cache is the caller's (an edge: it lives on disk).
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    site_model, site_pos, found = _load_cached(source, SITE_FILE, Site, False, cache)
    problems += found
    profiles: dict[str, LoadedProfile] = {}
    for rel in source.list_files(PROFILE_DIR):
        name, _, ext = rel[len(PROFILE_DIR) + 1 :].rpartition(".")
        if ext in ("yml", "YAML") or "/" in name:
            warnings.append(
                Problem(Pos(rel), "ignored: profiles are profiles/<name>.yaml", "warning")
            )
            continue
        if ext != "yaml":
            continue
        if not OBJECT_NAME_RE.match(name):
            problems.append(
                Problem(
                    Pos(rel),
                    f"profile name '{name}' may only use letters, digits, '_', '.', '-'; rename the file",
                )
            )
            continue
        model, positions, found = _load_cached(source, rel, Profile, True, cache)
        problems += found
        if isinstance(model, Profile):
            profiles[name] = LoadedProfile(rel, positions, name=name, model=model)
    if problems:
        raise ConfigError(problems)
    assert isinstance(site_model, Site)
    site = LoadedSite(SITE_FILE, site_pos, model=site_model)
    return SiteDocs(source=source, site=site, profiles=profiles, warnings=warnings)
