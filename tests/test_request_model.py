"""`hash_payload`: fields marked `HashOmitDefault` leave the hashed request while at default."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from btlab.request_model import HashOmitDefault, RequestModel, hash_payload


class _Inner(RequestModel):
    kept: int = 1
    added: Annotated[float, HashOmitDefault()] = Field(0.0)


class _Outer(RequestModel):
    inner: _Inner = Field(default_factory=_Inner)
    items: list[_Inner] = Field(default_factory=list)
    later: Annotated[str | None, HashOmitDefault()] = None


def test_marked_fields_at_default_are_left_out_at_every_depth() -> None:
    model = _Outer(items=[_Inner(), _Inner(added=2.0)])
    assert hash_payload(model) == {
        "inner": {"kept": 1},
        "items": [{"kept": 1}, {"kept": 1, "added": 2.0}],
    }


def test_marked_fields_off_their_default_are_hashed() -> None:
    model = _Outer(inner=_Inner(added=0.5), later="x")
    assert hash_payload(model) == {"inner": {"kept": 1, "added": 0.5}, "items": [], "later": "x"}
    # the dump users see is whole
    assert model.model_dump(mode="json")["inner"]["added"] == 0.5
    assert "later" in _Outer().model_dump(mode="json")
