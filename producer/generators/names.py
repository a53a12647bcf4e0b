"""People's names, e-mail domains, street addresses, postal codes and phone numbers, from
lists that ship with synthstream and draws from our own counter-based RNG.

Why not Faker: Faker changes its data and its draws between releases, so the same seed gave
different catalogs and incident tables on two installs. These lists never change under a
user's feet: the same seed gives the same bytes on every install and every version of every
dependency. The names are common in the United States (the catalog's users and the fire
department's staff); the street names are the ones American towns use most.
"""

from __future__ import annotations

import numpy as np

from producer import rng
from producer.rng import I64, U64

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Betty",
    "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew",
    "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Dorothy",
    "Jason", "Rebecca", "Edward", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob",
    "Amy", "Gary", "Kathleen", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Brenda",
    "Stephen", "Emma", "Larry", "Anna", "Justin", "Pamela", "Scott", "Nicole", "Brandon",
    "Samantha", "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Helen", "Alexander",
    "Debra", "Patrick", "Rachel", "Frank", "Carolyn", "Raymond", "Janet", "Jack", "Maria",
    "Dennis", "Catherine", "Jerry", "Heather", "Tyler", "Diane", "Aaron", "Olivia", "Jose",
    "Julie", "Adam", "Joyce", "Nathan", "Victoria", "Henry", "Ruth", "Zachary", "Virginia",
    "Douglas", "Lauren", "Peter", "Kelly", "Kyle", "Christina", "Noah", "Joan", "Ethan",
    "Evelyn", "Jeremy", "Judith", "Christian", "Andrea", "Walter", "Hannah", "Keith", "Megan",
    "Austin", "Cheryl", "Roger", "Jacqueline", "Terry", "Martha", "Sean", "Madison", "Gerald",
    "Teresa", "Carl", "Gloria", "Dylan", "Sara", "Harold", "Janice", "Jordan", "Ann", "Jesse",
    "Kathryn", "Bryan", "Abigail", "Lawrence", "Sophia", "Arthur", "Frances", "Gabriel",
    "Jean", "Bruce", "Alice", "Logan", "Judy", "Billy", "Isabella", "Joe", "Julia", "Alan",
    "Grace", "Juan", "Amber", "Elijah", "Denise", "Willie", "Danielle", "Albert", "Marilyn",
    "Wayne", "Beverly", "Randy", "Charlotte", "Mason", "Natalie", "Vincent", "Theresa", "Liam",
    "Diana", "Roy", "Brittany", "Bobby", "Doris", "Caleb", "Kayla", "Bradley", "Alexis",
    "Russell", "Lori", "Lucas", "Marie", "Luis", "Carmen", "Miguel", "Rosa", "Carlos", "Ana",
    "Wei", "Mei", "Hiroshi", "Yuki", "Raj", "Priya", "Omar", "Fatima", "Dmitri", "Olga",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
    "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler",
    "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan",
    "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno",
    "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar",
    "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez",
    "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman",
    "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter",
    "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Munoz", "Hunt", "Hicks",
    "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar",
    "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson",
    "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn",
    "Kelley", "Spencer", "Hawkins", "Arnold", "Pierce", "Vazquez", "Hansen", "Peters", "Santos",
    "Hart", "Bradley", "Knight", "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson",
    "Carroll", "Lane", "Riley", "Andrews", "Alvarado", "Ray", "Delgado", "Berry", "Perkins",
    "Hoffman", "Johnston", "Matthews", "Pena", "Richards", "Contreras", "Willis", "Carpenter",
    "Lawrence", "Sandoval", "O'Brien", "Zhang", "Wang", "Singh", "Yamamoto", "Kowalski",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com",
                 "aol.com", "proton.me", "gmx.com")  # fmt: skip
EMAIL_WEIGHTS = (0.46, 0.14, 0.12, 0.11, 0.09, 0.03, 0.03, 0.02)
STREET_NAMES = (
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park",
    "Walnut", "Spring", "North", "Ridge", "Church", "Willow", "Mill", "Sunset", "Jackson",
    "Cherry", "Highland", "Lincoln", "Franklin", "Jefferson", "Madison", "Adams", "Chestnut",
    "Meadow", "River", "Forest", "Valley", "Center", "Union", "Broad", "Market", "Front",
    "Water", "Prospect", "Grove", "Dogwood", "Hickory", "Magnolia", "Laurel", "Sycamore",
    "Birch", "Aspen", "Juniper", "Poplar", "Spruce", "Holly", "Lakeview", "Hillcrest",
    "Fairview", "Riverside", "Woodland", "Orchard", "Harbor", "Bay", "Ocean", "Canyon", "Mesa",
    "Vista", "Palm", "Mission", "El Camino", "Alvarado", "Balboa", "Coronado", "Del Mar",
    "La Jolla", "Grand", "Central", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh",
    "Eighth", "Ninth", "Tenth", "College", "School", "Academy", "Railroad", "Depot", "Bridge",
    "Mountain", "Summit", "Valley View", "Pleasant", "Greenwood", "Kingston", "Stratford",
    "Windsor", "Hampton", "Arlington", "Belmont", "Clinton", "Monroe", "Wilson", "Taylor",
)  # fmt: skip
STREET_SUFFIXES = ("St", "Ave", "Blvd", "Rd", "Dr", "Ln", "Way", "Ct", "Pl", "Ter")
SUFFIX_WEIGHTS = (0.28, 0.22, 0.06, 0.14, 0.12, 0.06, 0.05, 0.04, 0.02, 0.01)
# ZIP codes of the cities that have a state in the catalog (first, last), by city, else state.
CITY_ZIPS = {
    "New York City": (10001, 10282), "Manhattan": (10001, 10282), "Brooklyn": (11201, 11256),
    "Queens": (11354, 11697), "The Bronx": (10451, 10475), "Los Angeles": (90001, 90089),
    "San Diego": (92101, 92199), "Chicago": (60601, 60661), "Houston": (77001, 77099),
    "San Antonio": (78201, 78266), "Dallas": (75201, 75398), "Phoenix": (85001, 85099),
    "Philadelphia": (19102, 19154),
}  # fmt: skip
STATE_ZIPS = {"NY": (10001, 14925), "CA": (90001, 96162), "IL": (60001, 62999),
              "TX": (75001, 79999), "AZ": (85001, 86556), "PA": (15001, 19640)}  # fmt: skip


def _pick(key: int, index: int, options: tuple[str, ...], weights: tuple[float, ...] = ()) -> str:
    u = float(rng.uniform(np.array([key], dtype=np.uint64), index)[0])
    if not weights:
        return options[min(int(u * len(options)), len(options) - 1)]
    cdf = np.cumsum(weights) / sum(weights)
    return options[min(int(np.searchsorted(cdf, u, side="right")), len(options) - 1)]


def _number(key: int, index: int, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    u = float(rng.uniform(np.array([key], dtype=np.uint64), index)[0])
    return low + min(int(u * (high - low + 1)), high - low)


def person(key: int) -> tuple[str, str]:
    """(first name, last name) of the person drawn from ``key``."""
    return _pick(key, 0, FIRST_NAMES), _pick(key, 1, LAST_NAMES)


def email_domain(key: int) -> str:
    return _pick(key, 2, EMAIL_DOMAINS, EMAIL_WEIGHTS)


def street(key: int) -> str:
    """A street name with its suffix: ``Maple Ave``."""
    return f"{_pick(key, 3, STREET_NAMES)} {_pick(key, 4, STREET_SUFFIXES, SUFFIX_WEIGHTS)}"


def house_number(key: int) -> int:
    """Mostly three and four digits, now and then one or two."""
    small = float(rng.uniform(_k(key), 6)[0]) < 0.2
    return _number(key, 5, 1, 99) if small else _number(key, 5, 100, 9_899)


def street_address(key: int) -> str:
    """A house number and street, sometimes with an apartment: ``4127 Maple Ave Apt 12``."""
    flat = float(rng.uniform(_k(key), 7)[0]) < 0.15
    apartment = f" Apt {_number(key, 8, 1, 420)}" if flat else ""
    return f"{house_number(key)} {street(key)}{apartment}"


def zip_code(key: int, index: int, city: str, state: str | None) -> str:
    """A ZIP code of the city (or of its state); five digits from a stable range otherwise."""
    low, high = CITY_ZIPS.get(city) or STATE_ZIPS.get(state or "") or (10_000, 98_000)
    return f"{_number(key, 10 + index, low, high):05d}"


def phone(key: int, area_code: str) -> str:
    """A fictional North American number: ``(619) 555-0147`` (555-01xx are reserved for it)."""
    return f"({area_code}) 555-01{_number(key, 9, 0, 99):02d}"


# The same draws for many keys at once (what the functions above give key by key).
def _picks(keys: U64, index: int, options: tuple[str, ...],
           weights: tuple[float, ...] = ()) -> list[str]:  # fmt: skip
    u = rng.uniform(keys, index)
    if not weights:
        at = np.minimum((u * len(options)).astype(np.int64), len(options) - 1)
    else:
        cdf = np.cumsum(weights) / sum(weights)
        at = np.minimum(np.searchsorted(cdf, u, side="right"), len(options) - 1)
    found: list[str] = np.asarray(options, dtype=object)[at].tolist()
    return found


def _numbers(keys: U64, index: int, low: int | I64, high: int | I64) -> I64:
    u = rng.uniform(keys, index)
    span = np.asarray(high) - np.asarray(low)
    out: I64 = np.asarray(low) + np.minimum((u * (span + 1)).astype(np.int64), span)
    return out


def people(keys: U64) -> tuple[list[str], list[str]]:
    """``person`` of each key."""
    return _picks(keys, 0, FIRST_NAMES), _picks(keys, 1, LAST_NAMES)


def email_domains(keys: U64) -> list[str]:
    """``email_domain`` of each key."""
    return _picks(keys, 2, EMAIL_DOMAINS, EMAIL_WEIGHTS)


def street_addresses(keys: U64) -> list[str]:
    """``street_address`` of each key."""
    small = rng.uniform(keys, 6) < 0.2
    house = _numbers(keys, 5, np.where(small, 1, 100), np.where(small, 99, 9_899)).tolist()
    flat = (rng.uniform(keys, 7) < 0.15).tolist()
    apartment = _numbers(keys, 8, 1, 420).tolist()
    return [
        f"{h} {name} {suffix}" + (f" Apt {a}" if f else "")
        for h, name, suffix, f, a in zip(
            house, _picks(keys, 3, STREET_NAMES),
            _picks(keys, 4, STREET_SUFFIXES, SUFFIX_WEIGHTS), flat, apartment, strict=True,
        )
    ]  # fmt: skip


def _k(key: int) -> U64:
    return np.array([key], dtype=np.uint64)
