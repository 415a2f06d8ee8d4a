"""``hivectl.records`` means what ``dataclasses`` means for what hivectl uses of it: each case defines one
class both ways and compares what the two do (hivectl/records.py says why records exist)."""

from __future__ import annotations

import dataclasses

import pytest

from hivectl import records


def both(frozen: bool = False, order: bool = False) -> tuple[type, type]:
    """The same class body as a dataclass and as a record."""
    made = []
    for decorate, field in ((dataclasses.dataclass, dataclasses.field), (records.record, records.field)):
        class Sample:
            name: str
            size: int = 0
            tags: list[str] = field(default_factory=list)
            note: str = field(default="", compare=False)
            secret: str | None = field(default=None, repr=False)

            def label(self) -> str:
                return f"{self.name}:{self.size}"

        made.append(decorate(frozen=frozen, order=order)(Sample))  # type: ignore[operator]
    return made[0], made[1]


@pytest.mark.parametrize("frozen", [False, True])
def test_init_repr_eq_like_a_dataclass(frozen: bool) -> None:
    dc, rec = both(frozen=frozen)
    for args, kwargs in [(("a",), {}), (("a", 3), {"tags": ["x"]}), ((), {"name": "b", "note": "n", "secret": "s"})]:
        one, two = dc(*args, **kwargs), rec(*args, **kwargs)
        assert repr(one) == repr(two)
        assert vars(one) == vars(two)
        assert two.label() == one.label()
    assert rec("a", note="x") == rec("a", note="y")  # compare=False
    assert rec("a", 1) != rec("a", 2)
    assert rec("a").tags is not rec("a").tags  # a fresh list from the factory each time
    assert (rec("a") == dc("a")) is False  # another class: NotImplemented both ways
    with pytest.raises(TypeError):
        rec()
    with pytest.raises(TypeError):
        dc()


def test_frozen_records_hash_and_refuse_assignment() -> None:
    dc, rec = both(frozen=True)
    assert hash(rec("a", 1, ())) == hash(rec("a", 1, ()))  # type: ignore[arg-type]
    assert {rec("a", 1, ()), rec("a", 1, ())} == {rec("a", 1, ())}  # type: ignore[arg-type]
    item = rec("a")
    with pytest.raises(AttributeError):
        item.size = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        dc("a").size = 2  # the same kind of error: FrozenInstanceError is an AttributeError too
    assert issubclass(records.FrozenInstanceError, AttributeError)


def test_mutable_records_are_unhashable_like_dataclasses() -> None:
    dc, rec = both()
    for cls in (dc, rec):
        with pytest.raises(TypeError):
            hash(cls("a"))


def test_order_compares_the_compared_fields_in_order() -> None:
    dc, rec = both(frozen=True, order=True)
    values = [("b", 1), ("a", 2), ("a", 1)]
    assert [(r.name, r.size) for r in sorted(rec(*v) for v in values)] == \
        [(d.name, d.size) for d in sorted(dc(*v) for v in values)]


def test_replace_fields_and_defaults_on_the_class() -> None:
    dc, rec = both(frozen=True)
    changed = records.replace(rec("a", 1), size=5)
    assert (changed.name, changed.size) == ("a", 5)
    assert [f.name for f in records.fields(rec)] == [f.name for f in dataclasses.fields(dc)]
    assert rec.size == dc.size == 0 and rec.note == dc.note == ""
    assert not hasattr(rec, "tags") and not hasattr(dc, "tags")  # a factory leaves no class attribute
    assert rec.__match_args__ == dc.__match_args__


def test_inherited_fields_come_first() -> None:
    @records.record
    class Base:
        a: int
        b: int = 2

    @records.record
    class Child(Base):
        c: int = 3
        b: int = 5  # redefined: keeps its place, takes the new default

    assert repr(Child(1)) == "test_inherited_fields_come_first.<locals>.Child(a=1, b=5, c=3)"


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b'"):
        @records.record
        class Bad:
            a: int = 1
            b: int
