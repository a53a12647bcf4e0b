"""Same seed, same bytes, on every install: digests of the catalog and the incident tables
for a fixed seed and window. A change of these digests is a change every user sees (their
seeded files differ from last release's): make it on purpose, say so in the changelog, and
update the digests here."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import cli

CATALOG = {
    "products.jsonl": "d94018dd05e8a6535b01fc82989e7687a53e64d897c8f9affbf2ee59d32fe589",
    "users.jsonl": "4099020560ac992f07257167361b611622a45556a90c9e69ef9524e42e5d61c6",
}
INCIDENT_TABLES = {
    "stations.csv": "3bda936023ccd8993978b351f068721410acf200f895e166b522d24723b8ea9f",
    "incidents.csv": "60329d0e1db1e0b06ec294c4ccdf360b6013640c570384d76605c4b0bda827b2",
    "incident_units.csv": "79d9afd87610341fc30305ca84b543e05a69c440876fd231cd4ee00b4345223a",
    "incident_assets.csv": "a4cb1c47bd46cfe708e7594867097e0956f236c1920ff268341231b1aa632a98",
    "incident_notes.csv": "9bf57b400dec74b7854ec11ed89a2a729c136cfdb03eadde12eec97da6cd274a",
}


def digests(folder: Path, names: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def test_the_catalog_is_the_same_bytes_for_a_seed(tmp_path: Path) -> None:
    run = cli("catalog", "--streams", "ecommerce", "--out", str(tmp_path), "--seed", "5",
              env={"SYNTHSTREAM_ECOMMERCE__USERS": "2000"})  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert digests(tmp_path, CATALOG) == CATALOG


def test_the_incident_tables_are_the_same_bytes_for_a_seed_and_window(tmp_path: Path) -> None:
    run = cli("incidents", "--output-dir", str(tmp_path), "--seed", "5", "--incident-count",
              "2000", "--start-datetime", "2024-06-01T00:00:00Z", "--no-verbose")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert digests(tmp_path, INCIDENT_TABLES) == INCIDENT_TABLES
