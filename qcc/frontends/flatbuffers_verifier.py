"""A FlatBuffers verifier driven by a parsed ``.fbs`` schema, and ``verify_tflite`` for models.

Why: Python's ``flatbuffers`` runtime (and so ``ai_edge_litert.schema_py_generated``) trusts
its input. An offset or a length read from a corrupt file is used as is: a string length of
0x7fffffff slices past the end of the buffer without complaint and yields raw file bytes, an
offset into the middle of a table reads garbage as a vtable. The C++ runtime avoids this by
running ``flatbuffers::Verifier`` (through the generated ``tflite::VerifyModelBuffer``) over
the whole buffer before anything is read; LiteRT's ``VerifyAndBuildFromBuffer`` does so for
every model it loads. This module does the same in Python, so a corrupt file is rejected with
one line that names where the damage is::

    model.tflite: corrupt flatbuffer: Model.subgraphs[0].tensors[3].name: string of 2147483647
    bytes runs past the end of the file (at byte 1234)

What is checked (``flatbuffers/verifier.h`` and the generated ``Verify`` methods, plus the
few extra checks marked *):

* the buffer: at least 12 bytes (``FLATBUFFERS_MIN_BUFFER_SIZE``) and smaller than 2 GiB
  (``FLATBUFFERS_MAX_BUFFER_SIZE``); the file identifier when the schema declares one
  (``"TFL3"``); the root offset non-zero, in range and the root table 4-byte aligned;
* every table: 4-byte aligned with its 4 bytes in range; the signed offset to its vtable
  lands inside the buffer, 2-byte aligned; the vtable size is even, at least 4* and the
  vtable fits; the table object size (vtable entry 1) is at least 4* and the object fits*;
  every present field lies inside the table object* and is aligned to its size (structs: to
  their alignment);
* every offset field (sub-table, string, vector, union value): aligned, non-zero, below
  2^31 and pointing inside the buffer; required fields present;
* strings: the length fits and a NUL terminator follows inside the buffer;
* vectors: ``length * element size`` fits, element alignment* for 8-byte elements; vectors of
  tables and strings are verified element by element, non-zero in-range element offsets*;
  vectors of scalars and structs (``data:[ubyte]`` weights) by bounds only, never per byte;
* unions: the ``_type`` field picks the table (or struct, or string) the value is verified
  as; NONE and unknown type values are accepted without looking at the value beyond its
  offset, as C++ does (a newer schema may know the type); vectors of unions need equally
  long type and value vectors;
* nested flatbuffers (``(nested_flatbuffer: "T")``) as buffers of their own;
* limits: tables nested at most 64 deep and at most 1,000,000 tables visited (a table
  referenced many times counts once per reference, as in C++), so deep chains and shared
  sub-trees cannot make verification run away.

Fields marked ``(deprecated)`` are skipped, as the generated C++ skips them. Scalar values
(enum values, bools) are not range-checked, as in C++. Alignment is relative to the start of
the buffer, as in C++. Checks marked * go beyond C++ (which, for one, never reads the table
object size); every conforming builder (C++, Python, the TFLite converter) satisfies them.
Checked against LiteRT's own verifier on ~10,000 mutated models: every file it rejects is
rejected here too.

TFLite specifics (``verify_tflite``): as LiteRT's loader, only the first 2 GiB - 2 bytes are
verified as a flatbuffer (models over 2 GiB keep their weights after the flatbuffer), and data
stored there must lie inside the whole file: ``Buffer.offset``/``size`` and
``Operator.large_custom_options_offset``/``_size`` when the offset is > 1
(``interpreter_builder.cc``: "Constant buffer specified an out of range offset", "Custom
Option Offset ... is out of bound").

The schema language (``Schema.parse``, a lark LALR grammar) covers what TFLite's schema and
ordinary schemas use: ``namespace``, ``attribute``, ``enum`` with an underlying type (and
``bit_flags``), ``union`` (with aliases and explicit values), ``table`` and ``struct`` (with
fixed-size arrays), field defaults, metadata such as ``(deprecated)``, ``(required)``,
``(force_align: 16)``, ``(id: 3)``, ``(nested_flatbuffer: "T")``, ``root_type``,
``file_identifier``, ``file_extension`` and ``rpc_service``. Not supported: ``include``
(schemas must be self-contained), 64-bit offsets (``offset64``/``vector64``) and the contents of
``flexbuffer`` fields (verified as byte vectors). The TFLite schema is vendored next to this
module as ``tflite_schema.fbs``.

Public API: ``verify_tflite(data, label)``, ``verify_buffer(schema, data, root=...)``,
``Schema`` (``Schema.parse(text)``, ``Schema.load(path)``), ``tflite_schema()``, and the
exceptions ``FlatbufferError`` / ``SchemaError`` (both ``QccError``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from qcc.errors import QccError

__all__ = [
    "MAX_BUFFER_SIZE",
    "EnumDef",
    "FieldDef",
    "FlatbufferError",
    "ObjectDef",
    "Schema",
    "SchemaError",
    "TypeRef",
    "tflite_schema",
    "verify_buffer",
    "verify_tflite",
]

MAX_BUFFER_SIZE = (1 << 31) - 1
"""``FLATBUFFERS_MAX_BUFFER_SIZE``: a flatbuffer must be smaller than this."""
MIN_BUFFER_SIZE = 12
"""``FLATBUFFERS_MIN_BUFFER_SIZE``: root offset, vtable offset and a 4-byte vtable."""
MAX_DEPTH = 64
MAX_TABLES = 1_000_000


class SchemaError(QccError):
    """An ``.fbs`` schema that cannot be parsed or resolved."""


class FlatbufferError(QccError):
    """A buffer that fails verification. ``path`` names the object at fault
    (``Model.subgraphs[0].tensors[3].name``, empty for the buffer as a whole), ``reason`` says
    what is wrong and ``position`` is the byte where it was found."""

    def __init__(self, message: str, path: str = "", reason: str = "", position: int = 0):
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.position = position

    def __reduce__(self):  # keep the attributes when pickled (multiprocessing, xdist)
        return type(self), (str(self), self.path, self.reason, self.position)


# ---------------------------------------------------------------------------------------------
# Schema model

SCALAR_SIZES: dict[str, int] = {
    "bool": 1, "byte": 1, "ubyte": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4,
    "float": 4, "long": 8, "ulong": 8, "double": 8,
}  # fmt: skip
_SCALAR_ALIASES = {
    "int8": "byte", "uint8": "ubyte", "int16": "short", "uint16": "ushort", "int32": "int",
    "uint32": "uint", "int64": "long", "uint64": "ulong", "float32": "float",
    "float64": "double",
}  # fmt: skip
_INTEGER_TYPES = frozenset(SCALAR_SIZES) - {"bool", "float", "double"}


@dataclass(frozen=True)
class TypeRef:
    """A resolved field type, in the spirit of flatc's reflection ``Type``.

    ``kind`` is a scalar name (``"int"``, ``"ubyte"``, ...; ``ref`` names the enum when the
    field is enum-typed), ``"string"``, ``"table"``/``"struct"``/``"union"`` (``ref`` is the
    fully qualified name), ``"utype"`` (the hidden ``_type`` field of a union, one byte;
    ``ref`` is the union), ``"vector"`` or ``"array"`` (struct-only fixed-size array of
    ``length``), with ``element`` the element type."""

    kind: str
    ref: str | None = None
    element: TypeRef | None = None
    length: int | None = None

    @property
    def is_scalar(self) -> bool:
        return self.kind in SCALAR_SIZES

    def __str__(self) -> str:
        if self.kind == "vector":
            return f"[{self.element}]"
        if self.kind == "array":
            return f"[{self.element}:{self.length}]"
        if self.kind == "utype":
            return f"{self.ref} (type)"
        return self.ref if self.ref is not None else self.kind


@dataclass(frozen=True)
class FieldDef:
    """A table or struct field. For a table field ``id`` is its vtable index and ``slot`` the
    vtable offset ``4 + 2 * id``; for a struct field ``slot`` is its byte offset inside the
    struct. A union field ``u`` appears as two fields, as in flatc: ``u_type`` (kind
    ``utype``) then ``u``."""

    name: str
    type: TypeRef
    id: int
    slot: int
    default: str | None = None
    attributes: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def deprecated(self) -> bool:
        return "deprecated" in self.attributes

    @property
    def required(self) -> bool:
        return "required" in self.attributes


@dataclass(frozen=True)
class ObjectDef:
    """A table or a struct; ``size`` and ``align`` are the inline layout of a struct."""

    name: str
    is_struct: bool
    fields: tuple[FieldDef, ...]
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    size: int = 0
    align: int = 1

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]

    def field(self, name: str) -> FieldDef:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


@dataclass(frozen=True)
class EnumDef:
    """An enum or a union. ``values`` maps member names to values (``NONE`` = 0 for unions);
    for a union, ``members`` maps each value but 0 to the fully qualified name of its table,
    struct, or ``"string"``."""

    name: str
    underlying: str
    values: Mapping[str, int]
    is_union: bool = False
    members: Mapping[int, str] = field(default_factory=dict)
    attributes: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class Schema:
    """A parsed, resolved ``.fbs`` schema. Names are fully qualified (``tflite.Model``);
    ``table``/``struct``/``enum`` also accept the short name when it is unambiguous."""

    tables: Mapping[str, ObjectDef]
    structs: Mapping[str, ObjectDef]
    enums: Mapping[str, EnumDef]
    unions: Mapping[str, EnumDef]
    root_type: str | None = None
    file_identifier: str | None = None
    file_extension: str | None = None
    namespace: str | None = None
    attributes: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str, source: str = "<schema>") -> Schema:
        """Parse and resolve schema text; any problem is one ``SchemaError`` line."""
        return _SchemaBuilder(source).build(text)

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SchemaError(f"{path}: cannot read schema ({e})") from None
        return cls.parse(text, str(path))

    def _lookup(self, kind: str, table: Mapping[str, Any], name: str) -> Any:
        if name in table:
            return table[name]
        found = [v for k, v in table.items() if k.rpartition(".")[2] == name]
        if len(found) == 1:
            return found[0]
        raise KeyError(f"schema has no {kind} {name!r}" if not found else
                       f"{kind} name {name!r} is ambiguous")

    def table(self, name: str) -> ObjectDef:
        return self._lookup("table", self.tables, name)

    def struct(self, name: str) -> ObjectDef:
        return self._lookup("struct", self.structs, name)

    def enum(self, name: str) -> EnumDef:
        """An enum or a union."""
        return self._lookup("enum", {**self.enums, **self.unions}, name)

    @cached_property
    def _plans(self) -> dict[str, _Plan]:
        return _compile(self)


# ---------------------------------------------------------------------------------------------
# The .fbs grammar

_GRAMMAR = r"""
    start: _decl*
    _decl: namespace_decl | include_decl | native_include_decl | attribute_decl | enum_decl
         | union_decl | table_decl | struct_decl | root_decl | file_identifier_decl
         | file_extension_decl | rpc_decl

    namespace_decl: "namespace" [qname] ";"
    include_decl: "include" STRING ";"
    native_include_decl: "native_include" STRING ";"
    attribute_decl: "attribute" (IDENT | STRING) ";"
    root_decl: "root_type" qname ";"
    file_identifier_decl: "file_identifier" STRING ";"
    file_extension_decl: "file_extension" STRING ";"

    enum_decl: "enum" IDENT [":" qname] [metadata] "{" [enum_val ("," enum_val)* [","]] "}"
    enum_val: IDENT ["=" NUMBER] [metadata]
    union_decl: "union" IDENT [":" qname] [metadata] "{" [union_val ("," union_val)* [","]] "}"
    union_val: [IDENT ":"] qname ["=" NUMBER] [metadata]

    table_decl: "table" IDENT [metadata] "{" field_decl* "}"
    struct_decl: "struct" IDENT [metadata] "{" field_decl* "}"
    field_decl: IDENT ":" type_ ["=" value] [metadata] ";"
    type_: "[" qname [":" NUMBER] "]"   -> vector_type
         | qname                        -> named_type

    metadata: "(" [meta_item ("," meta_item)*] ")"
    meta_item: IDENT [":" value]
    value: NUMBER | STRING | IDENT | SIGN IDENT

    rpc_decl: "rpc_service" IDENT "{" rpc_method* "}"
    rpc_method: IDENT "(" qname ")" ":" qname [metadata] ";"

    qname: IDENT ("." IDENT)*

    IDENT: /[A-Za-z_][A-Za-z0-9_]*/
    NUMBER: /[-+]?(0[xX][0-9a-fA-F]+|([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?)/
    SIGN: "-" | "+"
    STRING: /"([^"\\\n]|\\.)*"/
    LINE_COMMENT: /\/\/[^\n]*/
    BLOCK_COMMENT: /\/\*(.|\n)*?\*\//
    %import common.WS
    %ignore WS
    %ignore LINE_COMMENT
    %ignore BLOCK_COMMENT
"""


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True, propagate_positions=True)


def _string(token: Token) -> str:
    import json

    return json.loads(str(token))


def _int(token: Token | str, where: str) -> int:
    try:
        return int(str(token), 0)
    except ValueError:
        raise SchemaError(f"{where}: {token!s} is not an integer") from None


def _qname(tree: Tree | None) -> str | None:
    return None if tree is None else ".".join(str(t) for t in tree.children)


def _metadata(tree: Tree | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if tree is None:
        return out
    for item in tree.children:
        if item is None:
            continue
        key, value = item.children
        out[str(key)] = None if value is None else _value(value)
    return out


def _value(tree: Tree) -> str:
    parts = [str(t) for t in tree.children]
    text = "".join(parts)
    if len(parts) == 1 and isinstance(tree.children[0], Token) and \
            tree.children[0].type == "STRING":
        return _string(tree.children[0])
    return text


@dataclass
class _RawObject:
    name: str
    is_struct: bool
    namespace: str
    fields: list[tuple[str, str, int | None, str | None, dict[str, str | None], int]]
    attributes: dict[str, str | None]
    line: int


class _SchemaBuilder:
    """Turns the parse tree into a resolved ``Schema`` (two passes: declare, then resolve)."""

    def __init__(self, source: str):
        self.source = source

    def error(self, line: int | None, message: str) -> SchemaError:
        where = f"{self.source}:{line}" if line else self.source
        return SchemaError(f"{where}: {message}")

    def build(self, text: str) -> Schema:
        try:
            tree = _parser().parse(text)
        except UnexpectedInput as e:
            found = getattr(e, "token", None) or getattr(e, "char", "")
            raise SchemaError(f"{self.source}:{e.line}:{e.column}: syntax error near "
                              f"{str(found)[:20]!r}") from None
        except LarkError as e:
            raise SchemaError(f"{self.source}: cannot parse schema ({e})") from None

        namespace = ""
        first_namespace: str | None = None
        objects: dict[str, _RawObject] = {}
        raw_enums: dict[str, tuple[Tree, str]] = {}
        declared: dict[str, str] = {}  # full name -> kind
        attributes: set[str] = set()
        root: tuple[str, str, int] | None = None
        identifier = extension = None
        for decl in tree.children:
            line = decl.meta.line if not decl.meta.empty else 0
            kind = decl.data
            if kind == "namespace_decl":
                namespace = _qname(decl.children[0]) or ""
                first_namespace = first_namespace or namespace
            elif kind in ("include_decl", "native_include_decl"):
                if kind == "include_decl":
                    raise self.error(line, "include is not supported; the schema must be "
                                     "self-contained")
            elif kind == "attribute_decl":
                token = decl.children[0]
                attributes.add(_string(token) if token.type == "STRING" else str(token))
            elif kind == "root_decl":
                root = (_qname(decl.children[0]) or "", namespace, line)
            elif kind == "file_identifier_decl":
                identifier = _string(decl.children[0])
                if len(identifier.encode("utf-8")) != 4:
                    raise self.error(line, f"file_identifier {identifier!r} must be 4 bytes")
            elif kind == "file_extension_decl":
                extension = _string(decl.children[0])
            elif kind in ("enum_decl", "union_decl", "table_decl", "struct_decl"):
                short = str(decl.children[0])
                full = f"{namespace}.{short}" if namespace else short
                if full in declared:
                    raise self.error(line, f"{full} is declared twice")
                declared[full] = kind
                if kind in ("enum_decl", "union_decl"):
                    raw_enums[full] = (decl, namespace)
                else:
                    objects[full] = self.raw_object(decl, full, namespace, line)
            # rpc_service: nothing to verify

        self.declared = declared
        self.objects = objects
        enums: dict[str, EnumDef] = {}
        unions: dict[str, EnumDef] = {}
        for full, (decl, ns) in raw_enums.items():
            e = self.enum(decl, full, ns)
            (unions if e.is_union else enums)[full] = e
        self.enums = enums
        self.unions = unions
        self.struct_layouts: dict[str, ObjectDef] = {}
        self.in_progress: set[str] = set()
        structs = {n: self.struct(n) for n, o in objects.items() if o.is_struct}
        tables = {n: self.table(o) for n, o in objects.items() if not o.is_struct}

        root_type = None
        if root is not None:
            root_type = self.resolve(root[0], root[1], root[2])
            if root_type not in tables:
                raise self.error(root[2], f"root_type {root[0]} is not a table")
        return Schema(tables=tables, structs=structs, enums=enums, unions=unions,
                      root_type=root_type, file_identifier=identifier,
                      file_extension=extension, namespace=first_namespace,
                      attributes=frozenset(attributes))

    def raw_object(self, decl: Tree, full: str, namespace: str, line: int) -> _RawObject:
        _, meta, *fields = decl.children
        raw = []
        for f in fields:
            name, type_tree, default, fmeta = f.children
            fline = f.meta.line if not f.meta.empty else line
            if type_tree.data == "vector_type":
                qn, length = type_tree.children
                raw.append((str(name), _qname(qn) or "",
                            -1 if length is None else _int(length, f"{self.source}:{fline}"),
                            None if default is None else _value(default), _metadata(fmeta),
                            fline))
            else:
                raw.append((str(name), _qname(type_tree.children[0]) or "", None,
                            None if default is None else _value(default), _metadata(fmeta),
                            fline))
        return _RawObject(full, decl.data == "struct_decl", namespace, raw, _metadata(meta),
                          line)

    def resolve(self, name: str, namespace: str, line: int) -> str:
        """The fully qualified declared name ``name`` refers to from ``namespace``."""
        parts = namespace.split(".") if namespace else []
        for i in range(len(parts), -1, -1):
            candidate = ".".join([*parts[:i], name])
            if candidate in self.declared:
                return candidate
        raise self.error(line, f"unknown type {name!r}")

    def enum(self, decl: Tree, full: str, namespace: str) -> EnumDef:
        line = decl.meta.line if not decl.meta.empty else 0
        is_union = decl.data == "union_decl"
        _, underlying_tree, meta, *vals = decl.children
        attributes = _metadata(meta)
        underlying = _qname(underlying_tree)
        if underlying is None:
            if not is_union:
                raise self.error(line, f"enum {full} needs an underlying integer type")
            underlying = "ubyte"
        underlying = _SCALAR_ALIASES.get(underlying, underlying)
        if underlying not in _INTEGER_TYPES:
            raise self.error(line, f"enum {full}: underlying type {underlying} is not an "
                             "integer type")
        bit_flags = "bit_flags" in attributes
        values: dict[str, int] = {}
        members: dict[int, str] = {}
        next_value = 0
        if is_union:
            values["NONE"] = 0
            next_value = 1
        for v in vals:
            if v is None:
                continue
            vline = v.meta.line if not v.meta.empty else line
            if is_union:
                alias, qn, number, _ = v.children
                type_name = _qname(qn) or ""
                if type_name == "string":
                    target = "string"
                else:
                    target = self.resolve(type_name, namespace, vline)
                    if self.declared[target] not in ("table_decl", "struct_decl"):
                        raise self.error(vline, f"union {full}: {type_name} is not a table "
                                         "or struct")
                name = str(alias) if alias is not None else type_name.rpartition(".")[2]
            else:
                name_token, number, _ = v.children
                name = str(name_token)
            value = next_value if number is None else _int(number, f"{self.source}:{vline}")
            next_value = value + 1
            if bit_flags:
                value = 1 << value
            if name in values:
                raise self.error(vline, f"{full}.{name} is declared twice")
            values[name] = value
            if is_union:
                if value in members or value == 0:
                    raise self.error(vline, f"union {full}: value {value} is used twice")
                members[value] = target
        return EnumDef(full, underlying, values, is_union, members, attributes)

    def type_ref(self, base: str, length: int | None, namespace: str, line: int,
                 owner: str) -> TypeRef:
        def named(name: str) -> TypeRef:
            name = _SCALAR_ALIASES.get(name, name)
            if name in SCALAR_SIZES or name == "string":
                return TypeRef(name)
            full = self.resolve(name, namespace, line)
            kind = self.declared[full]
            if kind == "enum_decl":
                return TypeRef(self.enums[full].underlying, full)
            if kind == "union_decl":
                return TypeRef("union", full)
            return TypeRef("struct" if kind == "struct_decl" else "table", full)

        element = named(base)
        if length is None:
            return element
        if element.kind == "vector" or (length >= 0 and element.kind in ("table", "string")):
            raise self.error(line, f"{owner}: invalid array type [{base}:{length}]")
        if length >= 0:
            if length == 0:
                raise self.error(line, f"{owner}: array length must be positive")
            return TypeRef("array", element=element, length=length)
        return TypeRef("vector", element=element)

    def struct(self, name: str) -> ObjectDef:
        if name in self.struct_layouts:
            return self.struct_layouts[name]
        raw = self.objects[name]
        if name in self.in_progress:
            raise self.error(raw.line, f"struct {name} contains itself")
        self.in_progress.add(name)
        offset = 0
        align = 1
        fields = []
        for index, (fname, base, length, default, attrs, line) in enumerate(raw.fields):
            owner = f"{name}.{fname}"
            t = self.type_ref(base, length, raw.namespace, line, owner)
            size, falign = self.inline_layout(t, line, owner)
            offset = (offset + falign - 1) & -falign
            fields.append(FieldDef(fname, t, index, offset, default, attrs))
            offset += size
            align = max(align, falign)
        force = raw.attributes.get("force_align")
        if force is not None:
            forced = _int(force, f"{self.source}:{raw.line}")
            if forced < align or forced & (forced - 1) or forced > 256:
                raise self.error(raw.line, f"struct {name}: invalid force_align {forced}")
            align = forced
        size = (offset + align - 1) & -align
        self.in_progress.discard(name)
        struct_def = ObjectDef(name, True, tuple(fields), raw.attributes, size, align)
        self.struct_layouts[name] = struct_def
        return struct_def

    def inline_layout(self, t: TypeRef, line: int, owner: str) -> tuple[int, int]:
        """(size, alignment) of a value stored inline in a struct or a table."""
        if t.is_scalar:
            size = SCALAR_SIZES[t.kind]
            return size, size
        if t.kind == "struct":
            s = self.struct(t.ref or "")
            return s.size, s.align
        if t.kind == "array":
            assert t.element is not None and t.length is not None
            size, align = self.inline_layout(t.element, line, owner)
            return size * t.length, align
        raise self.error(line, f"{owner}: a struct field cannot be of type {t}")

    def table(self, raw: _RawObject) -> ObjectDef:
        explicit = [("id" in f[4]) for f in raw.fields]
        if any(explicit) and not all(explicit):
            raise self.error(raw.line, f"table {raw.name}: either all fields or none have an id")
        fields: list[FieldDef] = []
        next_id = 0
        for fname, base, length, default, attrs, line in raw.fields:
            owner = f"{raw.name}.{fname}"
            if length is not None and length >= 0:
                raise self.error(line, f"{owner}: fixed-size arrays are only allowed in structs")
            t = self.type_ref(base, length, raw.namespace, line, owner)
            is_union = t.kind == "union" or (t.element is not None and t.element.kind == "union")
            if any(explicit):
                fid = _int(attrs["id"] or "", f"{self.source}:{line}")
                if is_union and fid == 0:
                    raise self.error(line, f"{owner}: a union field needs id >= 1 (its _type "
                                     "field takes id - 1)")
            else:
                fid = next_id + (1 if is_union else 0)
            next_id = fid + 1
            if is_union:
                union = t if t.kind == "union" else t.element
                assert union is not None
                utype = TypeRef("utype", union.ref)
                if t.kind == "vector":
                    utype = TypeRef("vector", element=utype)
                # The hidden _type field is deprecated with its union, nothing else carries over.
                type_attrs = {k: v for k, v in attrs.items() if k == "deprecated"}
                fields.append(FieldDef(f"{fname}_type", utype, fid - 1, 4 + 2 * (fid - 1),
                                       None, type_attrs))
            fields.append(FieldDef(fname, t, fid, 4 + 2 * fid, default, attrs))
        ids = [f.id for f in fields]
        if len(set(ids)) != len(ids):
            raise self.error(raw.line, f"table {raw.name}: two fields share an id")
        fields.sort(key=lambda f: f.id)
        return ObjectDef(raw.name, False, tuple(fields), raw.attributes)


# ---------------------------------------------------------------------------------------------
# Verification plans: per table, a tuple of field checks sorted by vtable slot

_INLINE, _TABLE, _STRING, _VEC_INLINE, _VEC_TABLE, _VEC_STRING, _UNION, _VEC_UNION = range(8)


class _Plan:
    """What to check in one table type; ``fields`` holds tuples
    ``(vtable index, size, alignment, kind, path label, argument, required)``."""

    __slots__ = ("name", "fields")

    def __init__(self, name: str):
        self.name = name
        self.fields: tuple[tuple[int, int, int, int, str, Any, bool], ...] = ()


def _compile(schema: Schema) -> dict[str, _Plan]:
    plans = {name: _Plan(t.short_name) for name, t in schema.tables.items()}

    def inline(t: TypeRef) -> tuple[int, int]:
        if t.is_scalar or t.kind == "utype":
            size = SCALAR_SIZES.get(t.kind, 1)
            return size, size
        s = schema.structs[t.ref or ""]
        return s.size, s.align

    def member(value_type: str, label: str) -> tuple[int, Any, str]:
        """(kind, argument, path label) of a union member; the label is ``.field<Type>`` for a
        union field and ``<Type>`` for an element of a vector of unions (label "")."""
        if value_type == "string":
            return _STRING, None, f"{label}<string>"
        short = value_type.rpartition(".")[2]
        if value_type in plans:
            return _TABLE, plans[value_type], f"{label}<{short}>"
        s = schema.structs[value_type]
        return _INLINE, (s.size, s.align), f"{label}<{short}>"

    for name, table in schema.tables.items():
        index = {f.name: f for f in table.fields}
        checks = []
        for f in table.fields:
            if f.deprecated:
                continue
            t = f.type
            label = "." + f.name
            k = f.slot >> 1
            req = f.required
            if t.is_scalar or t.kind in ("utype", "struct"):
                size, align = inline(t)
                checks.append((k, size, align, _INLINE, label, None, req))
                continue
            if t.kind == "table":
                kind, arg = _TABLE, plans[t.ref or ""]
            elif t.kind == "string":
                kind, arg = _STRING, None
            elif t.kind == "union":
                u = schema.unions[t.ref or ""]
                type_field = index[f.name + "_type"]
                kind = _UNION
                arg = (type_field.slot >> 1,
                       {v: member(m, label) for v, m in u.members.items()})
            else:  # vector
                e = t.element
                assert e is not None
                if e.kind == "table":
                    kind, arg = _VEC_TABLE, plans[e.ref or ""]
                elif e.kind == "string":
                    kind, arg = _VEC_STRING, None
                elif e.kind == "union":
                    u = schema.unions[e.ref or ""]
                    type_field = index[f.name + "_type"]
                    kind = _VEC_UNION
                    arg = (type_field.slot >> 1,
                           {v: member(m, "") for v, m in u.members.items()})
                else:
                    size, align = inline(e)
                    nested = f.attributes.get("nested_flatbuffer")
                    nested_plan = None
                    if nested is not None:
                        if e.kind != "ubyte":
                            raise SchemaError(f"{table.name}.{f.name}: nested_flatbuffer needs "
                                              "a [ubyte] field")
                        try:
                            nested_plan = plans[schema.table(nested).name]
                        except KeyError:
                            raise SchemaError(f"{table.name}.{f.name}: nested_flatbuffer "
                                              f"{nested!r} is not a table") from None
                    kind, arg = _VEC_INLINE, (size, align, nested_plan)
            checks.append((k, 4, 4, kind, label, arg, req))
        plans[name].fields = tuple(sorted(checks, key=lambda c: c[0]))
    return plans


# ---------------------------------------------------------------------------------------------
# The verifier

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_MAX_OFFSET = 0x7FFFFFFF

_Path = tuple[Any, "str | int"] | None
"""A path as a linked list of (parent, segment): ``.field``, ``[i]`` (an int) or a root
name; rendered only when an error is raised."""


class _Corrupt(Exception):
    def __init__(self, path: _Path, reason: str, position: int, identifier: bool = False):
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.position = position
        self.identifier = identifier

    def render_path(self) -> str:
        parts: list[str] = []
        path = self.path
        while path is not None:
            path, segment = path
            parts.append(f"[{segment}]" if isinstance(segment, int) else segment)
        return "".join(reversed(parts))

    def detail(self) -> str:
        path = self.render_path()
        where = f"{path}: " if path else ""
        return f"{where}{self.reason} (at byte {self.position})"


_VTABLE_STRUCTS: dict[int, struct.Struct] = {}


def _vtable_struct(count: int) -> struct.Struct:
    """A compiled ``struct.Struct`` reading a whole vtable of ``count`` voffsets at once."""
    s = _VTABLE_STRUCTS.get(count)
    if s is None:
        s = _VTABLE_STRUCTS[count] = struct.Struct(f"<{count}H")
    return s


class _Verifier:
    """One pass over one buffer (``verifier.h``'s ``Verifier`` plus the generated ``Verify``
    methods, driven by the plans). Every check raises ``_Corrupt``; positions in messages are
    file offsets (``base`` is where a nested flatbuffer starts)."""

    __slots__ = ("buf", "size", "base", "what", "max_depth", "max_tables", "depth", "count",
                 "vtables", "string_vectors")

    def __init__(self, buf: memoryview, *, base: int = 0, what: str = "file",
                 max_depth: int = MAX_DEPTH, max_tables: int = MAX_TABLES):
        self.buf = buf
        self.size = len(buf)
        self.base = base  # where buf starts in the file (nested flatbuffers)
        self.what = what
        self.max_depth = max_depth
        self.max_tables = max_tables
        self.depth = 0
        self.count = 0
        self.vtables: dict[int, tuple[int, ...]] = {}  # verified vtables by position
        # Verified [string] vectors: checking one again cannot fail, and skipping it keeps a
        # table shared many times from costing its strings each time (tables are still
        # visited, and counted, once per reference, as in C++).
        self.string_vectors: set[int] = set()

    def fail(self, path: _Path, reason: str, position: int) -> _Corrupt:
        return _Corrupt(path, reason, self.base + position)

    def offset_problem(self, u: int, at: int) -> str | None:
        if u == 0:
            return "offset 0 points at itself"
        if u > _MAX_OFFSET:
            return f"offset {u} is negative as a signed 32-bit value"
        if at + u >= self.size:
            return f"offset {u} points past the end of the {self.what} of {self.size} bytes"
        return None

    def root(self, plan: _Plan, identifier: bytes | None, prefix: _Path = None) -> None:
        size = self.size
        buf = self.buf
        if identifier is not None:
            if size < 8:
                raise self.fail(None, f"{self.what} of {size} bytes is too short to be a "
                                "flatbuffer", 0)
            found = bytes(buf[4:8])
            if found != identifier:
                shown = found.decode("latin-1").encode("unicode_escape").decode("ascii")
                raise _Corrupt(None, f"file identifier is '{shown}', expected "
                               f"'{identifier.decode('latin-1')}'", self.base + 4, True)
        if size < MIN_BUFFER_SIZE:
            raise self.fail(None, f"{self.what} of {size} bytes is too short to be a "
                            f"flatbuffer (the minimum is {MIN_BUFFER_SIZE})", 0)
        path: _Path = (prefix, f"<{plan.name}>" if prefix is not None else plan.name)
        u = _U32(buf, 0)[0]
        problem = self.offset_problem(u, 0)
        if problem:
            raise self.fail(path, f"root table {problem}", 0)
        self.table(u, plan, path)

    def table(self, pos: int, plan: _Plan, path: _Path) -> None:
        buf = self.buf
        size = self.size
        if pos & 3:
            raise self.fail(path, f"{plan.name} table is not 4-byte aligned", pos)
        if pos + 4 > size:
            raise self.fail(path, f"{plan.name} table runs past the end of the {self.what}",
                            pos)
        self.depth += 1
        self.count += 1
        if self.depth > self.max_depth:
            raise self.fail(path, f"tables nested more than {self.max_depth} deep", pos)
        if self.count > self.max_tables:
            raise self.fail(path, f"more than {self.max_tables} tables", pos)
        vt = pos - _I32(buf, pos)[0]
        entries = self.vtables.get(vt)
        if entries is None:
            entries = self.vtable(pos, vt, plan, path)
        tsize = entries[1]
        if tsize < 4:
            raise self.fail(path, f"{plan.name} table object size {tsize} is smaller than 4",
                            pos)
        if pos + tsize > size:
            raise self.fail(path, f"{plan.name} table object of {tsize} bytes runs past the "
                            f"end of the {self.what}", pos)
        n = len(entries)
        for k, fsize, falign, kind, label, arg, required in plan.fields:
            fo = entries[k] if k < n else 0
            if not fo:
                if required:
                    raise self.fail((path, label), "required field is missing", pos)
                if kind == _VEC_UNION:
                    self.union_vector(pos, entries, None, arg, (path, label))
                continue
            if fo < 4 or fo + fsize > tsize:
                raise self.fail((path, label), f"{fsize}-byte field at offset {fo} lies "
                                f"outside the {tsize}-byte {plan.name} table object", pos)
            p = pos + fo
            if p & (falign - 1):
                raise self.fail((path, label), f"{fsize}-byte field is not {falign}-byte "
                                "aligned", p)
            if kind == _INLINE:
                continue
            u = _U32(buf, p)[0]
            if u == 0 or u > _MAX_OFFSET or p + u >= size:
                raise self.fail((path, label), self.offset_problem(u, p) or "", p)
            t = p + u
            if kind == _TABLE:
                self.table(t, arg, (path, label))
            elif kind == _STRING:
                self.string(t, (path, label))
            elif kind == _VEC_INLINE:
                es, ea, nested = arg
                count = self.vector(t, es, ea, (path, label))
                if nested is not None:
                    self.nested(t + 4, count, nested, (path, label))
            elif kind == _VEC_TABLE:
                fpath = (path, label)
                count = self.vector(t, 4, 4, fpath)
                if count:
                    e = t + 4
                    for i, u in enumerate(struct.unpack_from(f"<{count}I", buf, e)):
                        if u == 0 or u > _MAX_OFFSET or e + u >= size:
                            raise self.fail((fpath, i), self.offset_problem(u, e) or "", e)
                        self.table(e + u, arg, (fpath, i))
                        e += 4
            elif kind == _VEC_STRING:
                if t in self.string_vectors:
                    continue
                fpath = (path, label)
                count = self.vector(t, 4, 4, fpath)
                self.string_vectors.add(t)
                if count:
                    e = t + 4
                    for i, u in enumerate(struct.unpack_from(f"<{count}I", buf, e)):
                        if u == 0 or u > _MAX_OFFSET or e + u >= size:
                            raise self.fail((fpath, i), self.offset_problem(u, e) or "", e)
                        self.string(e + u, (fpath, i))
                        e += 4
            elif kind == _UNION:
                type_k, members = arg
                tfo = entries[type_k] if type_k < n else 0
                member = members.get(buf[pos + tfo] if tfo else 0)
                # No member: NONE, or a type this schema does not know; accepted, as in C++.
                if member is not None:
                    self.member(t, member, path)
            else:  # _VEC_UNION
                self.union_vector(pos, entries, t, arg, (path, label))
        self.depth -= 1

    def vtable(self, pos: int, vt: int, plan: _Plan, path: _Path) -> tuple[int, ...]:
        size = self.size
        soffset = pos - vt
        if vt < 0 or vt + 2 > size:
            raise self.fail(path, f"{plan.name} table's vtable offset {soffset} points "
                            f"outside the {self.what}", pos)
        if vt & 1:
            raise self.fail(path, f"{plan.name} table's vtable offset {soffset} is odd", pos)
        vsize = _U16(self.buf, vt)[0]
        if vsize & 1:
            raise self.fail(path, f"{plan.name} table's vtable size {vsize} is odd", vt)
        if vsize < 4:
            raise self.fail(path, f"{plan.name} table's vtable size {vsize} is smaller than 4",
                            vt)
        if vt + vsize > size:
            raise self.fail(path, f"{plan.name} table's vtable of {vsize} bytes runs past the "
                            f"end of the {self.what}", vt)
        entries = _vtable_struct(vsize >> 1).unpack_from(self.buf, vt)
        self.vtables[vt] = entries
        return entries

    def string(self, t: int, path: _Path) -> None:
        size = self.size
        if t & 3:
            raise self.fail(path, "string is not 4-byte aligned", t)
        if t + 4 > size:
            raise self.fail(path, f"string length runs past the end of the {self.what}", t)
        n = _U32(self.buf, t)[0]
        end = t + 4 + n
        if end >= size:
            raise self.fail(path, f"string of {n} bytes runs past the end of the {self.what}",
                            t)
        if self.buf[end]:
            raise self.fail(path, f"string of {n} bytes is not NUL-terminated", end)

    def vector(self, t: int, es: int, ea: int, path: _Path) -> int:
        size = self.size
        if t & 3:
            raise self.fail(path, "vector is not 4-byte aligned", t)
        if t + 4 > size:
            raise self.fail(path, f"vector length runs past the end of the {self.what}", t)
        n = _U32(self.buf, t)[0]
        if t + 4 + n * es > size:
            raise self.fail(path, f"vector of {n} {es}-byte elements runs past the end of "
                            f"the {self.what}", t)
        if ea > 4 and (t + 4) & (ea - 1):
            raise self.fail(path, f"vector elements are not {ea}-byte aligned", t + 4)
        return n

    def member(self, t: int, member: tuple[int, Any, str], path: _Path) -> None:
        kind, arg, label = member
        if kind == _TABLE:
            self.table(t, arg, (path, label))
        elif kind == _STRING:
            self.string(t, (path, label))
        else:  # a struct stored out of line
            size, align = arg
            if t & (align - 1):
                raise self.fail((path, label), f"struct is not {align}-byte aligned", t)
            if t + size > self.size:
                raise self.fail((path, label), f"{size}-byte struct runs past the end of the "
                                f"{self.what}", t)

    def union_vector(self, pos: int, entries: tuple[int, ...], t: int | None,
                     arg: tuple[int, dict], path: _Path) -> None:
        type_k, members = arg
        tfo = entries[type_k] if type_k < len(entries) else 0
        if t is None or not tfo:
            if t is not None or tfo:
                raise self.fail(path, "union vector without its _type vector" if t is not None
                                else "union _type vector without its value vector", pos)
            return
        p = pos + tfo
        types = p + _U32(self.buf, p)[0]  # already verified as a [ubyte] vector
        n_types = _U32(self.buf, types)[0]
        n = self.vector(t, 4, 4, path)
        if n != n_types:
            raise self.fail(path, f"union vector has {n} values but {n_types} types", t)
        e = t + 4
        for i in range(n):
            member = members.get(self.buf[types + 4 + i])
            if member is not None:
                u = _U32(self.buf, e)[0]
                problem = self.offset_problem(u, e)
                if problem:
                    raise self.fail((path, i), problem, e)
                self.member(e + u, member, (path, i))
            e += 4

    def nested(self, start: int, n: int, plan: _Plan, path: _Path) -> None:
        if n == 0:
            return
        if n < MIN_BUFFER_SIZE:
            raise self.fail(path, f"nested flatbuffer of {n} bytes is too short (the minimum "
                            f"is {MIN_BUFFER_SIZE})", start)
        inner = _Verifier(self.buf[start:start + n], base=self.base + start,
                          what="nested flatbuffer", max_depth=self.max_depth,
                          max_tables=self.max_tables)
        inner.root(plan, None, path)


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """``data`` as a flat memoryview of bytes (no copy)."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def verify_buffer(schema: Schema, data: bytes | bytearray | memoryview, root: str | None = None,
                  *, check_identifier: bool = True, max_depth: int = MAX_DEPTH,
                  max_tables: int = MAX_TABLES) -> None:
    """Verify that ``data`` is a well-formed flatbuffer whose root is table ``root`` (default:
    the schema's ``root_type``), checking the schema's ``file_identifier`` if it declares one
    and ``check_identifier`` is true. Raises ``FlatbufferError`` whose message is
    ``<path>: <reason> (at byte N)``; returns None for a valid buffer."""
    name = root if root is not None else schema.root_type
    if name is None:
        raise SchemaError("verify_buffer: no root table given and the schema has no root_type")
    try:
        plan = schema._plans[schema.table(name).name]
    except KeyError as e:
        raise SchemaError(f"verify_buffer: {e.args[0]}") from None
    identifier = schema.file_identifier if check_identifier else None
    view = _byte_view(data)
    try:
        if len(view) >= MAX_BUFFER_SIZE:
            raise _Corrupt(None, f"buffer of {len(view)} bytes is larger than a flatbuffer "
                           "can be (2 GiB)", 0)
        _Verifier(view, what="buffer", max_depth=max_depth, max_tables=max_tables).root(
            plan, None if identifier is None else identifier.encode("utf-8"))
    except _Corrupt as c:
        raise FlatbufferError(c.detail(), c.render_path(), c.reason, c.position) from None


@cache
def tflite_schema() -> Schema:
    """TFLite's schema, vendored as ``tflite_schema.fbs`` next to this module (parsed once)."""
    text = resources.files(__package__).joinpath("tflite_schema.fbs").read_text("utf-8")
    return Schema.parse(text, "tflite_schema.fbs")


def _field_position(buf: memoryview, pos: int, slot: int) -> int | None:
    """Where a field of an already verified table is stored, or None when it is absent."""
    vt = pos - _I32(buf, pos)[0]
    if slot >= _U16(buf, vt)[0]:
        return None
    fo = _U16(buf, vt + slot)[0]
    return pos + fo if fo else None


def _tables(buf: memoryview, pos: int, slot: int) -> list[int]:
    """The positions of the tables in a vector-of-tables field of a verified table."""
    p = _field_position(buf, pos, slot)
    if p is None:
        return []
    vec = p + _U32(buf, p)[0]
    elements = range(vec + 4, vec + 4 + 4 * _U32(buf, vec)[0], 4)
    return [e + _U32(buf, e)[0] for e in elements]


def _ulong(buf: memoryview, pos: int, slot: int) -> tuple[int, int]:
    """(value, position) of a ulong field of a verified table; (0, pos) when absent."""
    p = _field_position(buf, pos, slot)
    return (0, pos) if p is None else (_U64(buf, p)[0], p)


def _check_external_data(buf: memoryview, schema: Schema, file_size: int) -> None:
    """Data a model keeps after its flatbuffer (models over 2 GiB) must lie inside the file:
    ``Buffer.offset``/``size`` and ``Operator.large_custom_options_offset``/``_size``, used
    when the offset is > 1 (``interpreter_builder.cc`` checks both the same way)."""
    model = schema.table("Model")
    buffer = schema.table("Buffer")
    subgraph = schema.table("SubGraph")
    operator = schema.table("Operator")
    root: _Path = (None, "Model")
    model_pos = _U32(buf, 0)[0]
    located: list[tuple[_Path, int, ObjectDef, str, str]] = []
    for i, t in enumerate(_tables(buf, model_pos, model.field("buffers").slot)):
        located.append((((root, ".buffers"), i), t, buffer, "offset", "size"))
    for s, sg in enumerate(_tables(buf, model_pos, model.field("subgraphs").slot)):
        ops = _tables(buf, sg, subgraph.field("operators").slot)
        for j, t in enumerate(ops):
            located.append((((((root, ".subgraphs"), s), ".operators"), j), t, operator,
                            "large_custom_options_offset", "large_custom_options_size"))
    for path, t, table, offset_name, size_name in located:
        offset, at = _ulong(buf, t, table.field(offset_name).slot)
        if offset <= 1:  # the schema: "only valid if > 1"
            continue
        size, _ = _ulong(buf, t, table.field(size_name).slot)
        if offset + size > file_size:
            raise _Corrupt((path, "." + offset_name), f"{size} bytes of data at offset "
                           f"{offset} lie outside the file of {file_size} bytes", at)


def verify_tflite(data: bytes | bytearray | memoryview, label: str) -> None:
    """Verify a ``.tflite`` file's bytes as ``tflite::VerifyModelBuffer`` plus LiteRT's loader
    do, before anything is read with the (unchecked) Python flatbuffers API. ``label`` names the
    file in the message. Raises ``FlatbufferError`` (a ``QccError``) with one line:
    ``<label>: corrupt flatbuffer: <path>: <reason> (at byte N)``, or
    ``<label>: not a TFLite model (file identifier is '...', expected 'TFL3')``."""
    schema = tflite_schema()
    plan = schema._plans[schema.table("Model").name]
    view = _byte_view(data)
    # As LiteRT: a model over 2 GiB keeps its weights after the flatbuffer, so only the
    # first FLATBUFFERS_MAX_BUFFER_SIZE - 1 bytes are verified as one.
    window = view[:MAX_BUFFER_SIZE - 1]
    try:
        if len(view) == 0:
            raise _Corrupt(None, "empty file", 0, identifier=True)
        _Verifier(window).root(plan, (schema.file_identifier or "TFL3").encode("ascii"))
        _check_external_data(window, schema, len(view))
    except _Corrupt as c:
        if c.identifier:
            message = f"{label}: not a TFLite model ({c.reason})"
        else:
            message = f"{label}: corrupt flatbuffer: {c.detail()}"
        raise FlatbufferError(message, c.render_path(), c.reason, c.position) from None
