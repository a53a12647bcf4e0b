"""Same seed, same bytes, on every install: digests of the catalog and the incident tables
for a fixed seed and window. A change of these digests is a change every user sees (their
seeded files differ from last release's): make it on purpose, say so in the changelog, and
update the digests here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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


# Every built-in stream through the CLI for a fixed seed and window, every channel, many
# fault kinds on: the records and the ground truth, each file's digest.
FAULTS = {"DROP_RATE": "0.01", "DUPLICATE_RATE": "0.02", "LATE_RATE": "0.01",
          "CLOCK_SKEW_RATE": "0.01", "MALFORMED_RATE": "0.01", "OUTAGE_RATE": "0.01",
          "QUALITY_ISSUE_RATE": "0.02", "GROUND_TRUTH": "true"}  # fmt: skip
STREAM_RUNS = {
    "bme280": {"SYNTHSTREAM_BME280__DEVICES": "40",
               "SYNTHSTREAM_BME280__FAULTS__ANOMALY_RATE": "0.01"},
    "air_quality": {"SYNTHSTREAM_AIR_QUALITY__RATE__TOTAL_PER_S": "2",
                    "SYNTHSTREAM_AIR_QUALITY__FAULTS__POLLUTION_EPISODE_RATE": "0.05"},
    "ecommerce": {"SYNTHSTREAM_ECOMMERCE__USERS": "1000", "SYNTHSTREAM_ECOMMERCE__PRODUCTS": "200",
                  "SYNTHSTREAM_ECOMMERCE__SCENARIO": "fraud_testing"},
    "incidents": {"SYNTHSTREAM_INCIDENTS__INCIDENTS_PER_HOUR": "60"},
}  # fmt: skip
STREAM_DIGESTS: dict[str, dict[str, str]] = {
    "air_quality": {
        "air_quality": "b6d0b416a5bbe5034e7edaae5a5ad6dabde79a40a1b5d6580c25e34ec093e8b5",
        "air_quality truth": "d52caaaa74058b1d57ad0db3d652b9fc215ae121a54e36e9ecdd29c011e551b0",
    },
    "bme280": {
        "bme280": "c3cff930f6744533d2ba96b28c4dedfd0b22f4d24260da5582547bc0d9098019",
        "bme280 truth": "269dcbcfa0b3aabde3ffa3deb721c18dfd70c9e8b2f82d484147290ba2db7f5d",
    },
    "ecommerce": {
        "analytics-results": "4078f8505a700ebfb57bb06f273fe83554ccc788cc534ca4bb7a55d6e6f06a28",
        "analytics-results truth": (
            "5027afd5228a84fef85481ea997c2954095189b9ed25e7768105b0c7b4b53979"
        ),
        "fraud-alerts": "72ff41c241965dc5413c82fff63309c83ac810dd2a92c4b32fc09cae4b0d4ec6",
        "fraud-alerts truth": "b5a780d3e25666fa150b9ffd568fc73af51c89f16c8539674e03bdf52a1e9899",
        "product-updates": "dbf27387965a22f2202ef64fe530ec16f278a5fb08422eaa4e8637d9eb4ddf18",
        "product-updates truth": "1baef38108a4550e9f6872223279777528c0c98a07fc2641c66ce908e88a7564",
        "transactions": "c9bb1ad4579bae716d9ca7effcc73477335317026f6a715cd644e88785cf2d11",
        "transactions truth": "1020f690bc77bfb1e51e34a9fcc595f76497bdff17e1fdd0aaa85703da7191bf",
        "user-events": "7f718f8a3d1ed7221edf3637951969033eb620d364bd5206da12f67b3e203c88",
        "user-events truth": "64ac622fcfd240e195cc3403c04d84373bf0cb3184e260dc93d850a6693f31e3",
    },
    "incidents": {
        "incidents": "aa35b0ed28fc4c690f76f54a4149309ed1c66899b93f994c29dba81ac55192e9",
        "incidents truth": "fd21a5435e6707e46e288b21468a8066be00e1ca7e36eff436cce4b6218cfcaf",
    },
}


def stream_digests(name: str, out: Path) -> dict[str, str]:
    prefix = f"SYNTHSTREAM_{name.upper()}__FAULTS__"
    env = {**{prefix + k: v for k, v in FAULTS.items()}, **STREAM_RUNS[name]}
    run = cli("run", "--streams", name, "--backfill", "--start", "2024-03-31T00:00:00",
              "--end", "2024-03-31T02:00:00", "--sinks", "file", "--out", str(out),
              "--seed", "5", "--metrics-port", "0", env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    found: dict[str, hashlib._Hash] = {}
    for path in sorted(out.rglob("*")):  # one digest per channel folder, file names included
        if path.is_file():
            part = path.relative_to(out).parts[0].replace(".ground-truth.jsonl", " truth")
            digest = found.setdefault(part, hashlib.sha256())
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {part: digest.hexdigest() for part, digest in found.items()}


@pytest.mark.parametrize("name", sorted(STREAM_RUNS))
def test_every_stream_is_the_same_bytes_for_a_seed_and_window(name: str, tmp_path: Path) -> None:
    found = stream_digests(name, tmp_path)
    assert len(found) >= 2, found  # records and their ground truth, at least
    assert found == STREAM_DIGESTS[name]
