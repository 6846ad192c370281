"""Which paper a letter is printed on: US Letter in the countries that use it, A4 everywhere else.

The paper decides the envelope (#10 window for Letter, C5/DL window per DIN 5008 for A4) and so where
the address goes; the positions themselves are in templates/_base/letter/letter.css.
"""

from __future__ import annotations

# ISO 3166 codes of countries where US Letter is the usual office paper (North America, much of Central
# America and the Caribbean, Colombia, Venezuela, Chile and the Philippines).
LETTER_COUNTRIES = frozenset({
    "US", "CA", "MX", "PR", "GU", "VI", "AS", "MP", "UM", "BZ", "CR", "SV", "GT", "HN", "NI", "PA", "DO",
    "CU", "CO", "VE", "CL", "PH",
})

A4 = "A4"
LETTER = "Letter"
CSS_CLASS = {A4: "a4", LETTER: "us"}
# Page size in PDF points, as pdfinfo reports it.
POINTS = {A4: (595.28, 841.89), LETTER: (612.0, 792.0)}


def paper_for(country: str | None) -> str:
    """'Letter' for US, CA, MX and the other Letter countries, else 'A4'."""
    return LETTER if (country or "").upper() in LETTER_COUNTRIES else A4
