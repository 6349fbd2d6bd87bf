"""About two hundred made-up leads for `manage.py demo`, the same every time.

Company domains are invented names on real public suffixes, so the normalizer accepts
them; none of these people exist.
"""

import random

FIRST_NAMES = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farah",
    "Gustav",
    "Hana",
    "Idris",
    "Julia",
    "Kenji",
    "Lena",
    "Marco",
    "Nadia",
    "Oscar",
    "Priya",
    "Quentin",
    "Rosa",
    "Samir",
    "Tess",
    "Umar",
    "Vera",
    "Wes",
    "Xenia",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Alvarez",
    "Becker",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Gallo",
    "Hughes",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Young",
    "Zimmer",
]
COMPANIES = [
    "acmeanalytics.com",
    "brightpipe.io",
    "cobaltcloud.com",
    "dunewave.co.uk",
    "emberlabs.io",
    "fjordsoft.no",
    "granitehq.com",
    "harborstack.com",
    "ironleaf.de",
    "junipersys.com",
    "kestrelai.com",
    "lumenforge.com",
    "mosaicdata.fr",
    "northwind-demo.com",
    "orbitpay.com",
    "pinecrest-demo.com",
    "quarryworks.com",
    "redwoodcrm.com",
    "saltbox.io",
    "tidalops.com",
]
WEBMAIL = ["gmail.com", "outlook.com", "yahoo.com"]


def demo_rows(count: int = 200, *, seed: int = 7) -> list[dict[str, str]]:
    """Return `count` CSV-like rows: most with a company domain, some without an email."""
    rng = random.Random(seed)
    rows = []
    seen = set()
    while len(rows) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(COMPANIES)
        if (first, last, domain) in seen:
            continue
        seen.add((first, last, domain))
        row = {"first_name": first, "last_name": last, "company_domain": domain}
        kind = rng.random()
        if kind < 0.45:
            row["email"] = f"{first}.{last}@{domain}".lower()
        elif kind < 0.52:
            row["email"] = f"{first}{last}{rng.randint(1, 99)}@{rng.choice(WEBMAIL)}".lower()
        elif kind < 0.55:
            row["email"] = f"info@{domain}"
            row["first_name"] = row["last_name"] = ""
        # The rest have no email: the leads Find Email is for.
        if rng.random() < 0.3:
            row["linkedin_url"] = f"https://www.linkedin.com/in/{first}-{last}-{len(rows)}".lower()
        rows.append(row)
    return rows
