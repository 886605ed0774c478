"""A synthetic catalog shaped like the public catalog of tracked objects, for benchmarks and tests.

``synthetic_catalog(n, epoch_utc, seed)`` returns n element sets drawn (deterministically for a
seed) from the classes below, in roughly the proportions of the ~30,000 objects tracked on orbit
today: mostly LEO (broadband shells, sun-synchronous satellites, the debris clouds at 65-99°,
crewed-station altitudes), then GEO (with the old, inclined ones and the graveyard), HEO
(transfer orbits, Molniya, Tundra) and MEO (the navigation constellations). Angles along the orbit
are uniform; eccentricities, inclinations and heights are spread around each class's values. LEO
objects get a B* drag term typical of their height (a day of it moves them by a few km, as in
reality); high orbits get none. Nothing here is a real object.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import NamedTuple

import numpy as np

from .elements import Elements, make_elements
from .timescale import as_utc

__all__ = ["CATALOG_CLASSES", "OrbitClass", "synthetic_catalog"]

_MU_KM3_S2 = 398600.8  # WGS72, as SGP4
_RE_KM = 6378.135


class OrbitClass(NamedTuple):
    """One family of orbits: its share of the catalog and the ranges its elements are drawn from
    (uniformly, except where a range has equal ends). Heights are above the WGS72 radius."""

    name: str
    share: float
    perigee_km: tuple[float, float]
    apogee_km: tuple[float, float]  # drawn as perigee + this much more (km)
    inc_deg: tuple[float, float]
    argp_deg: tuple[float, float] = (0.0, 360.0)
    bstar: tuple[float, float] = (0.0, 0.0)


CATALOG_CLASSES: tuple[OrbitClass, ...] = (
    # LEO, ~78 %
    OrbitClass("SHELL53", 0.15, (540.0, 560.0), (0.0, 2.0), (53.0, 53.2), bstar=(1e-5, 2e-4)),
    OrbitClass("SHELL43", 0.05, (525.0, 535.0), (0.0, 2.0), (43.0, 43.1), bstar=(1e-5, 2e-4)),
    OrbitClass("SHELL70", 0.03, (565.0, 575.0), (0.0, 2.0), (70.0, 70.1), bstar=(1e-5, 2e-4)),
    OrbitClass("SHELL97", 0.03, (555.0, 565.0), (0.0, 2.0), (97.6, 97.7), bstar=(1e-5, 2e-4)),
    OrbitClass("POLAR1200", 0.02, (1195.0, 1205.0), (0.0, 2.0), (87.9, 87.9), bstar=(0.0, 1e-5)),
    OrbitClass("SSO", 0.12, (480.0, 850.0), (0.0, 20.0), (97.0, 99.0), bstar=(1e-5, 3e-4)),
    OrbitClass("CREWED", 0.02, (390.0, 430.0), (0.0, 10.0), (41.5, 51.7), bstar=(1e-4, 5e-4)),
    OrbitClass("DEBRIS65", 0.05, (600.0, 1500.0), (0.0, 400.0), (64.5, 66.0), bstar=(1e-5, 5e-4)),
    OrbitClass("DEBRIS74", 0.06, (650.0, 1500.0), (0.0, 400.0), (73.5, 74.2), bstar=(1e-5, 5e-4)),
    OrbitClass("DEBRIS82", 0.06, (700.0, 1000.0), (0.0, 300.0), (82.4, 83.1), bstar=(1e-5, 5e-4)),
    OrbitClass("DEBRIS98", 0.12, (600.0, 1200.0), (0.0, 600.0), (98.0, 99.6), bstar=(1e-5, 5e-4)),
    OrbitClass("LEO", 0.07, (350.0, 2000.0), (0.0, 1500.0), (0.0, 110.0), bstar=(1e-5, 5e-4)),
    # MEO, ~4 %: navigation constellations (GPS, GLONASS, Galileo, BeiDou) and their stages
    OrbitClass("NAV55", 0.02, (19900.0, 20300.0), (0.0, 400.0), (54.0, 56.5)),
    OrbitClass("NAV65", 0.01, (18900.0, 19200.0), (0.0, 200.0), (64.0, 65.5)),
    OrbitClass("NAV56", 0.01, (23150.0, 23300.0), (0.0, 150.0), (55.5, 57.0)),
    # GEO, ~9 %: operational, old and inclined, graveyard
    OrbitClass("GEO", 0.05, (35770.0, 35800.0), (0.0, 30.0), (0.0, 0.1)),
    OrbitClass("GEO-INCLINED", 0.02, (35700.0, 35850.0), (0.0, 150.0), (0.1, 15.0)),
    OrbitClass("GEO-GRAVEYARD", 0.02, (35950.0, 36300.0), (0.0, 200.0), (0.0, 15.0)),
    # HEO, ~9 %: transfer orbits and their stages, Molniya, Tundra
    OrbitClass("GTO", 0.06, (180.0, 700.0), (34000.0, 35800.0), (0.0, 28.5)),
    OrbitClass("MOLNIYA", 0.02, (500.0, 1500.0), (37500.0, 39500.0), (62.8, 64.0), (260.0, 290.0)),
    OrbitClass(
        "TUNDRA", 0.01, (24000.0, 26000.0), (21000.0, 24000.0), (62.0, 64.0), (260.0, 280.0)
    ),
)


def synthetic_catalog(
    n: int, epoch_utc: datetime, seed: int = 20261203, *, first_norad_id: int = 10000
) -> list[Elements]:
    """n element sets at ``epoch_utc``, the same ones for the same (n, seed). Classes get
    round(share × n) objects (the largest class takes the rounding remainder), in the order of
    CATALOG_CLASSES; names are ``{class}-{k}`` and NORAD ids count up from ``first_norad_id``."""
    epoch = as_utc(epoch_utc, "epoch_utc")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    counts = [round(c.share * n) for c in CATALOG_CLASSES]
    biggest = max(range(len(counts)), key=lambda i: CATALOG_CLASSES[i].share)
    counts[biggest] += n - sum(counts)
    while counts[biggest] < 0:  # tiny n: take the excess from the other classes
        donor = max(range(len(counts)), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[biggest] += 1
    rng = np.random.default_rng(seed)
    out: list[Elements] = []
    for cls, count in zip(CATALOG_CLASSES, counts, strict=True):
        for k in range(count):
            perigee = rng.uniform(*cls.perigee_km)
            apogee = perigee + rng.uniform(*cls.apogee_km)
            a_km = _RE_KM + 0.5 * (perigee + apogee)
            ecc = (apogee - perigee) / (2.0 * a_km)
            mean_motion = math.sqrt(_MU_KM3_S2 / a_km**3) * 86400.0 / (2.0 * math.pi)
            out.append(
                make_elements(
                    norad_id=first_norad_id + len(out),
                    epoch_utc=epoch,
                    inclination_deg=rng.uniform(*cls.inc_deg),
                    raan_deg=rng.uniform(0.0, 360.0),
                    eccentricity=ecc,
                    arg_perigee_deg=rng.uniform(*cls.argp_deg),
                    mean_anomaly_deg=rng.uniform(0.0, 360.0),
                    mean_motion_rev_day=mean_motion,
                    bstar_per_earth_radius=rng.uniform(*cls.bstar),
                    name=f"{cls.name}-{k + 1}",
                )
            )
    return out
