"""Plausible placeholder values for the simulated provider's answers.

A simulated extraction must not look like a broken one: a field named `vendor` gets a
company name, `invoice_number` an invoice-like number, `*_date` a date, `total` an amount
of money; every free-text value says it is simulated. A classification prompt that names
its labels is answered with one of them. Chosen by field name only (the simulator never
reads the page), from the seeded generator, so answers stay deterministic per request.
"""

from __future__ import annotations

import datetime
import random
import re

PLACEHOLDER_MARK = " (simulated)"  # appended to free text: a placeholder, not a reading
_COMPANY_FIRST = ("Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Acme", "Litware",
                  "Tailspin", "Wingtip", "Adatum", "Proseware", "Woodgrove")  # fmt: skip
_COMPANY_KIND = ("Traders", "Logistics", "Office Supplies", "Print & Copy", "Foods",
                 "Engineering", "Consulting", "Hardware")  # fmt: skip
_COMPANY_FORM = ("Ltd.", "GmbH", "Inc.", "LLC", "S.A.", "B.V.")
_PEOPLE = ("Ana Silva", "James Miller", "Mei Chen", "Lukas Weber", "Priya Patel",
           "Sofia Rossi", "Omar Haddad", "Emma Dubois")  # fmt: skip
_STREETS = ("Harbor Road", "Maple Avenue", "Station Street", "Mill Lane", "Cedar Court")
_CITIES = ("Leeds", "Hamburg", "Lyon", "Austin", "Porto", "Utrecht")
_ITEMS = ("Printer paper A4", "Toner cartridge", "Freight charge", "Consulting hours",
          "Office chairs", "Maintenance plan")  # fmt: skip

_COMPANY = re.compile(r"vendor|supplier|seller|company|merchant|issuer|payee|customer|buyer|client")
_PERSON = re.compile(r"contact|person|signed|author|recipient|^name$|full_?name")
_NUMBERED = re.compile(r"number|_no$|^no$|_id$|^id$|reference|^ref|code")
_DATE = re.compile(r"date|_on$|^due$|issued|period")
_MONEY = re.compile(r"total|amount|price|sum|subtotal|tax|vat|net|gross|balance|cost|fee|due")
_QUANTITY = re.compile(r"quantity|qty|count|units")
_CURRENCY = re.compile(r"currency")
# The batch runner's classify prompt ("... exactly one of these labels and nothing else:
# a, b, c.") and similar wordings.
_LABELS = re.compile(r"one of (?:these|the following) (?:labels|categories)[^:]*:\s*(.+)", re.I)


def _key(hint: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", hint).lower()


def plausible_string(hint: str, rng: random.Random) -> str | None:
    """A believable value for a free-text field called `hint`, marked as simulated; None
    when the name says nothing about its content."""
    key = _key(hint)
    if not key:
        return None
    if _CURRENCY.search(key):
        return rng.choice(("USD", "EUR", "GBP"))  # a code: marking it would make it no code
    if _DATE.search(key):
        return plausible_date(rng)  # an ISO date, as a `format: date` field would hold
    if _COMPANY.search(key):
        value = (
            f"{rng.choice(_COMPANY_FIRST)} {rng.choice(_COMPANY_KIND)} {rng.choice(_COMPANY_FORM)}"
        )
    elif _PERSON.search(key):
        value = rng.choice(_PEOPLE)
    elif "invoice" in key or _NUMBERED.search(key):
        prefix = "INV" if "invoice" in key else "REF"
        value = f"{prefix}-{rng.randint(2024, 2026)}-{rng.randint(1000, 9999)}"
    elif "address" in key:
        value = f"{rng.randint(1, 240)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}"
    elif "description" in key or "item" in key or "product" in key:
        value = rng.choice(_ITEMS)
    else:
        return None
    return value + PLACEHOLDER_MARK


def plausible_date(rng: random.Random) -> str:
    return (datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randint(0, 330))).isoformat()


def money_like(hint: str) -> bool:
    return bool(_MONEY.search(_key(hint)))


def quantity_like(hint: str) -> bool:
    return bool(_QUANTITY.search(_key(hint)))


def requested_labels(text: str) -> list[str]:
    """The labels a classification prompt names, in order; [] when it names none."""
    match = _LABELS.search(text)
    if match is None:
        return []
    listed = match.group(1).strip().splitlines()[0].rstrip(".").strip()
    return [label.strip() for label in listed.split(",") if label.strip()]
