"""The e-commerce world (seed 002): users, products and the calendar, made once from the seed.

Every attribute is a pure function of ``(seed, entity id)``, drawn for all entities at once,
so every shard holds the same catalog and a user's attributes never depend on the others.
Distributions follow the seed: user types regular 70 % / VIP 5 % / new 25 %; regions North
America 45 % / Europe 30 % / Asia 20 % / Others 5 %, each user in a real city (with its
coordinates and time zone) chosen by population; devices mobile 50 % / desktop 35 % /
tablet 15 %. Names, e-mail addresses and street addresses come from the lists that ship with
synthstream (``names``), seeded per user, made only when asked for (``profile``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from producer import rng
from producer.generators import names, weighted_choice
from producer.geography import load_cities
from producer.rng import F64, I64, U64
from producer.timeline import DAY_MS, hour_curve, hour_of_day, weekday

REGIONS = ("North America", "Europe", "Asia", "Others")
REGION_WEIGHTS = (0.45, 0.30, 0.20, 0.05)
NORTH_AMERICA = {"US", "CA", "MX", "CU", "DO", "GT", "HN", "SV", "NI", "CR", "PA", "JM", "HT"}
US_STATES = {
    "New York City": "NY", "Brooklyn": "NY", "Queens": "NY", "Manhattan": "NY",
    "The Bronx": "NY", "Los Angeles": "CA", "San Diego": "CA", "Chicago": "IL",
    "Houston": "TX", "San Antonio": "TX", "Dallas": "TX", "Phoenix": "AZ", "Philadelphia": "PA",
}  # fmt: skip
TAX_RATES = {"US": 0.08, "CA": 0.13, "MX": 0.16, "GB": 0.20, "DE": 0.19, "JP": 0.10}
DEFAULT_TAX = 0.10

USER_TYPES = ("regular", "vip", "new")
USER_TYPE_WEIGHTS = (0.70, 0.05, 0.25)
ACTIVITY = np.array([1.0, 2.5, 0.6])  # sessions per user, relative, by type
AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_WEIGHTS = (0.20, 0.30, 0.22, 0.15, 0.13)
PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "apple_pay", "google_pay",
                   "bank_transfer")  # fmt: skip
PAYMENT_WEIGHTS = (0.50, 0.20, 0.15, 0.07, 0.05, 0.03)

# Device signatures: (device_type, os, browser, screen_resolution) with their weights per
# device type; the last rows are the suspicious ones a device anomaly uses.
DEVICE_TYPES = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS = (0.50, 0.35, 0.15)
SIGNATURES = (
    ("mobile", "iOS", "Safari", "1170x2532", 0.40),
    ("mobile", "Android", "Chrome", "1080x2400", 0.50),
    ("mobile", "Android", "Samsung Internet", "1080x2340", 0.10),
    ("desktop", "Windows", "Chrome", "1920x1080", 0.45),
    ("desktop", "Windows", "Edge", "1920x1080", 0.15),
    ("desktop", "macOS", "Safari", "2560x1600", 0.15),
    ("desktop", "macOS", "Chrome", "1440x900", 0.12),
    ("desktop", "Windows", "Firefox", "1366x768", 0.08),
    ("desktop", "Linux", "Firefox", "1920x1080", 0.05),
    ("tablet", "iPadOS", "Safari", "2048x2732", 0.60),
    ("tablet", "Android", "Chrome", "1200x1920", 0.40),
    ("desktop", "Linux", "HeadlessChrome", "800x600", 0.0),
    ("mobile", "Android", "Unknown", "360x640", 0.0),
    ("desktop", "Windows", "Tor Browser", "1000x900", 0.0),
    ("unknown", "unknown", "python-requests", "0x0", 0.0),
)  # fmt: skip
SUSPICIOUS = np.array([11, 12, 13, 14])

# name, price range (USD), share of the catalog, affinity by age group (18-24 ... 55+)
CATEGORIES = (
    ("Electronics", 25.0, 2000.0, 0.14, (1.4, 1.3, 1.1, 0.9, 0.7)),
    ("Clothing", 10.0, 300.0, 0.16, (1.5, 1.2, 1.0, 0.8, 0.7)),
    ("Home & Garden", 12.0, 900.0, 0.13, (0.5, 0.9, 1.3, 1.4, 1.4)),
    ("Books", 5.0, 60.0, 0.10, (0.8, 0.8, 1.0, 1.1, 1.5)),
    ("Sports & Outdoors", 10.0, 600.0, 0.10, (1.2, 1.3, 1.1, 0.8, 0.6)),
    ("Beauty & Personal Care", 4.0, 150.0, 0.10, (1.4, 1.2, 1.0, 0.9, 0.8)),
    ("Toys & Games", 6.0, 250.0, 0.09, (0.7, 1.1, 1.5, 0.9, 0.8)),
    ("Grocery", 0.99, 60.0, 0.10, (0.8, 1.0, 1.2, 1.1, 1.1)),
    ("Jewelry", 20.0, 3000.0, 0.04, (0.8, 1.0, 1.1, 1.1, 1.0)),
    ("Automotive", 8.0, 700.0, 0.04, (0.6, 1.0, 1.2, 1.2, 1.0)),
)
CATEGORY_NAMES = tuple(c[0] for c in CATEGORIES)
# What a fraudster buys when the category is the anomaly: easy to resell.
RESALE = np.array([CATEGORY_NAMES.index("Electronics"), CATEGORY_NAMES.index("Jewelry")])
_ADJECTIVES = ("Premium", "Classic", "Essential", "Ultra", "Pro", "Eco", "Compact", "Deluxe",
               "Smart", "Everyday", "Vintage", "Modern", "Signature", "Urban", "Nordic",
               "Max")  # fmt: skip
_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Electronics": (("Professional", "Wireless", "4K", "Portable", "Gaming", "Noise-Cancelling",
                     "Bluetooth", "Curved"),
                    ("Monitor", "Headphones", "Laptop", "Tablet", "Smartwatch", "Speaker",
                     "Camera", "Keyboard", "Router", "Charger", "Earbuds", "Drone")),
    "Clothing": (("Cotton", "Slim-Fit", "Wool", "Linen", "Waterproof", "Organic", "Denim",
                  "Merino"),
                 ("T-Shirt", "Jacket", "Jeans", "Sweater", "Dress", "Hoodie", "Sneakers",
                  "Coat", "Shirt", "Scarf")),
    "Home & Garden": (("Ceramic", "Stainless", "Bamboo", "Cast-Iron", "Oak", "Solar",
                       "Memory-Foam", "Glass"),
                      ("Cookware Set", "Lamp", "Chair", "Rug", "Planter", "Blender", "Pillow",
                       "Shelf", "Knife Set", "Garden Hose")),
    "Books": (("Illustrated", "Hardcover", "Paperback", "Collector's", "Annotated", "Pocket"),
              ("Cookbook", "Novel", "Travel Guide", "Biography", "Atlas", "Thriller",
               "Poetry Collection", "History")),
    "Sports & Outdoors": (("Trail", "Carbon", "Lightweight", "All-Weather", "Insulated",
                           "Adjustable"),
                          ("Running Shoes", "Tent", "Yoga Mat", "Backpack", "Bike Helmet",
                           "Dumbbell Set", "Water Bottle", "Sleeping Bag")),
    "Beauty & Personal Care": (("Hydrating", "Organic", "Fragrance-Free", "Vitamin C",
                                "Travel", "Sensitive"),
                               ("Face Cream", "Shampoo", "Serum", "Electric Toothbrush",
                                "Perfume", "Hair Dryer", "Sunscreen", "Razor")),
    "Toys & Games": (("Wooden", "Educational", "Remote-Control", "Family", "Plush", "Magnetic"),
                     ("Puzzle", "Board Game", "Building Set", "Doll", "Race Car", "Robot Kit",
                      "Card Game", "Teddy Bear")),
    "Grocery": (("Organic", "Fair-Trade", "Artisan", "Gluten-Free", "Roasted", "Wild"),
                ("Coffee Beans", "Olive Oil", "Green Tea", "Chocolate", "Granola", "Honey",
                 "Pasta", "Spice Mix")),
    "Jewelry": (("Sterling Silver", "Gold-Plated", "Diamond", "Pearl", "Rose Gold", "Titanium"),
                ("Necklace", "Ring", "Bracelet", "Earrings", "Watch", "Pendant")),
    "Automotive": (("Heavy-Duty", "Universal", "LED", "Synthetic", "Weatherproof", "Digital"),
                   ("Floor Mats", "Dash Cam", "Tire Inflator", "Seat Covers", "Motor Oil",
                    "Jump Starter", "Headlight Bulbs")),
}  # fmt: skip

# Local hour of day -> traffic factor: quiet nights, business hours 9-21 with peaks at 10,
# 14 and 19-21 (the seed's "Peak Hours"); normalised below to a mean of 1.
HOUR_CURVE = hour_curve([
    0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.55, 0.80, 1.15, 1.60, 1.30,
    1.30, 1.35, 1.60, 1.30, 1.20, 1.25, 1.45, 1.75, 1.80, 1.70, 1.00, 0.60,
])  # fmt: skip


@dataclass(frozen=True)
class SeasonalEvent:
    name: str
    start: date
    hours: int
    multiplier: float
    categories: tuple[str, ...]

    @property
    def days(self) -> tuple[int, int]:
        """[first, end) as days since the epoch (local dates)."""
        first = (self.start - date(1970, 1, 1)).days
        return first, first + (self.hours + 23) // 24


@functools.lru_cache(maxsize=64)
def seasonal_events(year: int) -> tuple[SeasonalEvent, ...]:
    """The seed's events for ``year``: Black Friday (the day after the fourth Thursday of
    November) x8 for 24 h, Christmas x6 for 72 h from 25 December, plus the seed's
    back-to-school trend and Cyber Monday (within its "4-8x during major holidays")."""
    november = date(year, 11, 1)
    thanksgiving = november + timedelta(days=(3 - november.weekday()) % 7 + 21)
    black_friday = thanksgiving + timedelta(days=1)
    return (
        SeasonalEvent("Back to School", date(year, 8, 15), 14 * 24, 1.3,
                      ("Books", "Electronics", "Clothing")),
        SeasonalEvent("Black Friday", black_friday, 24, 8.0, ("Electronics", "Clothing")),
        SeasonalEvent("Cyber Monday", black_friday + timedelta(days=3), 24, 4.0,
                      ("Electronics",)),
        SeasonalEvent("Christmas", date(year, 12, 25), 72, 6.0, ("Toys & Games", "Electronics")),
    )  # fmt: skip


def event_at(local_ms: I64) -> npt.NDArray[np.int8]:
    """The seasonal event in force at local times (an index into ``seasonal_events``; -1:
    none)."""
    day = local_ms // DAY_MS
    which = np.full(local_ms.size, -1, dtype=np.int8)
    if local_ms.size:
        years = np.unique(day.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        for year in years.tolist():
            for i, event in enumerate(seasonal_events(year)):
                first, end = event.days
                which[(day >= first) & (day < end)] = i
    return which


def local_factors(
    local_ms: I64, weekend: float, lifts: F64 | None
) -> tuple[F64, npt.NDArray[np.int8]]:
    """Traffic factor at local times, and the seasonal event in force (-1: none).

    Hour of day x weekend x the event's traffic lift (``lifts[event]``; None: no events).
    The lift is what the event's categories selling x its multiplier, and the rest as usual,
    add up to (see ``EcommerceSource``), so it stacks on the weekend like any other day."""
    factor = HOUR_CURVE[hour_of_day(local_ms)] * np.where(weekday(local_ms) >= 5, weekend, 1.0)
    if lifts is None:
        return factor, np.full(local_ms.size, -1, dtype=np.int8)
    which = event_at(local_ms)
    lifted: F64 = factor * np.where(which >= 0, lifts[np.maximum(which, 0)], 1.0)
    return lifted, which


@dataclass(frozen=True)
class Places:
    """The real cities users live in (the air-quality city file) with their regions."""

    name: list[str]
    country_code: list[str]
    state: list[str | None]
    latitude: F64
    longitude: F64
    population: I64
    timezone: list[str]
    region: I64
    tax: F64

    @classmethod
    def load(cls) -> Places:
        c = load_cities()
        region = []
        for zone, code in zip(c.timezone, c.country_code.tolist(), strict=True):
            if zone.startswith("America/") and code in NORTH_AMERICA:
                region.append(0)
            elif zone.startswith("Europe/"):
                region.append(1)
            elif zone.startswith("Asia/"):
                region.append(2)
            else:
                region.append(3)
        names = c.name.tolist()
        codes = c.country_code.tolist()
        return cls(
            name=names, country_code=codes,
            state=[US_STATES.get(n) if code == "US" else None for n, code in zip(names, codes,
                                                                                  strict=True)],
            latitude=c.latitude, longitude=c.longitude, population=c.population,
            timezone=c.timezone, region=np.array(region, dtype=np.int64),
            tax=np.array([TAX_RATES.get(code, DEFAULT_TAX) for code in codes]),
        )  # fmt: skip


class Users:
    """Every user's attributes as columns (all shards' users: they are cheap)."""

    def __init__(self, seed: int, count: int, places: Places) -> None:
        self.count = count
        self.places = places
        ids = np.arange(count, dtype=np.int64)
        self.keys = rng.combine(rng.text_key(seed, "ecommerce", "users"), ids)
        u = rng.uniform_block(self.keys, 12)
        self.type = weighted_choice(u[:, 0], USER_TYPE_WEIGHTS)
        self.region = weighted_choice(u[:, 1], REGION_WEIGHTS)
        # A city in the region, by population (square root: big cities, not only the biggest).
        self.city = np.empty(count, dtype=np.int64)
        for r in range(len(REGIONS)):
            members = np.flatnonzero(places.region == r)
            mine = self.region == r
            picks = weighted_choice(
                u[mine, 2], np.sqrt(places.population[members]).astype(np.float64)
            )
            self.city[mine] = members[picks]
        # Home: a few km around the city centre.
        noise = rng.box_muller(u[:, 3], u[:, 4]) * 0.03
        noise2 = rng.box_muller(u[:, 4], u[:, 3]) * 0.03
        self.latitude = np.round(places.latitude[self.city] + noise, 4)
        self.longitude = np.round(places.longitude[self.city] + noise2, 4)
        self.device = weighted_choice(u[:, 5], DEVICE_WEIGHTS)
        self.signature = _signatures(self.device, u[:, 6])
        self.age = weighted_choice(u[:, 7], AGE_WEIGHTS)
        # Two favourite categories, weighted by the age group's affinities.
        affinity = np.array([c[4] for c in CATEGORIES]).T * np.array([c[3] for c in CATEGORIES])
        self.favourite = np.empty((count, 2), dtype=np.int64)
        for a in range(len(AGE_GROUPS)):
            mine = self.age == a
            first = weighted_choice(u[mine, 8], affinity[a])
            second = weighted_choice(u[mine, 9], affinity[a])
            second = np.where(second == first, (first + 1) % len(CATEGORIES), second)
            self.favourite[mine, 0], self.favourite[mine, 1] = first, second
        self.payment = weighted_choice(u[:, 10], PAYMENT_WEIGHTS)
        # Activity: by type, times an individual log-normal factor (some people shop more).
        spread = np.exp(0.35 * rng.box_muller(u[:, 11], u[:, 0]) - 0.06125)
        self.activity = ACTIVITY[self.type] * spread
        zones = sorted(set(places.timezone))
        self.zones = zones
        zone_index = {z: i for i, z in enumerate(zones)}
        city_zone = np.array([zone_index[z] for z in places.timezone], dtype=np.int64)
        self.zone = city_zone[self.city]

    def ids(self, users: I64) -> list[str]:
        return [f"user_{i + 1:06d}" for i in users.tolist()]

    @staticmethod
    def any_signature(u: F64) -> I64:
        """A device by the seed's split (50/35/15), then a signature of that type, from one
        uniform each."""
        device = weighted_choice(u, DEVICE_WEIGHTS)
        low = np.concatenate([[0.0], np.cumsum(DEVICE_WEIGHTS)])[device]
        within = np.clip((u - low) / np.asarray(DEVICE_WEIGHTS)[device], 0.0, 1.0 - 1e-12)
        return _signatures(device, within)

    def profile(self, user: int, seed: int) -> dict[str, Any]:
        """One user as a dimension row: name, e-mail and street drawn from the lists that
        ship with synthstream (``names``), seeded per user."""
        key = int(rng.combine(self.keys[user], seed)[0])
        first, last = names.person(key)
        city = int(self.city[user])
        return {
            "user_id": f"user_{user + 1:06d}",
            "name": f"{first} {last}",
            "email": re.sub(r"[^a-z0-9.]", "", f"{first}.{last}{user % 100}".lower())
            + f"@{names.email_domain(key)}",
            "street_address": names.street_address(key),
            "city": self.places.name[city],
            "country": self.places.country_code[city],
            "latitude": float(self.latitude[user]),
            "longitude": float(self.longitude[user]),
            "region": REGIONS[int(self.region[user])],
            "user_type": USER_TYPES[int(self.type[user])],
            "age_group": AGE_GROUPS[int(self.age[user])],
            "preferred_device": DEVICE_TYPES[int(self.device[user])],
            "favourite_categories": [CATEGORY_NAMES[int(c)] for c in self.favourite[user]],
        }


def _signatures(device: I64, u: F64) -> I64:
    """A signature of each ``device`` type, by the signatures' weights within their type."""
    out = np.empty(device.size, dtype=np.int64)
    for d, name in enumerate(DEVICE_TYPES):
        rows = [i for i, s in enumerate(SIGNATURES) if s[0] == name and s[4] > 0]
        mine = device == d
        picks = weighted_choice(u[mine], tuple(SIGNATURES[i][4] for i in rows))
        out[mine] = np.array(rows)[picks]
    return out


class Products:
    """The catalog: category, name, base price (log-uniform in the category's range, ending
    in .99), popularity (heavy-tailed: a few best sellers), rating, seasonal flag."""

    def __init__(self, seed: int, count: int) -> None:
        self.count = count
        ids = np.arange(count, dtype=np.int64)
        self.keys = rng.combine(rng.text_key(seed, "ecommerce", "products"), ids)
        u = rng.uniform_block(self.keys, 8)
        shares = tuple(c[3] for c in CATEGORIES)
        self.category = weighted_choice(u[:, 0], shares)
        low = np.array([c[1] for c in CATEGORIES])[self.category]
        high = np.array([c[2] for c in CATEGORIES])[self.category]
        raw = np.exp(np.log(low) + u[:, 1] ** 1.6 * (np.log(high) - np.log(low)))
        self.base_price = np.where(raw >= 2.0, np.floor(raw) + 0.99, np.round(raw, 2))
        self.popularity = (1.0 - u[:, 2]) ** (-1.0 / 1.3)
        self.rating = np.round(3.2 + 1.8 * u[:, 3] ** 0.6, 1)
        self.reviews = np.floor(self.popularity * 40 * u[:, 4]).astype(np.int64)
        seasonal_cats = {c for e in seasonal_events(2024) for c in e.categories}
        in_season_cat = np.isin(self.category, [CATEGORY_NAMES.index(c) for c in seasonal_cats])
        self.seasonal = in_season_cat & (u[:, 5] < 0.25)
        self.names = np.array(
            [_product_name(int(c), k) for c, k in zip(self.category, self.keys, strict=True)],
            dtype=object,
        )
        # Per category: products in id order and their popularity CDF, for choosing; in
        # season (a seasonal event on), seasonal items sell three times as well.
        self.members: list[I64] = []
        self.cdf: list[F64] = []
        self.cdf_in_season: list[F64] = []
        for c in range(len(CATEGORIES)):
            members = np.flatnonzero(self.category == c)
            if members.size == 0:  # a tiny catalog: borrow the most popular product
                members = np.array([int(np.argmax(self.popularity))])
            self.members.append(members)
            for boost, cdfs in ((1.0, self.cdf), (3.0, self.cdf_in_season)):
                weight = self.popularity[members] * np.where(self.seasonal[members], boost, 1.0)
                cdf = np.cumsum(weight)
                cdfs.append(cdf / cdf[-1])
        self.cheap = np.flatnonzero(self.base_price <= np.quantile(self.base_price, 0.02))

    def choose(self, category: I64, u: F64, in_season: npt.NDArray[np.bool_] | None = None) -> I64:
        """A product of each ``category``, by popularity (seasonal items boosted in season)."""
        out = np.empty(category.size, dtype=np.int64)
        season = np.zeros(category.size, np.bool_) if in_season is None else in_season
        for c in np.unique(category).tolist():
            for flag, cdf in ((False, self.cdf[c]), (True, self.cdf_in_season[c])):
                mine = (category == c) & (season == flag)
                if mine.any():
                    picks = np.searchsorted(cdf, u[mine], side="right")
                    out[mine] = self.members[c][np.minimum(picks, self.members[c].size - 1)]
        return out

    def ids(self, products: I64) -> list[str]:
        return [f"prod_{i + 1:06d}" for i in products.tolist()]

    def rows(self) -> list[dict[str, Any]]:
        """The catalog, a dict per product (the tables job's products table)."""
        return [
            {"product_id": pid, "name": name, "category": CATEGORY_NAMES[c],
             "base_price": float(price), "rating": float(rating), "is_seasonal": bool(seasonal)}
            for pid, name, c, price, rating, seasonal in zip(
                self.ids(np.arange(self.count)), self.names.tolist(), self.category.tolist(),
                self.base_price.tolist(), self.rating.tolist(), self.seasonal.tolist(),
                strict=True,
            )
        ]  # fmt: skip


def _product_name(category: int, key: np.uint64) -> str:
    adjectives = _ADJECTIVES
    qualifiers, nouns = _WORDS[CATEGORY_NAMES[category]]
    k = int(key)
    return (
        f"{adjectives[k % len(adjectives)]} {qualifiers[(k >> 8) % len(qualifiers)]} "
        f"{nouns[(k >> 16) % len(nouns)]}"
    )


def shares(values: U64 | I64, names: tuple[str, ...]) -> dict[str, float]:
    counts = np.bincount(values.astype(np.int64), minlength=len(names))
    total = max(int(counts.sum()), 1)
    return {name: round(int(n) / total, 4) for name, n in zip(names, counts, strict=True)}
