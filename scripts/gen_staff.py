#!/usr/bin/env python3
"""Generate a seeded, realistic staff list (and optional device stock list) for homebase.

The staff are the employees of a fictional German city administration
("Stadtverwaltung Musterstadt", mail domain ``musterstadt.example``).  The output is
deterministic for a given ``--seed`` and exercises the awkward parts of real data:

* German names with umlauts and ß (Jürgen, Müller, Weiß, Dörte …), a share of names of
  international origin (Özdemir, Łukasz, Nguyễn, O'Brien, de Vries …), double family
  names (Müller-Lüdenscheidt), two-part given names (Anna-Lena, Anna Maria);
* deliberately many common-name collisions (several "Jürgen Müller") so username
  collision handling is exercised; emails are transliterated to ASCII
  (ä→ae, ö→oe, ü→ue, ß→ss, other accents stripped) and made unique with a numeric
  suffix (juergen.mueller, juergen.mueller2, …);
* weighted departments (Informationstechnik about 4 %), department-typical locations,
  a manager hierarchy inside each department (about 5 % without manager);
* ``start`` dates in 2026, ``end`` ("Homeoffice bis") for about 15 %, a few of them
  within the weeks after the reference date (so expiry warnings show), none before it.

Staff CSV columns:      id,given_name,family_name,email,department,location,phone,manager,start,end
Inventory CSV columns:  asset_tag,serial,kind,model,status

Both files are UTF-8 (no BOM), comma-separated, ``\\n`` line ends, quoted only where needed.

Example (the committed examples):

    python3 scripts/gen_staff.py --count 1200 --seed 2026 \\
        --out examples/staff.csv --inventory examples/inventory.csv

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import sys
import unicodedata
from contextlib import contextmanager
from random import Random

DOMAIN = "musterstadt.example"
DEFAULT_REFERENCE_DATE = "2026-11-27"

# --------------------------------------------------------------------------- names
# (name, weight) — weights are relative within a list.

GERMAN_GIVEN = [
    # deliberately heavy: the collision hot spots
    ("Jürgen", 30), ("Julia", 30), ("Thomas", 24), ("Michael", 22), ("Sabine", 20),
    ("Andreas", 18), ("Stefan", 16), ("Petra", 14), ("Anna", 16), ("Katrin", 12),
    ("Christian", 14), ("Martin", 12), ("Claudia", 12), ("Susanne", 12), ("Frank", 10),
    ("Markus", 10), ("Nicole", 10), ("Daniela", 9), ("Monika", 8), ("Birgit", 8),
    ("Jörg", 10), ("Björn", 8), ("Dörte", 6), ("Günter", 6), ("Bärbel", 5), ("Sören", 6),
    ("Jens", 8), ("Uwe", 8), ("Heike", 9), ("Anke", 8), ("Kerstin", 8), ("Ute", 6),
    ("Renate", 5), ("Wolfgang", 7), ("Klaus", 6), ("Dirk", 7), ("Maik", 5), ("Silke", 7),
    ("Tobias", 9), ("Sebastian", 10), ("Alexander", 9), ("Jan", 9), ("Florian", 8),
    ("Lukas", 8), ("Jonas", 7), ("Leon", 6), ("Finn", 6), ("Niklas", 6), ("Tim", 6),
    ("Laura", 8), ("Lena", 8), ("Sarah", 8), ("Lisa", 8), ("Hannah", 6), ("Sophie", 6),
    ("Marie", 6), ("Mia", 5), ("Emma", 5), ("Lea", 5), ("Johanna", 5), ("Franziska", 6),
    ("Christine", 6), ("Angelika", 5), ("Gisela", 3), ("Hans", 5), ("Helga", 3),
    ("Rüdiger", 4), ("Götz", 2), ("Käthe", 1), ("Lür", 1), ("Hauke", 3),
    ("Wiebke", 4), ("Frauke", 4), ("Imke", 3), ("Okke", 1), ("Tjark", 2), ("Merle", 4),
    # two-part given names
    ("Anna-Lena", 4), ("Hans-Peter", 4), ("Karl-Heinz", 4), ("Marie-Luise", 3),
    ("Lea-Sophie", 2), ("Hans-Jürgen", 3), ("Anna Maria", 2), ("Eva-Maria", 2),
]

GERMAN_FAMILY = [
    ("Müller", 60), ("Schmidt", 36), ("Schneider", 24), ("Fischer", 20), ("Weber", 18),
    ("Meyer", 18), ("Wagner", 16), ("Becker", 15), ("Schulz", 15), ("Hoffmann", 14),
    ("Schäfer", 14), ("Koch", 12), ("Bauer", 12), ("Richter", 11), ("Klein", 11),
    ("Wolf", 10), ("Schröder", 12), ("Neumann", 10), ("Schwarz", 9), ("Zimmermann", 9),
    ("Braun", 9), ("Krüger", 9), ("Hofmann", 8), ("Hartmann", 8), ("Lange", 8),
    ("Schmitt", 8), ("Werner", 8), ("Schmitz", 7), ("Krause", 8), ("Meier", 8),
    ("Lehmann", 8), ("Schmid", 6), ("Schulze", 7), ("Maier", 6), ("Köhler", 8),
    ("Herrmann", 6), ("König", 7), ("Walter", 6), ("Mayer", 6), ("Huber", 5),
    ("Kaiser", 5), ("Fuchs", 5), ("Peters", 6), ("Lang", 5), ("Scholz", 5),
    ("Möller", 7), ("Weiß", 8), ("Jung", 5), ("Hahn", 5), ("Schubert", 5), ("Vogel", 5),
    ("Friedrich", 5), ("Keller", 5), ("Günther", 5), ("Frank", 4), ("Berger", 4),
    ("Winkler", 4), ("Roth", 4), ("Beck", 4), ("Lorenz", 4), ("Baumann", 4),
    ("Franke", 4), ("Albrecht", 4), ("Schuster", 4), ("Simon", 3), ("Ludwig", 4),
    ("Böhm", 4), ("Winter", 4), ("Kraus", 4), ("Martin", 3), ("Schumacher", 4),
    ("Krämer", 4), ("Vogt", 4), ("Stein", 3), ("Jäger", 4), ("Otto", 3), ("Sommer", 4),
    ("Groß", 6), ("Seidel", 3), ("Heinrich", 3), ("Brandt", 4), ("Haas", 3),
    ("Schreiber", 3), ("Graf", 3), ("Schulte", 3), ("Dietrich", 3), ("Ziegler", 3),
    ("Kuhn", 3), ("Kühn", 3), ("Pohl", 3), ("Engel", 3), ("Horn", 3), ("Busch", 3),
    ("Bergmann", 3), ("Thomas", 2), ("Voigt", 3), ("Sauer", 3), ("Arnold", 3),
    ("Wolff", 3), ("Pfeiffer", 3), ("Lüdtke", 2), ("Meißner", 3), ("Strauß", 3),
    ("Janßen", 4), ("Hinrichs", 3), ("Gerdes", 3), ("Ahlers", 3), ("Büsing", 2),
    ("Oltmanns", 2), ("Thölken", 1), ("Brüning", 2), ("Dreßler", 2), ("Rößler", 2),
    ("Fröhlich", 3), ("Nüßlein", 1), ("Mößner", 1), ("Gödeke", 1), ("Lüders", 2),
    ("von Bülow", 1), ("von der Heide", 1), ("zur Mühlen", 1),
]

# International origins: (weight of the origin, given names, family names)
INTERNATIONAL = [
    (30, [("Mehmet", 5), ("Ayşe", 4), ("Fatma", 3), ("Emre", 4), ("Elif", 4),
          ("Zeynep", 3), ("Ali", 4), ("Mustafa", 3), ("Hakan", 3), ("Özlem", 3),
          ("Gülşen", 2), ("Serkan", 2), ("Büşra", 2), ("Çağlar", 1)],
         [("Özdemir", 6), ("Yılmaz", 6), ("Kaya", 5), ("Demir", 5), ("Şahin", 4),
          ("Çelik", 4), ("Yıldız", 4), ("Aydın", 3), ("Öztürk", 4), ("Arslan", 3),
          ("Doğan", 3), ("Koç", 2), ("Güneş", 2)]),
    (18, [("Aleksandra", 3), ("Katarzyna", 3), ("Piotr", 3), ("Paweł", 3),
          ("Łukasz", 3), ("Małgorzata", 2), ("Agnieszka", 2), ("Tomasz", 3),
          ("Krzysztof", 2), ("Zofia", 2)],
         [("Nowak", 5), ("Kowalski", 4), ("Kowalczyk", 3), ("Lewandowski", 3),
          ("Wójcik", 3), ("Dąbrowski", 2), ("Zieliński", 2), ("Szymański", 2),
          ("Woźniak", 2), ("Kamiński", 2)]),
    (12, [("Dragan", 3), ("Jelena", 3), ("Ivana", 3), ("Milica", 2), ("Nikola", 3),
          ("Marko", 3), ("Ana", 3), ("Dejan", 2), ("Snežana", 1), ("Đorđe", 1)],
         [("Popović", 4), ("Jovanović", 4), ("Petrović", 3), ("Marković", 3),
          ("Kovačević", 3), ("Nikolić", 3), ("Hodžić", 2), ("Begić", 2), ("Đurić", 1)]),
    (12, [("Olena", 3), ("Oksana", 3), ("Dmitri", 3), ("Natalia", 3), ("Sergej", 3),
          ("Irina", 3), ("Andrij", 2), ("Swetlana", 2), ("Viktor", 2), ("Jewgenij", 1)],
         [("Ivanov", 3), ("Kuznetsov", 2), ("Shevchenko", 3), ("Kovalenko", 3),
          ("Bondarenko", 3), ("Petrenko", 2), ("Smirnow", 2), ("Wolkow", 2), ("Melnyk", 2)]),
    (10, [("Ahmad", 3), ("Fatima", 3), ("Mohammed", 4), ("Yasmin", 3), ("Omar", 3),
          ("Leila", 2), ("Karim", 2), ("Rania", 2), ("Samir", 2), ("Nour", 2)],
         [("Al-Hassan", 3), ("Haddad", 3), ("Khalil", 3), ("Saleh", 2), ("Nasser", 2),
          ("Abu-Zaid", 1), ("El-Amin", 2), ("Mansour", 2), ("Hamdan", 2)]),
    (8, [("Giuseppe", 3), ("Francesca", 3), ("Marco", 3), ("Chiara", 3), ("Luca", 3),
         ("Giulia", 3), ("Niccolò", 1), ("José", 3), ("João", 2), ("María", 2),
         ("Inês", 2), ("Lucía", 2)],
        [("Rossi", 3), ("Russo", 3), ("Esposito", 3), ("Ferrari", 2), ("Romano", 2),
         ("García", 3), ("Fernández", 2), ("Rodrigues", 2), ("Santos", 3),
         ("Gonçalves", 2), ("Muñoz", 2), ("D'Angelo", 1)]),
    (6, [("Thi Lan", 2), ("Minh", 3), ("Hoa", 2), ("Tuan", 3), ("Linh", 3), ("Huong", 2)],
        [("Nguyễn", 6), ("Trần", 3), ("Phạm", 3), ("Lê", 2), ("Hoàng", 2), ("Võ", 1)]),
    (4, [("Eleni", 3), ("Dimitrios", 3), ("Georgios", 2), ("Maria", 3), ("Nikos", 2)],
        [("Papadopoulos", 3), ("Georgiou", 2), ("Nikolaidis", 2), ("Dimitriou", 2)]),
    (6, [("François", 2), ("Hélène", 2), ("René", 2), ("Zoë", 2), ("Noël", 1),
         ("Søren", 2), ("Åsa", 2), ("Siobhán", 2), ("Seán", 2), ("Liam", 2),
         ("Sinéad", 1)],
        [("Dubois", 2), ("Lefèvre", 2), ("de Vries", 3), ("van der Berg", 2),
         ("Jansen", 2), ("O'Brien", 2), ("Ó Súilleabháin", 1), ("Nørgaard", 1),
         ("Lindström", 2), ("Ångström", 1)]),
]

INTERNATIONAL_SHARE = 0.17   # persons with an international given + family name
MIXED_SHARE = 0.03           # international given name + German family name (or vice versa)
DOUBLE_FAMILY_SHARE = 0.035  # hyphenated double family names
HOTSPOT_SHARE = 0.012        # extra weight on the classic collision pairs
HOTSPOTS = [("Jürgen", "Müller", 4), ("Julia", "Müller", 4), ("Thomas", "Schmidt", 2),
            ("Sabine", "Schneider", 1), ("Michael", "Weiß", 1), ("Anna", "Schäfer", 1)]

# --------------------------------------------------------------------------- organisation

# department: (weight in %, location weights)
DEPARTMENTS = {
    "Bürgeramt":            (14, {"Rathaus": 2, "Bürgerbüro Nord": 4, "Bürgerbüro Süd": 4}),
    "Ordnungsamt":          (10, {"Rathaus": 5, "Außenstelle Hafen": 3, "Bürgerbüro Süd": 1}),
    "Sozialamt":            (12, {"Rathaus": 6, "Bürgerbüro Nord": 2, "Bürgerbüro Süd": 2}),
    "Jugendamt":            (11, {"Rathaus": 5, "Bürgerbüro Nord": 3, "Bürgerbüro Süd": 3}),
    "Bauaufsicht":          (6,  {"Technisches Rathaus": 9, "Rathaus": 1}),
    "Stadtkasse":           (5,  {"Rathaus": 1}),
    "Kämmerei":             (5,  {"Rathaus": 1}),
    "Personalamt":          (5,  {"Rathaus": 1}),
    "Informationstechnik":  (4,  {"Technisches Rathaus": 3, "Rathaus": 2}),
    "Standesamt":           (3,  {"Rathaus": 4, "Bürgerbüro Nord": 1}),
    "Umweltamt":            (5,  {"Technisches Rathaus": 4, "Außenstelle Hafen": 2}),
    "Schulverwaltung":      (7,  {"Rathaus": 3, "Technisches Rathaus": 1}),
    "Stadtplanung":         (5,  {"Technisches Rathaus": 1}),
    "Tiefbauamt":           (5,  {"Technisches Rathaus": 3, "Außenstelle Hafen": 2}),
    "Feuerwehr Verwaltung": (3,  {"Außenstelle Hafen": 3, "Technisches Rathaus": 1}),
}

PHONE_PREFIX = "+49 421 361-"
PHONE_MISSING_SHARE = 0.02
NO_MANAGER_SHARE = 0.05
LEADS_PER_STAFF = 1 / 10     # one team lead per ~10 persons in a department
END_SHARE = 0.15             # persons with a "Homeoffice bis" date
END_SOON_SHARE = 0.015       # of all persons: "Homeoffice bis" within the next weeks

# --------------------------------------------------------------------------- inventory

# kind: (prefix, per-mille of staff count, [(model, weight, serial pattern)])
# serial patterns: literal characters, '?' = uppercase letter or digit, '#' = digit,
# '%' = hex digit (upper case).
INVENTORY = [
    ("notebook", "NB", 1030, [("ThinkPad T14 Gen 5", 6, "PF4X????"),
                              ("Latitude 5450", 4, "???????")]),
    ("monitor", "MON", 920, [("P24h-30", 5, "V90?????"),
                             ("Dell P2425H", 5, "CN-0?????-####-##?-????")]),
    ("headset", "HS", 920, [("Jabra Evolve2 40", 6, "JB#####?????"),
                            ("Poly Voyager 4320", 4, "2A%%%%%%%%")]),
]
REPAIR_SHARE = 0.01

ALNUM = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford base32: no I, L, O, U
DIGITS = "0123456789"
HEX = "0123456789ABCDEF"
# random bytes -> characters (256 is a multiple of 32 and 16; digits are barely biased)
_BYTE_TABLES = {c: "".join(a[b % len(a)] for b in range(256)).encode("ascii")
                for c, a in (("?", ALNUM), ("#", DIGITS), ("%", HEX))}

# --------------------------------------------------------------------------- helpers

_TRANSLIT = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS",
    "ı": "i", "İ": "I", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O",
    "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D",
})

_local_cache: dict[str, str] = {}


def email_part(name: str) -> str:
    """Transliterate a name to a lowercase ASCII email local-part fragment."""
    cached = _local_cache.get(name)
    if cached is not None:
        return cached
    s = unicodedata.normalize("NFC", name).translate(_TRANSLIT)
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    out = []
    for c in s:
        if "a" <= c <= "z" or "0" <= c <= "9":
            out.append(c)
        elif c in " -":
            out.append("-")
        # apostrophes and anything else are dropped: O'Brien -> obrien
    result = "-".join(p for p in "".join(out).split("-") if p)
    _local_cache[name] = result
    return result


def cumulative(pairs):
    names = [p[0] for p in pairs if p[1] > 0]
    cum, total = [], 0
    for p in pairs:
        if p[1] > 0:
            total += p[1]
            cum.append(total)
    return names, cum


def apportion(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Exact counts per key summing to n (largest remainder method)."""
    total = sum(weights.values())
    raw = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], k))[:rest]:
        counts[k] += 1
    return counts


def serial_batch(rng: Random, pattern: str, count: int) -> list[str]:
    """count random serials for the pattern, from one block of random bytes (fast)."""
    size = len(pattern)
    blob = rng.randbytes(count * size)
    text = {c: blob.translate(t).decode("ascii") for c, t in _BYTE_TABLES.items()}
    fmt, runs, i = [], [], 0
    while i < size:                      # split into literal text and runs of one class
        c, j = pattern[i], i
        while j < size and pattern[j] == c:
            j += 1
        if c in _BYTE_TABLES:
            fmt.append("{}")
            runs.append((text[c], i, j))
        else:
            fmt.append(pattern[i:j].replace("{", "{{").replace("}", "}}"))
        i = j
    fmt = "".join(fmt)
    return [fmt.format(*[t[o + a:o + b] for t, a, b in runs])
            for o in range(0, count * size, size)]


@contextmanager
def open_out(path: str):
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            yield f


# --------------------------------------------------------------------------- staff

def gen_names(rng: Random, n: int) -> list[tuple[str, str]]:
    g_names, g_cum = cumulative(GERMAN_GIVEN)
    f_names, f_cum = cumulative(GERMAN_FAMILY)
    origins = [(cumulative(giv), cumulative(fam)) for _, giv, fam in INTERNATIONAL]
    o_cum = cumulative([(i, w) for i, (w, _, _) in enumerate(INTERNATIONAL)])[1]
    hot_names, hot_cum = cumulative([((g, f), w) for g, f, w in HOTSPOTS])
    choices = rng.choices
    random = rng.random

    # pre-drawn pools (one choices() call each, fast); rarer cases draw individually
    g_pool = iter(choices(g_names, cum_weights=g_cum, k=n))
    f_pool = iter(choices(f_names, cum_weights=f_cum, k=n))

    def german_family() -> str:
        if random() < DOUBLE_FAMILY_SHARE:
            if random() < 0.1:
                return "Müller-Lüdenscheidt"
            a, b = choices(f_names, cum_weights=f_cum, k=2)
            while b == a or " " in a or " " in b:
                a, b = choices(f_names, cum_weights=f_cum, k=2)
            return f"{a}-{b}"
        return next(f_pool)

    def origin():
        return origins[choices(range(len(origins)), cum_weights=o_cum)[0]]

    names = []
    append = names.append
    for r in [random() for _ in range(n)]:
        if r < HOTSPOT_SHARE:
            append(choices(hot_names, cum_weights=hot_cum)[0])
            continue
        r -= HOTSPOT_SHARE
        if r < INTERNATIONAL_SHARE:
            (gn, gc), (fn, fc) = origin()
            append((choices(gn, cum_weights=gc)[0], choices(fn, cum_weights=fc)[0]))
            continue
        r -= INTERNATIONAL_SHARE
        if r < MIXED_SHARE:
            (gn, gc), (fn, fc) = origin()
            if random() < 0.7:   # e.g. married into a German family name
                append((choices(gn, cum_weights=gc)[0], german_family()))
            else:
                append((next(g_pool), choices(fn, cum_weights=fc)[0]))
            continue
        append((next(g_pool), german_family()))
    return names


def gen_staff(rng: Random, n: int, start_id: int, ref: dt.date) -> list[list[str]]:
    ids = [f"P{start_id + i:06d}" for i in range(n)]
    names = gen_names(rng, n)

    # emails: unique, numeric suffix from the second holder of a local part on
    seen: dict[str, int] = {}
    emails = []
    for given, family in names:
        base = f"{email_part(given)}.{email_part(family)}"
        k = seen.get(base, 0) + 1
        seen[base] = k
        emails.append(f"{base}@{DOMAIN}" if k == 1 else f"{base}{k}@{DOMAIN}")

    # departments: exact proportions, random order
    counts = apportion(n, {d: w for d, (w, _) in DEPARTMENTS.items()})
    depts = [d for d, c in counts.items() for _ in range(c)]
    rng.shuffle(depts)

    # locations per department
    loc_tables = {d: cumulative(list(locs.items())) for d, (_, locs) in DEPARTMENTS.items()}
    loc_pools = {d: iter(rng.choices(names_, cum_weights=cum, k=counts[d]))
                 for d, (names_, cum) in loc_tables.items()}
    locations = [next(loc_pools[d]) for d in depts]

    # phones: unique extensions
    digits = 4 if n <= 9000 else 5 if n <= 90000 else 6
    lo = 10 ** (digits - 1)
    exts = rng.sample(range(lo, 10 * lo), n)
    phones = ["" if rng.random() < PHONE_MISSING_SHARE else f"{PHONE_PREFIX}{e}" for e in exts]

    # managers: head (none) -> team leads -> staff, all within the department
    managers = [""] * n
    members: dict[str, list[int]] = {}
    for i, d in enumerate(depts):
        members.setdefault(d, []).append(i)
    no_manager = 0
    for d in DEPARTMENTS:
        idx = members.get(d, [])
        if not idx:
            continue
        head, rest = idx[0], idx[1:]
        no_manager += 1
        n_leads = min(len(rest), max(1, round(len(idx) * LEADS_PER_STAFF))) if rest else 0
        leads, staff = rest[:n_leads], rest[n_leads:]
        for i in leads:
            managers[i] = ids[head]
        for i in staff:
            managers[i] = ids[rng.choice(leads)]
    # top up to ~5 % without manager (e.g. vacancies, interim)
    want = round(n * NO_MANAGER_SHARE) - no_manager
    if want > 0:
        candidates = [i for i in range(n) if managers[i]]
        for i in rng.sample(candidates, min(want, len(candidates))):
            managers[i] = ""

    # start dates in 2026: mostly the 1st of a month, otherwise a weekday
    year_start = dt.date(2026, 1, 1)
    days_2026 = [year_start + dt.timedelta(days=k) for k in range(365)]
    firsts = [d for d in days_2026 if d.day == 1]
    weekdays = [d for d in days_2026 if d.weekday() < 5]
    starts = [rng.choice(firsts) if rng.random() < 0.7 else rng.choice(weekdays)
              for _ in range(n)]

    # end ("Homeoffice bis"): ~15 %, a few within the next weeks, none before ref
    ends: list[dt.date | None] = [None] * n
    n_end = round(n * END_SHARE)
    n_soon = min(n_end, max(1, round(n * END_SOON_SHARE))) if n_end else 0
    soon_from = ref + dt.timedelta(days=1)
    chosen = rng.sample(range(n), n_end)
    chosen.sort(key=lambda i: starts[i] > ref)   # stable: the "soon" ones have started
    for j, i in enumerate(chosen):
        if j < n_soon:
            end = soon_from + dt.timedelta(days=rng.randrange(42))
        else:
            # typically the end of a month in 2027
            month = rng.randrange(1, 13)
            nxt = dt.date(2027 + month // 12, month % 12 + 1, 1)
            end = nxt - dt.timedelta(days=1)
        if end <= starts[i]:
            end = starts[i] + dt.timedelta(days=rng.randrange(30, 181))
        ends[i] = end

    rows = []
    for i in range(n):
        given, family = names[i]
        rows.append([ids[i], given, family, emails[i], depts[i], locations[i], phones[i],
                     managers[i], starts[i].isoformat(),
                     ends[i].isoformat() if ends[i] else ""])
    return rows


# --------------------------------------------------------------------------- inventory

def gen_inventory(rng: Random, n: int) -> list[list[str]]:
    rows = []
    serials: set[str] = set()
    random = rng.random
    for kind, prefix, per_mille, models in INVENTORY:
        count = -(-n * per_mille // 1000)   # ceil, exact integer arithmetic
        m_names, m_cum = cumulative([(i, w) for i, (_, w, _) in enumerate(models)])
        picks = rng.choices(m_names, cum_weights=m_cum, k=count)
        fresh = [iter(serial_batch(rng, pattern, picks.count(i)))
                 for i, (_, _, pattern) in enumerate(models)]
        kind_serials = [next(fresh[m]) for m in picks]
        for k, serial in enumerate(kind_serials):
            if serial in serials:        # rare: draw a replacement
                pattern = models[picks[k]][2]
                while serial in serials:
                    serial = serial_batch(rng, pattern, 1)[0]
                kind_serials[k] = serial
            serials.add(serial)
        model_names = [m for m, _, _ in models]
        rows.extend([f"{prefix}-{k:06d}", serial, kind, model_names[m],
                     "repair" if random() < REPAIR_SHARE else "available"]
                    for k, serial, m in zip(range(1, count + 1), kind_serials, picks))
    return rows


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Generate a seeded staff list (and optional device stock list) "
                    "of the fictional Stadtverwaltung Musterstadt for homebase.",
        epilog="Example: %(prog)s --count 1200 --seed 2026 --out examples/staff.csv "
               "--inventory examples/inventory.csv")
    p.add_argument("--count", type=int, required=True, help="number of persons")
    p.add_argument("--seed", type=int, required=True, help="random seed (same seed, same output)")
    p.add_argument("--out", required=True, help="staff CSV to write ('-' for stdout)")
    p.add_argument("--inventory", metavar="FILE",
                   help="also write the device stock list CSV "
                        "(notebooks x1.03, monitors x0.92, headsets x0.92, rounded up)")
    p.add_argument("--start-id", type=int, default=100001,
                   help="first person number, ids are P + 6 digits (default: %(default)s)")
    p.add_argument("--reference-date", default=DEFAULT_REFERENCE_DATE, metavar="YYYY-MM-DD",
                   help="no end date lies on or before this day; a few lie in the weeks "
                        "after it (default: %(default)s)")
    a = p.parse_args(argv)

    if a.count < 1:
        p.error("--count must be at least 1")
    if a.start_id < 0 or a.start_id + a.count - 1 > 999999:
        p.error("ids must fit P + 6 digits: --start-id + --count - 1 <= 999999")
    try:
        ref = dt.date.fromisoformat(a.reference_date)
    except ValueError:
        p.error(f"--reference-date: not an ISO date: {a.reference_date!r}")

    gc.disable()   # only acyclic rows are built: skip the collector's repeated scans
    rng = Random(a.seed)
    staff = gen_staff(rng, a.count, a.start_id, ref)
    with open_out(a.out) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "given_name", "family_name", "email", "department", "location",
                    "phone", "manager", "start", "end"])
        w.writerows(staff)

    if a.inventory:
        inv = gen_inventory(Random(f"{a.seed}/inventory"), a.count)
        with open_out(a.inventory) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["asset_tag", "serial", "kind", "model", "status"])
            w.writerows(inv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
