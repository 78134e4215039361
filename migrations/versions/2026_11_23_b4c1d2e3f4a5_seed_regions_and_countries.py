"""seed regions and countries (data; admins edit them afterwards)

Revision ID: b4c1d2e3f4a5
Revises: 6337130dc2bb
Create Date: 2026-11-23 10:55:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b4c1d2e3f4a5'
down_revision: str | None = '6337130dc2bb'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the data at the time of writing: later edits are the admins', not code's.
REGIONS = [
    ("east_africa", "East Africa"),
    ("south_central_asia", "South & Central Asia"),
    ("middle_east", "Middle East"),
    ("western_balkans", "Western Balkans"),
    ("eastern_europe_post_soviet", "Eastern Europe & Post-Soviet States"),
    ("latin_america_caribbean", "Latin America & the Caribbean"),
    ("east_asia", "East Asia"),
]

COUNTRIES = {
    "east_africa": [
        ("ER", "Eritrea"), ("SD", "Sudan"), ("SS", "South Sudan"), ("SO", "Somalia"),
        ("ET", "Ethiopia"), ("DJ", "Djibouti"), ("KE", "Kenya"), ("UG", "Uganda"),
    ],
    "south_central_asia": [
        ("PK", "Pakistan"), ("AF", "Afghanistan"), ("BD", "Bangladesh"), ("IN", "India"),
        ("NP", "Nepal"), ("LK", "Sri Lanka"), ("BT", "Bhutan"),
    ],
    "middle_east": [
        ("SY", "Syria"), ("IQ", "Iraq"), ("YE", "Yemen"), ("IR", "Iran"),
        ("SA", "Saudi Arabia"), ("LB", "Lebanon"), ("JO", "Jordan"), ("PS", "Palestine"),
    ],
    "western_balkans": [
        ("AL", "Albania"), ("XK", "Kosovo"), ("MK", "North Macedonia"), ("RS", "Serbia"),
        ("BA", "Bosnia and Herzegovina"),
    ],
    "eastern_europe_post_soviet": [
        ("RU", "Russia"), ("UA", "Ukraine"), ("BY", "Belarus"), ("MD", "Moldova"),
        ("GE", "Georgia"), ("AM", "Armenia"), ("AZ", "Azerbaijan"), ("KZ", "Kazakhstan"),
        ("KG", "Kyrgyzstan"), ("UZ", "Uzbekistan"), ("TM", "Turkmenistan"),
        ("TJ", "Tajikistan"),
    ],
    "latin_america_caribbean": [
        ("VE", "Venezuela"), ("CU", "Cuba"), ("NI", "Nicaragua"), ("MX", "Mexico"),
        ("GT", "Guatemala"), ("HN", "Honduras"), ("SV", "El Salvador"), ("HT", "Haiti"),
        ("CO", "Colombia"), ("PE", "Peru"), ("BO", "Bolivia"), ("BR", "Brazil"),
        ("DO", "Dominican Republic"),
    ],
    "east_asia": [
        ("CN", "China"), ("KP", "North Korea"), ("MN", "Mongolia"), ("VN", "Vietnam"),
        ("MM", "Myanmar"),
    ],
}

PROFILES = {
    "KG": {
        "civic_space_rating": "repressed",
        "rating_date": "2023-12",
        "rating_source": "CIVICUS Monitor",
        "staff_notes": "Downgraded to 'repressed' in December 2023; added to the CIVICUS "
        "Monitor watchlist in March 2024.",
    },
}


def upgrade() -> None:
    regions = sa.table("regions", sa.column("code", sa.String), sa.column("name", sa.String))
    countries = sa.table(
        "countries",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("region_code", sa.String),
        sa.column("civic_space_rating", sa.String),
        sa.column("rating_date", sa.String),
        sa.column("rating_source", sa.String),
        sa.column("staff_notes", sa.Text),
    )
    op.bulk_insert(regions, [{"code": c, "name": n} for c, n in REGIONS])
    rows = []
    for region, members in COUNTRIES.items():
        for code, name in members:
            row = {
                "code": code,
                "name": name,
                "region_code": region,
                "civic_space_rating": None,
                "rating_date": None,
                "rating_source": None,
                "staff_notes": None,
            }
            row.update(PROFILES.get(code, {}))
            rows.append(row)
    op.bulk_insert(countries, rows)


def downgrade() -> None:
    codes = [code for members in COUNTRIES.values() for code, _ in members]
    op.execute(
        sa.text("DELETE FROM countries WHERE code IN :codes").bindparams(
            sa.bindparam("codes", codes, expanding=True)
        )
    )
    op.execute(
        sa.text("DELETE FROM regions WHERE code IN :codes").bindparams(
            sa.bindparam("codes", [c for c, _ in REGIONS], expanding=True)
        )
    )
