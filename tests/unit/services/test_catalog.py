"""The catalog serves several versions per model; a bare name means the newest."""

import pytest

from services.catalog import ModelCatalog
from services.errors import ModelNotFound
from tests.utils.factories import served_model


def _catalog() -> ModelCatalog:
    return ModelCatalog(
        [
            served_model("b", "old", age_days=3),
            served_model("a", "only"),
            served_model("b", "new", age_days=1),
            served_model("b", "middle", age_days=2),
        ]
    )


def test_versions_are_listed_newest_first_and_all_by_name() -> None:
    catalog = _catalog()

    assert [m.ref.version for m in catalog.versions("b")] == ["new", "middle", "old"]
    assert [m.ref.tag for m in catalog.all()] == ["a:only", "b:new", "b:middle", "b:old"]
    assert catalog.names() == ["a", "b"]
    assert catalog.versions("c") == []


def test_a_bare_name_resolves_to_the_newest_version_and_a_tag_to_itself() -> None:
    catalog = _catalog()

    assert catalog.resolve("b").ref.version == "new"
    assert catalog.resolve("b:old").ref.version == "old"


@pytest.mark.parametrize("wanted", ["c", "b:gone"])
def test_what_is_not_served_is_not_found_with_the_served_tags(wanted: str) -> None:
    with pytest.raises(ModelNotFound) as raised:
        _catalog().resolve(wanted)

    assert raised.value.details["served"] == ["a:only", "b:middle", "b:new", "b:old"]
