"""The Protocols in sfu/native_types.py describe the extension as it is built: a
method renamed or added on one side and not the other fails here, before mypy
trusts a stale description."""

from __future__ import annotations

import pytest

from sfu import _fastpath  # type: ignore[attr-defined]
from sfu.native_types import NativeEgress, NativeFanOutCore, NativeModule, RtpProtector


def _described(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def _native_objects() -> dict[type, object]:
    egress = _fastpath.Egress(
        profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("0.0.0.0", 0)
    )
    return {
        NativeEgress: egress,
        NativeFanOutCore: _fastpath.FanOut(history=0, max_age=1.0),
    }


@pytest.mark.parametrize("protocol", [NativeEgress, NativeFanOutCore])
def test_each_native_object_has_exactly_the_described_methods(protocol: type) -> None:
    native = _native_objects()[protocol]
    assert _described(protocol) == _public(native)


def test_the_native_module_has_the_described_types_and_functions() -> None:
    assert _described(NativeModule) <= _public(_fastpath)
    functions = {name for name in _public(_fastpath) if callable(getattr(_fastpath, name))}
    assert functions <= _described(NativeModule)


def test_the_protector_is_a_part_of_the_egress() -> None:
    assert _described(RtpProtector) <= _described(NativeEgress)
