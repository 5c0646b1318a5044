from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write

from shelfcast.data.sources.generic import load_mapping, parse_pairs
from shelfcast.errors import ConfigError
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
CSV = (
    "Day;Shop;Qty;Temp;Hol\n"
    "05/01/2024;A;5;3.5;0\n13/01/2024;A;4;4.5;1\n13/01/2024;B;2;4.5;true\n14/01/2024;B;2;x;maybe\n"
)


def test_mapping_from_the_command_line(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    mapping = load_mapping(
        columns=parse_pairs(["date=Day", "store_id=Shop", "units=Qty"], option="--map"),
        constants={"item_id": "all"},
        exogenous={"Temp": "past_only"},
        calendar={"Hol": "holiday"},
    )
    report = ingest(write(tmp_path / "g.csv", CSV), "generic", mapping=mapping)
    assert [(p.table, p.read, p.kept, p.quarantined) for p in report.parts] == [
        ("sales", 4, 4, 0),
        ("exogenous", 4, 3, 1),
        ("calendar", 3, 2, 1),
    ]
    lake = Lake(workspace)
    assert lake.read("sales")["item_id"].unique().to_list() == ["all"]
    assert lake.read("calendar").select("date", "event", "store_id").rows()[0][1:] == ("holiday", "A")
    assert report.quarantine_by_rule == {"invalid_Temp": 1, "missing_event": 1}


def test_mapping_from_toml_with_overrides(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    toml = write(
        tmp_path / "map.toml",
        'table = "sales"\ndate_format = "%d/%m/%Y"\n[columns]\ndate = "Day"\nstore_id = "Shop"\nunits = "Qty"\n'
        '[constants]\nitem_id = "x"\n',
    )
    mapping = load_mapping(toml, constants={"item_id": "all"})
    assert mapping.constants == {"item_id": "all"}
    ingest(write(tmp_path / "g.csv", CSV), "generic", mapping=mapping)
    assert Lake(workspace).read("sales").height == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a column mapping"),
        ({"columns": {"dat": "Day"}}, "'dat' is not a column of table sales"),
        ({"columns": {"date": "Day", "units": "Qty"}}, r"needs store_id, item_id: map a column \(--map store_id"),
        ({"columns": {"date": "Day"}, "table": "budget"}, "`table` must be one of"),
        (
            {"columns": {"date": "D", "store_id": "S", "item_id": "I", "units": "U"}, "exogenous": {"T": "often"}},
            "mapping exogenous.T",
        ),
        (
            {"columns": {"date": "D", "item_id": "I", "units": "U"}, "constants": {"item_id": "1", "store_id": "1"}},
            "given both as a column and as a constant",
        ),
    ],
)
def test_bad_mappings_are_one_line_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_mapping(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("pair", ["units", "=Qty", "units="])
def test_malformed_pairs_name_the_option(pair: str) -> None:
    with pytest.raises(ConfigError, match=r"`--map` expects NAME=VALUE"):
        parse_pairs([pair], option="--map")


def test_bad_toml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read mapping file"):
        load_mapping(write(tmp_path / "m.toml", "columns = [unclosed"))


def test_mapped_column_missing_from_the_file(tmp_path: Path, ingest: Ingest) -> None:
    from shelfcast.errors import InputFileError

    mapping = load_mapping(columns={"date": "Day", "store_id": "Shop", "item_id": "Sku", "units": "Qty"})
    with pytest.raises(InputFileError, match=r"missing required column\(s\) Sku"):
        ingest(write(tmp_path / "g.csv", CSV), "generic", mapping=mapping)


def test_a_mapping_file_with_an_unknown_section_names_it_and_the_layout(tmp_path: Path) -> None:
    toml = write(tmp_path / "map.toml", '[sales]\ndate = "Day"\nunits = "Qty"\nstores = 3\n')
    with pytest.raises(ConfigError) as error:
        load_mapping(toml)
    message = str(error.value)
    assert message.startswith(f"mapping file {toml}: unknown section [sales]; expected: ")
    assert '[columns] with canonical name = column in the file (date = "Day"' in message


def test_a_mapping_file_without_columns_is_named(tmp_path: Path) -> None:
    toml = write(tmp_path / "map.toml", 'table = "sales"\n')
    with pytest.raises(ConfigError, match=f"^mapping file {toml} has no \\[columns\\] section and no --map was given"):
        load_mapping(toml)
