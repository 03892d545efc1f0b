"""qcc.frontends.flatbuffers_verifier: the schema-driven flatbuffer verifier.

* every generated test model (and, with $QCC_MODEL_ZOO set, every real model, in well under
  0.5 s) verifies;
* targeted corruptions of a TFLite model are each reported with the table.field path, the
  problem and the byte: a string length of 0x7fffffff, vector lengths, the root offset,
  vtable offsets and sizes, table object sizes, misaligned offsets and fields, external data
  after the flatbuffer;
* every truncation of a small model is rejected unless it decodes to the very same model;
  seeded random mutations raise nothing but QccError, and whatever verifies can be unpacked
  by the (unchecked) Python object API without error;
* the vendored tflite_schema.fbs agrees with ai_edge_litert.schema_py_generated (vtable slots,
  field types, vector element sizes, enum values), so an ai-edge-litert upgrade that changes
  the schema fails here;
* the generic ``Schema``/``verify_buffer`` on a tiny schema: structs (force_align, arrays),
  unions of tables and structs, vectors of unions, nested flatbuffers, required and
  deprecated fields, the depth and table-count limits, and the .fbs parser's syntax and errors.
"""

from __future__ import annotations

import inspect
import random
import re
import time
from functools import cache
from importlib import resources
from pathlib import Path

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as gen
from conftest import litert_interpreter, zoo_parametrize

from qcc.errors import QccError
from qcc.frontends import flatbuffers_verifier as fv
from qcc.frontends.flatbuffers_verifier import (
    FlatbufferError,
    Schema,
    SchemaError,
    tflite_schema,
    verify_buffer,
    verify_tflite,
)
from qcc.testing import tflite_models as tm

LABEL = "model.tflite"
CORRUPT = f"{LABEL}: corrupt flatbuffer: "


@cache
def _models() -> dict[str, bytes]:
    models = dict(tm.all_runnable_models())
    models["custom_op"] = tm.custom_op_model()
    return models


def _conv() -> bytes:
    """CONV_2D: tensors x, y/filter, y/bias, y; buffers [empty, filter, bias]."""
    return _models()["conv_2d_same"]


def _u32(data: bytes | bytearray, p: int) -> int:
    return int.from_bytes(data[p:p + 4], "little")


def _put(data: bytearray, p: int, value: int, width: int = 4) -> None:
    data[p:p + width] = (value % (1 << (8 * width))).to_bytes(width, "little")


def _slot(table: str, field: str) -> int:
    return tflite_schema().table(table).field(field).slot


def _field(obj, table: str, field: str) -> int:
    """Where a present field of a generated-API table object is stored."""
    o = obj._tab.Offset(_slot(table, field))
    assert o, f"{table}.{field} is absent"
    return obj._tab.Pos + o


def _root(data: bytes) -> gen.Model:
    return gen.Model.GetRootAs(data, 0)


def _message(data: bytes | bytearray) -> str:
    with pytest.raises(QccError) as info:
        verify_tflite(bytes(data), LABEL)
    assert isinstance(info.value, FlatbufferError)
    message = str(info.value)
    assert "\n" not in message
    return message


def _pack(model: gen.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---------------------------------------------------------------------------------------------
# Valid models


@pytest.mark.parametrize("name", sorted(_models()))
def test_generated_model_verifies(name: str) -> None:
    verify_tflite(_models()[name], name)


def test_verify_accepts_bytearray_and_memoryview() -> None:
    data = _conv()
    verify_tflite(bytearray(data), LABEL)
    verify_tflite(memoryview(data), LABEL)
    verify_tflite(memoryview(b"\0\0\0\0" + data)[4:], LABEL)


@zoo_parametrize("path", ids="name")
def test_zoo_model_verifies_quickly(path: Path) -> None:
    data = path.read_bytes()
    tflite_schema()  # the schema is parsed once per process; not part of the timing
    start = time.perf_counter()
    verify_tflite(data, path.name)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"{path.name}: verification took {elapsed:.3f} s"


# ---------------------------------------------------------------------------------------------
# Targeted corruptions of a TFLite model


def test_string_length_past_the_end_names_the_tensor() -> None:
    data = bytearray(_conv())
    p = _field(_root(_conv()).Subgraphs(0).Tensors(3), "Tensor", "name")
    string = p + _u32(data, p)
    _put(data, string, 0x7FFFFFFF)
    # The unchecked Python reader silently returns the rest of the file as the name.
    assert len(_root(bytes(data)).Subgraphs(0).Tensors(3).Name()) > 1
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].tensors[3].name: string of 2147483647 bytes runs past "
        f"the end of the file (at byte {string})"
    )


def test_string_without_terminator() -> None:
    data = bytearray(_conv())
    p = _field(_root(_conv()).Subgraphs(0).Tensors(1), "Tensor", "name")
    string = p + _u32(data, p)
    end = string + 4 + _u32(data, string)
    data[end] = ord("x")
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].tensors[1].name: string of 8 bytes is not "
        f"NUL-terminated (at byte {end})"
    )


def test_vector_length_too_large() -> None:
    model = _root(_conv())
    data = bytearray(_conv())
    p = _field(model.Buffers(1), "Buffer", "data")
    vector = p + _u32(data, p)
    assert _u32(data, vector) == 864
    _put(data, vector, 0x10000000)
    assert _message(data) == (
        f"{CORRUPT}Model.buffers[1].data: vector of 268435456 1-byte elements runs past the "
        f"end of the file (at byte {vector})"
    )

    data = bytearray(_conv())
    p = _field(model.Subgraphs(0), "SubGraph", "tensors")
    vector = p + _u32(data, p)
    _put(data, vector, 0xFFFFFFFF)
    assert _message(data).startswith(
        f"{CORRUPT}Model.subgraphs[0].tensors: vector of 4294967295 4-byte elements runs past "
        "the end of the file"
    )


def test_root_offset() -> None:
    data = bytearray(_conv())
    _put(data, 0, len(data) + 8)
    assert _message(data) == (
        f"{CORRUPT}Model: root table offset {len(data) + 8} points past the end of the file "
        f"of {len(data)} bytes (at byte 0)"
    )
    _put(data, 0, 0)
    assert _message(data) == f"{CORRUPT}Model: root table offset 0 points at itself (at byte 0)"
    _put(data, 0, 0x80000010)
    assert "Model: root table offset 2147483664 is negative" in _message(data)
    _put(data, 0, _u32(_conv(), 0) + 2)
    assert "Model: Model table is not 4-byte aligned" in _message(data)


_OUTSIDE = "Tensor table's vtable offset {s} points outside the file"


@pytest.mark.parametrize(
    ("soffset", "reason"),
    [
        (lambda s, pos, size: s + 1, "Tensor table's vtable offset {s} is odd"),
        (lambda s, pos, size: pos + 2, _OUTSIDE),
        (lambda s, pos, size: pos - size, _OUTSIDE),
        (lambda s, pos, size: -0x7FFFFFF0, _OUTSIDE),
    ],
    ids=["odd", "before-start", "past-end", "huge"],
)
def test_vtable_offset(soffset, reason: str) -> None:
    data = bytearray(_conv())
    pos = _root(_conv()).Subgraphs(0).Tensors(3)._tab.Pos
    s = soffset(int.from_bytes(data[pos:pos + 4], "little", signed=True), pos, len(data))
    _put(data, pos, s)
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].tensors[3]: {reason.format(s=s)} (at byte {pos})"
    )


def _model_vtable(data: bytes) -> tuple[int, int]:
    """(root table position, its vtable position). The root is verified first, so damage to
    its vtable's header and to fields before ``subgraphs`` is reported at ``Model`` even when
    another table shares the vtable."""
    pos = _u32(data, 0)
    return pos, pos - int.from_bytes(data[pos:pos + 4], "little", signed=True)


def test_vtable_and_table_sizes() -> None:
    base = _conv()
    pos, vt = _model_vtable(base)
    vsize, tsize = _u32(base, vt) & 0xFFFF, _u32(base, vt) >> 16

    cases = [
        (vt, vsize + 1, f"Model: Model table's vtable size {vsize + 1} is odd", vt),
        (vt, 2, "Model: Model table's vtable size 2 is smaller than 4", vt),
        (vt, 0xFFFE, "Model: Model table's vtable of 65534 bytes runs past the end of the file",
         vt),
        (vt + 2, 2, "Model: Model table object size 2 is smaller than 4", pos),
        (vt + 2, len(base) - pos + 4,
         f"Model: Model table object of {len(base) - pos + 4} bytes runs past the end of the "
         "file", pos),
    ]
    for where, value, expected, at in cases:
        data = bytearray(base)
        _put(data, where, value, 2)
        assert _message(data) == f"{CORRUPT}{expected} (at byte {at})"

    # A field whose bytes reach past the table object, and a misaligned field. (Only fields
    # verified before Model.subgraphs: the builder shares this vtable with the SubGraph.)
    data = bytearray(base)
    _put(data, vt + _slot("Model", "version"), tsize - 2, 2)
    assert _message(data) == (
        f"{CORRUPT}Model.version: 4-byte field at offset {tsize - 2} lies outside the "
        f"{tsize}-byte Model table object (at byte {pos})"
    )
    data = bytearray(base)
    codes = _u32(base, vt + _slot("Model", "operator_codes")) & 0xFFFF
    _put(data, vt + _slot("Model", "operator_codes"), codes + 2, 2)
    assert _message(data) == (
        f"{CORRUPT}Model.operator_codes: 4-byte field is not 4-byte aligned "
        f"(at byte {pos + codes + 2})"
    )


def test_misaligned_offsets() -> None:
    model = _root(_conv())
    data = bytearray(_conv())
    p = _field(model.Subgraphs(0).Tensors(3), "Tensor", "name")
    _put(data, p, _u32(data, p) + 1)
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].tensors[3].name: string is not 4-byte aligned "
        f"(at byte {p + _u32(data, p)})"
    )

    data = bytearray(_conv())
    p = _field(model, "Model", "subgraphs")
    element = p + _u32(data, p) + 4
    _put(data, element, _u32(data, element) + 2)
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0]: SubGraph table is not 4-byte aligned "
        f"(at byte {element + _u32(data, element)})"
    )

    data = bytearray(_conv())
    p = _field(model.Subgraphs(0), "SubGraph", "inputs")
    _put(data, p, _u32(data, p) + 2)
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].inputs: vector is not 4-byte aligned "
        f"(at byte {p + _u32(data, p)})"
    )


def test_offsets_out_of_range() -> None:
    model = _root(_conv())
    data = bytearray(_conv())
    p = _field(model.Subgraphs(0).Operators(0), "Operator", "builtin_options")
    _put(data, p, len(data))
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].operators[0].builtin_options: offset {len(data)} points "
        f"past the end of the file of {len(data)} bytes (at byte {p})"
    )
    data = bytearray(_conv())
    p = _field(model.Subgraphs(0), "SubGraph", "tensors")
    element = p + _u32(data, p) + 4 * 2
    _put(data, element, 0)
    assert _message(data) == (
        f"{CORRUPT}Model.subgraphs[0].tensors[1]: offset 0 points at itself (at byte {element})"
    )


def test_union_value_is_verified_as_its_type() -> None:
    """builtin_options is verified as Conv2DOptions; with the _type set to NONE or to a value
    this schema does not know, the value is accepted unread (as C++ does)."""
    model = _root(_conv())
    op = model.Subgraphs(0).Operators(0)
    options = op.BuiltinOptions().Pos
    options_vt = options - int.from_bytes(_conv()[options:options + 4], "little", signed=True)
    data = bytearray(_conv())
    _put(data, options_vt, 0xFFFE, 2)
    assert _message(data).startswith(
        f"{CORRUPT}Model.subgraphs[0].operators[0].builtin_options<Conv2DOptions>: "
        "Conv2DOptions table's vtable of 65534 bytes runs past the end of the file"
    )
    data = bytearray(_conv())
    _put(data, options, 0x7FFFFFF0)  # the options table's vtable offset: garbage
    type_field = _field(op, "Operator", "builtin_options_type")
    for value in (0, 250):  # NONE, unknown
        _put(data, type_field, value, 1)
        verify_tflite(bytes(data), LABEL)


def test_truncations_are_rejected_unless_equivalent() -> None:
    """Every prefix of a small model either fails verification with a QccError or decodes to
    exactly the same model (only trailing padding was cut)."""
    data = _models()["relu"]
    full = _pack(gen.ModelT.InitFromPackedBuf(data, 0))
    accepted = []
    for length in range(len(data) + 1):
        prefix = data[:length]
        try:
            verify_tflite(prefix, LABEL)
        except QccError as e:
            assert isinstance(e, FlatbufferError) and str(e).startswith(LABEL)
            continue
        assert _pack(gen.ModelT.InitFromPackedBuf(prefix, 0)) == full, length
        accepted.append(length)
    assert len(data) in accepted
    assert all(length > len(data) - 4 for length in accepted)  # at most alignment padding


def test_identifier_and_tiny_files() -> None:
    data = bytearray(_conv())
    data[4:8] = b"PK\x03\x04"
    assert _message(data) == (
        f"{LABEL}: not a TFLite model (file identifier is 'PK\\x03\\x04', expected 'TFL3')"
    )
    assert _message(b"") == f"{LABEL}: not a TFLite model (empty file)"
    assert _message(b"\x0c\0\0\0TF") == (
        f"{CORRUPT}file of 6 bytes is too short to be a flatbuffer (at byte 0)"
    )
    assert _message(b"\x0c\0\0\0TFL3\0\0") == (
        f"{CORRUPT}file of 10 bytes is too short to be a flatbuffer (the minimum is 12) "
        "(at byte 0)"
    )


def _mutants(data: bytes, seed: int, count: int):
    """Seeded mutants: random bytes, and 2-/4-byte words set to offsets, lengths and limits."""
    rng = random.Random(seed)
    for _ in range(count):
        d = bytearray(data)
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(len(d))] = rng.randrange(256)
        else:
            for _ in range(rng.randint(1, 2)):
                p = rng.randrange(len(d) - 4) & ~1
                width = rng.choice((2, 4))
                value = rng.choice((0, 1, 2, 3, 4, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                    rng.randrange(1 << 32), rng.randrange(len(d)),
                                    -rng.randrange(len(d))))
                _put(d, p, value, width)
        yield bytes(d)


@pytest.mark.parametrize("name", ["relu", "custom_op", "sparse_weights", "fp16_weights"])
def test_random_mutations_raise_only_qcc_errors(name: str) -> None:
    """A mutant either fails with a QccError or verifies; one that verifies must be readable
    by the Python object API (which itself checks nothing) without any exception."""
    verified = rejected = 0
    for mutant in _mutants(_models()[name], seed=1234, count=1500):
        try:
            verify_tflite(mutant, LABEL)
        except QccError as e:
            assert isinstance(e, FlatbufferError) and "\n" not in str(e)
            rejected += 1
            continue
        gen.ModelT.InitFromPackedBuf(mutant, 0)
        verified += 1
    assert verified and rejected  # the loop exercised both outcomes


# ---------------------------------------------------------------------------------------------
# Data stored after the flatbuffer (models over 2 GiB)


def _move_out(model: gen.ModelT, put_offset, payload: bytes) -> bytes:
    """Pack ``model`` with ``payload`` stored after the flatbuffer, 16-byte aligned, the way
    LiteRT writes models over 2 GiB; ``put_offset`` sets the offset field in ``model`` (its
    value does not change the flatbuffer's length)."""
    put_offset(1 << 40)
    flat = _pack(model)
    start = (len(flat) + 15) & ~15
    put_offset(start)
    patched = _pack(model)
    assert len(patched) == len(flat)
    return patched + bytes(start - len(patched)) + payload


def _conv_with_external_weights() -> bytes:
    """The CONV_2D model with its filter (buffer 1, 864 bytes) after the flatbuffer."""
    model = gen.ModelT.InitFromPackedBuf(_conv(), 0)
    payload = bytes(model.buffers[1].data)
    model.buffers[1].data = None
    model.buffers[1].size = len(payload)
    return _move_out(model, lambda offset: setattr(model.buffers[1], "offset", offset), payload)


def test_external_buffer_inside_the_file() -> None:
    data = _conv_with_external_weights()
    verify_tflite(data, LABEL)
    litert_interpreter(data)  # LiteRT reads it the same way (allocates its tensors)

    offset_at = _field(_root(data).Buffers(1), "Buffer", "offset")
    assert _message(data[:-1]) == (
        f"{CORRUPT}Model.buffers[1].offset: 864 bytes of data at offset {len(data) - 864} lie "
        f"outside the file of {len(data) - 1} bytes (at byte {offset_at})"
    )


def test_only_the_first_2_gib_are_a_flatbuffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """As LiteRT, only the first FLATBUFFERS_MAX_BUFFER_SIZE - 1 bytes are verified as the
    flatbuffer and external data is checked against the whole file (the 2 GiB limit is
    lowered to simulate a big model)."""
    data = _conv_with_external_weights()
    monkeypatch.setattr(fv, "MAX_BUFFER_SIZE", len(data) - 16)  # the weights lie beyond
    verify_tflite(data, LABEL)
    inside = _field(_root(data).Buffers(1), "Buffer", "offset")
    monkeypatch.setattr(fv, "MAX_BUFFER_SIZE", inside)  # the flatbuffer itself does not fit
    assert _message(data).startswith(CORRUPT)
    with pytest.raises(FlatbufferError, match="larger than a flatbuffer can be"):
        verify_buffer(tflite_schema(), data)


def test_large_custom_options_inside_the_file() -> None:
    model = gen.ModelT.InitFromPackedBuf(tm.custom_op_model(), 0)
    ops = model.subgraphs[0].operators
    index = next(i for i, op in enumerate(ops) if op.customOptions is not None)
    payload = bytes(ops[index].customOptions)
    ops[index].customOptions = None
    ops[index].largeCustomOptionsSize = len(payload)
    data = _move_out(
        model, lambda offset: setattr(ops[index], "largeCustomOptionsOffset", offset), payload
    )
    verify_tflite(data, LABEL)
    assert _message(data[:-2]).startswith(
        f"{CORRUPT}Model.subgraphs[0].operators[{index}].large_custom_options_offset: "
        f"{len(payload)} bytes of data at offset {len(data) - len(payload)} lie outside the "
        f"file of {len(data) - 2} bytes"
    )


# ---------------------------------------------------------------------------------------------
# The vendored schema agrees with ai_edge_litert.schema_py_generated

_PREPEND = {
    "bool": "Bool", "byte": "Int8", "ubyte": "Uint8", "short": "Int16", "ushort": "Uint16",
    "int": "Int32", "uint": "Uint32", "long": "Int64", "ulong": "Uint64", "float": "Float32",
    "double": "Float64", "utype": "Uint8", "struct": "Struct",
}  # fmt: skip


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _element_size(t: fv.TypeRef) -> int:
    if t.kind in ("table", "string", "union"):
        return 4
    if t.kind == "struct":
        return tflite_schema().structs[t.ref].size
    return fv.SCALAR_SIZES.get(t.kind, 1)


def test_vendored_schema_matches_ai_edge_litert() -> None:
    """For every table of tflite_schema.fbs the generated class exists; ``XStart`` reserves as
    many vtable slots; each field's ``XAddField`` uses the slot (4 + 2 * index) / the
    ``Prepend<Type>Slot`` the schema gives, the accessor reads vtable offset 4 + 2 * index, and
    a vector's ``XStartFieldVector`` its element size. Enums and unions have the same values;
    every generated table class is in the schema."""
    schema = tflite_schema()
    problems: list[str] = []

    def source(name: str) -> str | None:
        obj = getattr(gen, name, None)
        return None if obj is None else inspect.getsource(obj)

    for table in schema.tables.values():
        name = table.short_name
        cls = getattr(gen, name, None)
        start = source(f"{name}Start")
        if cls is None or start is None:
            problems.append(f"{name}: no generated class or {name}Start")
            continue
        slots = int(re.search(r"StartObject\((\d+)\)", start).group(1))
        expected = max((f.id for f in table.fields), default=-1) + 1
        if slots != expected:
            problems.append(f"{name}: StartObject({slots}), the schema has {expected} slots")
        for f in table.fields:
            camel = _camel(f.name)
            if f.deprecated:  # not generated
                if source(f"{name}Add{camel}") is not None:
                    problems.append(f"{name}.{f.name}: deprecated in the schema only")
                continue
            adder = source(f"{name}Add{camel}")
            if adder is None:
                problems.append(f"{name}.{f.name}: no {name}Add{camel}")
                continue
            kind, index = re.search(r"builder\.Prepend(\w+?)Slot\((\d+),", adder).groups()
            expected_kind = _PREPEND.get(f.type.kind, "UOffsetTRelative")
            if int(index) != f.id or kind != expected_kind:
                problems.append(f"{name}.{f.name}: generated slot {index} {kind}, schema "
                                f"{f.id} {expected_kind}")
            accessor = getattr(cls, camel, None)
            read = re.search(r"self\._tab\.Offset\((\d+)\)", inspect.getsource(accessor)) \
                if accessor is not None else None
            if read is None or int(read.group(1)) != f.slot:
                problems.append(f"{name}.{f.name}: accessor does not read vtable offset "
                                f"{f.slot}")
            if f.type.kind == "vector":
                vector = source(f"{name}Start{camel}Vector")
                size = re.search(r"StartVector\((\d+),", vector or "")
                if size is None or int(size.group(1)) != _element_size(f.type.element):
                    problems.append(f"{name}.{f.name}: generated vector element size differs")

    for enum in [*schema.enums.values(), *schema.unions.values()]:
        cls = getattr(gen, enum.short_name, None)
        values = None if cls is None else {
            k: v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)
        }
        if values != dict(enum.values):
            problems.append(f"{enum.short_name}: generated values differ from the schema's")

    known = {t.short_name for t in [*schema.tables.values(), *schema.structs.values()]}
    for name, obj in vars(gen).items():
        if isinstance(obj, type) and hasattr(obj, "GetRootAs") and name not in known:
            problems.append(f"{name}: generated but not in tflite_schema.fbs")
    assert not problems, "\n".join(problems)


def test_vendored_schema_shape() -> None:
    schema = tflite_schema()
    assert schema.root_type == "tflite.Model"
    assert schema.file_identifier == "TFL3" and schema.file_extension == "tflite"
    assert schema.namespace == "tflite"
    assert schema.table("CustomQuantization").field("custom").attributes == {"force_align": "16"}
    assert schema.enum("TensorType").underlying == "byte"
    assert schema.enum("BuiltinOperator").underlying == "int"
    op = schema.table("Operator")
    assert [(f.name, f.slot) for f in op.fields[3:5]] == [
        ("builtin_options_type", 10), ("builtin_options", 12)
    ]
    assert str(op.field("builtin_options").type) == "tflite.BuiltinOptions"
    text = resources.files("qcc.frontends").joinpath("tflite_schema.fbs").read_text("utf-8")
    assert text.startswith("// Copyright 2017 The TensorFlow Authors. All Rights Reserved.")
    assert "Licensed under the Apache License, Version 2.0" in text


# ---------------------------------------------------------------------------------------------
# The generic verifier on a tiny schema

TINY_FBS = r"""
// A tiny schema using what TFLite's does not: structs, a union of tables and a struct,
// vectors of unions, required and deprecated fields, nested flatbuffers, [long] vectors.
/* block comments
   are ignored too */
namespace test.tiny;

attribute "priority";
attribute streaming;

enum Color : byte { Red = 1, Green, Blue = 8 }
enum Flags : uint8 (bit_flags) { A, B, C = 4, }

struct Vec3 { x: float; y: float; z: float; }
struct Big (force_align: 16) { a: long; b: byte; c: [short:3]; }

table Leaf { value: int = -1; name: string (required); }
table Other { v: double = -inf; w: float = 1.5e3; on: bool = true; }

union Thing { Leaf, Alias: test.tiny.Other, Vec3 }

/// A documented table.
table Node (priority: 1) {
  pos: Vec3;
  big: Big;
  color: Color = Green;
  thing: Thing;
  names: [string];
  leaves: [Leaf];
  children: [Node];
  child: Node;
  things: [Thing];
  nested: [ubyte] (nested_flatbuffer: "Leaf");
  longs: [long];
  old: int (deprecated);
  flag: Flags = A;
}

rpc_service Service { Get(Node): Leaf (streaming: "none"); }

root_type Node;
file_identifier "TINY";
file_extension "tiny";
"""


@cache
def _tiny() -> Schema:
    return Schema.parse(TINY_FBS, "tiny.fbs")


def _id(table: str, field: str) -> int:
    return _tiny().table(table).field(field).id


def _leaf(b: flatbuffers.Builder, name: str | None = "leaf", value: int | None = None) -> int:
    s = b.CreateString(name) if name is not None else None
    b.StartObject(2)
    if s is not None:
        b.PrependUOffsetTRelativeSlot(_id("Leaf", "name"), s, 0)
    if value is not None:
        b.PrependInt32Slot(_id("Leaf", "value"), value, -1)
    return b.EndObject()


def _vec3(b: flatbuffers.Builder, x: float, y: float, z: float) -> int:
    b.Prep(4, 12)
    for v in (z, y, x):
        b.PrependFloat32(v)
    return b.Offset()


def _offsets(b: flatbuffers.Builder, items: list[int]) -> int:
    b.StartVector(4, len(items), 4)
    for item in reversed(items):
        b.PrependUOffsetTRelative(item)
    return b.EndVector()


def _node(b: flatbuffers.Builder, child: int | None = None, *, full: bool = False) -> int:
    fields: dict[str, int] = {}
    if full:
        fields["names"] = _offsets(b, [b.CreateString(s) for s in ("a", "bc", "def")])
        fields["leaves"] = _offsets(b, [_leaf(b, "one", 1), _leaf(b, "two")])
        fields["thing"] = _leaf(b, "thing")
        b.StartObject(3)
        other = b.EndObject()
        things = [_leaf(b, "t0"), other, _vec3(b, 1, 2, 3)]
        b.StartVector(1, 3, 1)
        for tag in (3, 2, 1):
            b.PrependUint8(tag)
        fields["things_type"] = b.EndVector()
        fields["things"] = _offsets(b, things)
        inner = flatbuffers.Builder(64)
        inner.Finish(_leaf(inner, "inner"))
        fields["nested"] = b.CreateByteVector(bytes(inner.Output()))
        b.StartVector(8, 3, 8)
        for v in (3, 2, 1):
            b.PrependInt64(v)
        fields["longs"] = b.EndVector()
    b.StartObject(15)
    if full:
        for name in ("names", "leaves", "thing", "things_type", "things", "nested", "longs"):
            if name == "things_type":
                continue
            b.PrependUOffsetTRelativeSlot(_id("Node", name), fields[name], 0)
        b.PrependUOffsetTRelativeSlot(_id("Node", "things_type"), fields["things_type"], 0)
        b.PrependUint8Slot(_id("Node", "thing_type"), 1, 0)
        b.PrependInt8Slot(_id("Node", "color"), 8, 2)
        b.PrependInt32Slot(_id("Node", "old"), 5, 0)
        b.PrependUint8Slot(_id("Node", "flag"), 3, 1)
        b.Prep(16, 16)  # big: a@0 b@8 pad c@10..16
        for v in (7, 6, 5):
            b.PrependInt16(v)
        b.Pad(1)
        b.PrependInt8(4)
        b.PrependInt64(3)
        b.PrependStructSlot(_id("Node", "big"), b.Offset(), 0)
        b.PrependStructSlot(_id("Node", "pos"), _vec3(b, 0.5, 1.5, 2.5), 0)
    if child is not None:
        b.PrependUOffsetTRelativeSlot(_id("Node", "child"), child, 0)
    return b.EndObject()


def _finish(b: flatbuffers.Builder, root: int) -> bytes:
    b.Finish(root, file_identifier=b"TINY")
    return bytes(b.Output())


@cache
def _full_tiny() -> bytes:
    b = flatbuffers.Builder(256)
    leaf_child = _node(b)
    return _finish(b, _node(b, leaf_child, full=True))


def _tiny_field(data: bytes, table: int, table_name: str, field: str) -> int:
    slot = _tiny().table(table_name).field(field).slot
    vt = table - int.from_bytes(data[table:table + 4], "little", signed=True)
    fo = int.from_bytes(data[vt + slot:vt + slot + 2], "little")
    assert fo, field
    return table + fo


def _tiny_message(data: bytes | bytearray, **kwargs) -> str:
    with pytest.raises(FlatbufferError) as info:
        verify_buffer(_tiny(), bytes(data), **kwargs)
    return str(info.value)


def test_tiny_schema_parsed() -> None:
    s = _tiny()
    assert s.root_type == "test.tiny.Node" and s.file_identifier == "TINY"
    assert s.attributes == {"priority", "streaming"}
    assert dict(s.enum("Color").values) == {"Red": 1, "Green": 2, "Blue": 8}
    assert dict(s.enum("Flags").values) == {"A": 1, "B": 2, "C": 16}
    thing = s.enum("Thing")
    assert thing.is_union and dict(thing.values) == {"NONE": 0, "Leaf": 1, "Alias": 2, "Vec3": 3}
    assert dict(thing.members) == {1: "test.tiny.Leaf", 2: "test.tiny.Other", 3: "test.tiny.Vec3"}
    assert (s.struct("Vec3").size, s.struct("Vec3").align) == (12, 4)
    big = s.struct("Big")
    assert (big.size, big.align) == (16, 16)
    assert [(f.name, f.slot) for f in big.fields] == [("a", 0), ("b", 8), ("c", 10)]
    assert str(big.field("c").type) == "[short:3]"
    node = s.table("Node")
    assert [f.name for f in node.fields] == [
        "pos", "big", "color", "thing_type", "thing", "names", "leaves", "children", "child",
        "things_type", "things", "nested", "longs", "old", "flag",
    ]
    assert [f.slot for f in node.fields] == [4 + 2 * i for i in range(15)]
    assert node.attributes == {"priority": "1"}
    assert node.field("old").deprecated and s.table("Leaf").field("name").required
    assert node.field("color").default == "Green"
    assert node.field("nested").attributes == {"nested_flatbuffer": "Leaf"}
    other = s.table("Other")
    assert [f.default for f in other.fields] == ["-inf", "1.5e3", "true"]
    assert str(node.field("things").type) == "[test.tiny.Thing]"


def test_tiny_valid_buffers() -> None:
    verify_buffer(_tiny(), _full_tiny())
    b = flatbuffers.Builder(64)
    verify_buffer(_tiny(), _finish(b, _node(b)))
    b = flatbuffers.Builder(64)
    b.Finish(_leaf(b))
    verify_buffer(_tiny(), bytes(b.Output()), root="Leaf", check_identifier=False)
    with pytest.raises(FlatbufferError, match="file identifier is"):
        verify_buffer(_tiny(), bytes(b.Output()), root="Leaf")


def test_tiny_deprecated_field_is_not_verified() -> None:
    data = bytearray(_full_tiny())
    root = _u32(data, 0)
    vt = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    _put(data, vt + _tiny().table("Node").field("old").slot, 0xFFF0, 2)
    verify_buffer(_tiny(), bytes(data))
    _put(data, vt + _tiny().table("Node").field("flag").slot, 0xFFF0, 2)
    assert "Node.flag: 1-byte field at offset 65520 lies outside" in _tiny_message(data)


def test_tiny_required_field() -> None:
    b = flatbuffers.Builder(64)
    leaf = _leaf(b, None)
    b.StartObject(15)
    b.PrependUint8Slot(_id("Node", "thing_type"), 1, 0)
    b.PrependUOffsetTRelativeSlot(_id("Node", "thing"), leaf, 0)
    data = _finish(b, b.EndObject())
    message = _tiny_message(data)
    assert message.startswith("Node.thing<Leaf>.name: required field is missing (at byte ")


def test_tiny_unions() -> None:
    data = bytearray(_full_tiny())
    root = _u32(data, 0)
    type_at = _tiny_field(data, root, "Node", "thing_type")
    for tag in (0, 9):  # NONE and an unknown type: the value is not looked at
        data[type_at] = tag
        verify_buffer(_tiny(), bytes(data))
    data[type_at] = 3  # Vec3: a 12-byte struct, 4-aligned -- the Leaf table passes as one
    verify_buffer(_tiny(), bytes(data))

    # Point `thing` at things[1], an (empty) Other table: fine as Alias, not as a Leaf.
    things = _tiny_field(data, root, "Node", "things")
    element = things + _u32(data, things) + 8
    other = element + _u32(data, element)
    thing = _tiny_field(data, root, "Node", "thing")
    _put(data, thing, other - thing)
    data[type_at] = 2
    verify_buffer(_tiny(), bytes(data))
    data[type_at] = 1
    assert _tiny_message(data) == (
        f"Node.thing<Leaf>.name: required field is missing (at byte {other})"
    )

    # Vector of unions: a broken member, and lengths that disagree.
    data = bytearray(_full_tiny())
    things = _tiny_field(data, root, "Node", "things")
    vector = things + _u32(data, things)
    leaf = vector + 4 + _u32(data, vector + 4)
    name = _tiny_field(data, leaf, "Leaf", "name")
    _put(data, name + _u32(data, name), 1000)
    assert _tiny_message(data).startswith(
        "Node.things[0]<Leaf>.name: string of 1000 bytes runs past the end of the buffer"
    )
    data = bytearray(_full_tiny())
    types = _tiny_field(data, root, "Node", "things_type")
    _put(data, types + _u32(data, types), 2)
    assert _tiny_message(data).startswith("Node.things: union vector has 3 values but 2 types")


def test_tiny_vectors_and_structs() -> None:
    root = _u32(_full_tiny(), 0)
    data = bytearray(_full_tiny())
    names = _tiny_field(data, root, "Node", "names")
    second = names + _u32(data, names) + 8
    string = second + _u32(data, second)
    data[string + 4 + 2] = ord("!")
    assert _tiny_message(data) == (
        f"Node.names[1]: string of 2 bytes is not NUL-terminated (at byte {string + 6})"
    )

    # [long] elements must be 8-byte aligned: point the vector 4 bytes further, where the
    # low word of longs[0] (= 1) now reads as the length.
    data = bytearray(_full_tiny())
    longs = _tiny_field(data, root, "Node", "longs")
    _put(data, longs, _u32(data, longs) + 4)
    vector = longs + _u32(data, longs)
    assert _tiny_message(data) == (
        f"Node.longs: vector elements are not 8-byte aligned (at byte {vector + 4})"
    )

    # A struct field must be aligned to the struct's alignment (Big: force_align 16).
    data = bytearray(_full_tiny())
    vt = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    big_slot = vt + _tiny().table("Node").field("big").slot
    _put(data, big_slot, _u32(data, big_slot) - 8, 2)
    assert "Node.big: 16-byte field is not 16-byte aligned" in _tiny_message(data)


def test_tiny_nested_flatbuffer() -> None:
    root = _u32(_full_tiny(), 0)
    data = bytearray(_full_tiny())
    nested = _tiny_field(data, root, "Node", "nested")
    start = nested + _u32(data, nested) + 4
    _put(data, start, 0xFFFF)  # the nested buffer's root offset
    assert _tiny_message(data) == (
        "Node.nested<Leaf>: root table offset 65535 points past the end of the nested "
        f"flatbuffer of {_u32(data, start - 4)} bytes (at byte {start})"
    )


def _chain(depth: int) -> bytes:
    b = flatbuffers.Builder(64)
    node = None
    for _ in range(depth):
        node = _node(b, node)
    return _finish(b, node)


def test_tiny_limits() -> None:
    verify_buffer(_tiny(), _chain(64))
    message = _tiny_message(_chain(65))
    assert message.startswith("Node" + ".child" * 64 + ": tables nested more than 64 deep")
    verify_buffer(_tiny(), _chain(10), max_tables=10)
    assert "more than 9 tables" in _tiny_message(_chain(10), max_tables=9)


# ---------------------------------------------------------------------------------------------
# Schema syntax and errors


def test_schema_syntax_variants() -> None:
    s = Schema.parse(
        """
        namespace a.b;
        enum E : int32 { X = -2, Y, Z = 0x10 }
        table T { c: int (id: 0); u: U (id: 2); s: [string] (id: 3); e: E = Y (id: 4); }
        table V {}
        union U { T, V }
        namespace a.c;
        table W { t: a.b.T; v: [b.V]; f: float32 = -1.5e-3; n: int = null; }
        root_type a.b.T;
        """,
        "ns.fbs",
    )
    assert dict(s.enum("E").values) == {"X": -2, "Y": -1, "Z": 16}
    t = s.table("T")
    assert [(f.name, f.id) for f in t.fields] == [
        ("c", 0), ("u_type", 1), ("u", 2), ("s", 3), ("e", 4)
    ]
    w = s.table("a.c.W")
    assert [str(f.type) for f in w.fields] == ["a.b.T", "[a.b.V]", "float", "int"]
    assert w.field("n").default == "null" and w.field("f").default == "-1.5e-3"
    assert s.root_type == "a.b.T" and s.namespace == "a.b"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("table T { x: Foo; }", "t.fbs:1: unknown type 'Foo'"),
        ("table T { x: int }", "t.fbs:1:18: syntax error near '}'"),
        ("enum E { A }", "t.fbs:1: enum E needs an underlying integer type"),
        ("enum E : float { A }", "t.fbs:1: enum E: underlying type float is not an integer type"),
        ('include "other.fbs";', "t.fbs:1: include is not supported"),
        ("table T {}\nroot_type U;", "t.fbs:2: unknown type 'U'"),
        ("struct S { s: S; }", "t.fbs:1: struct S contains itself"),
        ("struct S { s: string; }", "t.fbs:1: S.s: a struct field cannot be of type string"),
        ("table T { a: int (id: 1); b: int; }", "t.fbs:1: table T: either all fields or none"),
        ("table T { a: int (id: 0); b: int (id: 0); }", "t.fbs:1: table T: two fields share"),
        ("table T {}\ntable T {}", "t.fbs:2: T is declared twice"),
        ('file_identifier "ABC";', "t.fbs:1: file_identifier 'ABC' must be 4 bytes"),
        ("table T { a: [int:2]; }", "t.fbs:1: T.a: fixed-size arrays are only allowed"),
    ],
)
def test_schema_errors(text: str, error: str) -> None:
    with pytest.raises(SchemaError) as info:
        Schema.parse(text, "t.fbs")
    assert str(info.value).startswith(error)
    assert isinstance(info.value, QccError)
