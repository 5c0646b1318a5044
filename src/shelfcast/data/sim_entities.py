"""Simulated items and stores: master data plus the hidden parameters that drive demand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.data.sim_config import SimConfig


@dataclass(frozen=True)
class Category:
    """A product category: its products (English, Arabic), price range and seasonality."""

    name: str
    products: tuple[tuple[str, str], ...]
    price_range: tuple[float, float]
    yearly_amplitude: float
    yearly_peak_doy: int
    # Log-demand change per degree of temperature anomaly.
    temperature_beta: float = 0.0


CATEGORIES: tuple[Category, ...] = (
    Category("beverages", (("Orange Juice", "عصير برتقال"), ("Mineral Water", "مياه معدنية"),
             ("Cola", "مشروب غازي"), ("Iced Tea", "شاي مثلج"), ("Mango Nectar", "عصير مانجو")),
             (0.5, 4.0), 0.30, 200, 0.03),
    Category("dairy", (("Fresh Milk", "حليب طازج"), ("Laban", "لبن"), ("Yogurt", "زبادي"),
             ("Cheddar Cheese", "جبنة شيدر"), ("Butter", "زبدة"), ("Labneh", "لبنة")),
             (0.8, 8.0), 0.06, 20),
    Category("bakery", (("Arabic Bread", "خبز عربي"), ("Croissant", "كرواسون"),
             ("Sliced Bread", "خبز شرائح"), ("Date Cookies", "معمول بالتمر")),
             (0.5, 5.0), 0.08, 350),
    Category("produce", (("Tomatoes", "طماطم"), ("Cucumbers", "خيار"), ("Bananas", "موز"),
             ("Apples", "تفاح"), ("Dates", "تمر"), ("Onions", "بصل")),
             (0.5, 6.0), 0.15, 170),
    Category("snacks", (("Potato Chips", "رقائق البطاطس"), ("Chocolate Bar", "لوح شوكولاتة"),
             ("Mixed Nuts", "مكسرات مشكلة"), ("Biscuits", "بسكويت")),
             (0.5, 6.0), 0.10, 340),
    Category("frozen", (("Ice Cream", "آيس كريم"), ("Frozen Chicken", "دجاج مجمد"),
             ("Frozen Vegetables", "خضار مجمدة"), ("Frozen Pizza", "بيتزا مجمدة")),
             (1.5, 15.0), 0.35, 205, 0.04),
    Category("household", (("Dish Soap", "سائل غسيل الصحون"), ("Laundry Detergent", "مسحوق غسيل"),
             ("Tissue Paper", "مناديل ورقية"), ("Trash Bags", "أكياس قمامة")),
             (1.0, 20.0), 0.05, 90),
    Category("personal_care", (("Shampoo", "شامبو"), ("Toothpaste", "معجون أسنان"),
             ("Soap Bar", "صابون"), ("Deodorant", "مزيل العرق")),
             (1.0, 15.0), 0.08, 180),
)  # fmt: skip

BRANDS: tuple[tuple[str, str], ...] = (
    ("Nura", "نورا"), ("Al Waha", "الواحة"), ("Sahara", "صحارى"), ("Bayt", "بيت"),
    ("Zahra", "زهرة"), ("Falcon", "فالكون"), ("Rimal", "رمال"), ("Noor", "نور"),
    ("Qamar", "قمر"), ("Oasis Farms", "مزارع الواحة"),
)  # fmt: skip
SIZES: tuple[tuple[str, str], ...] = (
    ("Small", "صغير"), ("Medium", "وسط"), ("Large", "كبير"), ("Family Pack", "عبوة عائلية"),
)  # fmt: skip
REGIONS = ("Central", "North", "South", "East", "West", "Coastal", "Highlands", "Desert")
STORE_TYPES = ("hyper", "super", "express")
_STORE_TYPE_NAMES = ("Hypermarket", "Supermarket", "Express")
_STORE_TYPE_PROBS = (0.2, 0.5, 0.3)
_STORE_TYPE_SIZE_SQM = (8000.0, 2500.0, 400.0)


@dataclass(frozen=True)
class Items:
    """The item master and each item's hidden demand parameters (arrays of length n_items)."""

    frame: pl.DataFrame
    category: np.ndarray
    base_demand: np.ndarray
    elasticity: np.ndarray
    dispersion: np.ndarray
    pack_size: np.ndarray
    base_price: np.ndarray


@dataclass(frozen=True)
class Stores:
    """The store master and each store's hidden parameters (arrays of length n_stores)."""

    frame: pl.DataFrame
    store_type: np.ndarray
    region: np.ndarray
    multiplier: np.ndarray
    lead_time: np.ndarray


def item_ids(n_items: int) -> list[str]:
    """Zero-padded, sortable item ids: I0001, I0002, ..."""
    width = max(4, len(str(n_items)))
    return [f"I{i:0{width}d}" for i in range(1, n_items + 1)]


def store_ids(n_stores: int) -> list[str]:
    """Zero-padded, sortable store ids: S001, S002, ..."""
    width = max(3, len(str(n_stores)))
    return [f"S{i:0{width}d}" for i in range(1, n_stores + 1)]


def make_items(config: SimConfig, rng: np.random.Generator) -> Items:
    """Draw the items: category, brand, names, price, velocity and noise level."""
    n = config.n_items
    category = rng.integers(0, len(CATEGORIES), size=n)
    # Log-uniform velocity: a long tail of slow movers and a few very fast ones.
    lo, hi = np.log(config.min_base_demand), np.log(config.max_base_demand)
    base_demand = np.exp(rng.uniform(lo, hi, size=n))
    elasticity = rng.uniform(-2.8, -1.0, size=n)
    # Gamma shape of the Poisson-gamma noise: smaller = burstier days.
    dispersion = rng.uniform(1.5, 8.0, size=n)
    pack_size = np.select([base_demand < 1, base_demand < 10, base_demand < 40], [1, 6, 12], 24)
    price_lo = np.array([c.price_range[0] for c in CATEGORIES])[category]
    price_hi = np.array([c.price_range[1] for c in CATEGORIES])[category]
    raw_price = np.exp(rng.uniform(np.log(price_lo), np.log(price_hi)))
    # Shelf prices end in 9 (3.49, 12.99).
    base_price = np.maximum(np.round(np.ceil(raw_price * 10) / 10 - 0.01, 2), 0.09)
    brand = rng.integers(0, len(BRANDS), size=n)
    size = rng.integers(0, len(SIZES), size=n)
    product = [CATEGORIES[c].products[rng.integers(0, len(CATEGORIES[c].products))] for c in category]
    frame = pl.DataFrame(
        {
            "item_id": item_ids(n),
            "category": [CATEGORIES[c].name for c in category],
            "brand": [BRANDS[b][0] for b in brand],
            "name_en": [f"{BRANDS[b][0]} {p[0]} {SIZES[s][0]}" for b, p, s in zip(brand, product, size, strict=True)],
            "name_ar": [f"{p[1]} {BRANDS[b][1]} {SIZES[s][1]}" for b, p, s in zip(brand, product, size, strict=True)],
            "base_price": base_price,
            "pack_size": pack_size.astype(np.int64),
        }
    )
    return Items(frame, category, base_demand, elasticity, dispersion, pack_size.astype(np.int64), base_price)


def make_stores(config: SimConfig, rng: np.random.Generator) -> Stores:
    """Draw the stores: type, floor area, region, opening date and supplier lead time."""
    n = config.n_stores
    store_type = rng.choice(len(STORE_TYPES), size=n, p=_STORE_TYPE_PROBS)
    size = np.round(np.array(_STORE_TYPE_SIZE_SQM)[store_type] * rng.lognormal(0.0, 0.25, size=n), -1)
    # Bigger stores sell more, but less than in proportion to their floor area.
    multiplier = (size / 2500.0) ** 0.6 * rng.lognormal(0.0, 0.15, size=n)
    # Round-robin then shuffle, so every region has a store when there are enough.
    region = rng.permutation(np.arange(n) % config.n_regions)
    lead_time = rng.integers(config.min_lead_time_days, config.max_lead_time_days + 1, size=n)
    age_days = rng.integers(90, 20 * 365, size=n)
    opening = [config.start_date - dt.timedelta(days=int(a)) for a in age_days]
    ids = store_ids(n)
    frame = pl.DataFrame(
        {
            "store_id": ids,
            "name": [
                f"{REGIONS[r]} {_STORE_TYPE_NAMES[t]} {k + 1:02d}"
                for k, (r, t) in enumerate(zip(region, store_type, strict=True))
            ],
            "type": [STORE_TYPES[t] for t in store_type],
            "size": size.astype(np.float64),
            "region": [REGIONS[r] for r in region],
            "opening_date": pl.Series(opening, dtype=pl.Date),
            "lead_time_days": lead_time.astype(np.int64),
        }
    )
    return Stores(frame, store_type, region, multiplier, lead_time.astype(np.int64))
