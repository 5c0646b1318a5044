"""The online store: per series, the recent daily history the features read, kept in Redis by live events.

Layout (prefix `P` = the `live.prefix` setting; `SID` = `len(store_id):store_id:item_id`, unambiguous whatever
the ids hold):

- `P:s:SID` (hash): per day `D` (ISO date) of the series, a field `d:D` packing the day's figures as text,
  `n,u,rv,pu,ps,pn,pm,oh,ss,q,ot` (empty = none; see `DAY_PARTS`): sale events, units sold, revenue of priced
  sales (units x price), units of priced sales, sum and count of prices, promo max, on hand and safety stock of
  the day's latest count, units received, and that count's order key (`order_key`: time as sent, then event id);
  and for the series: `loh` / `lss` / `lt` the latest count of all (on hand, safety stock, order key), `upd` the
  last update (ms since epoch, Redis clock). One field per day keeps an event's update to one read and one write.
- `P:a:SID` (sorted set, by text): the sales and receipts after the series' latest count (by `order_key`), as
  `<order key><0x1f><-units or +quantity>`; a newer count removes those before it. `stock_now` reads it: the count
  minus the units sold after it plus the units received after it, whatever order the events arrived in. A series
  never counted has none.
- `P:d:SID` (sorted set): the series' days, scored by their ordinal; days more than `history_days` before the
  series' latest day are trimmed (their `d:D` fields with them).
- `P:seen:D` (set): event ids applied for day `D`; it expires `dedup_days` after the last id was added.
- `P:stores`, `P:items`, `P:series` (sets): the known ids, and SIDs.
- `P:stats` (hash): `read`, `applied`, `duplicates`, `dead` (read = applied + duplicates + dead), `first_ms`,
  `last_ms` (first and last apply, Redis clock), `maxday` (the latest day any event fell on, its ordinal) and
  `closed_changes` (applied events on an earlier day than the latest seen then): a reader of closed days knows
  from these two whether they changed.
- `P:meta` (hash): `layout` (`LAYOUT_VERSION`), `history_days`, `seeded_at` (ISO UTC), `seeded_through` (day);
  compaction (`jobs.stream`) adds `seeded_into`, `compacted_through`, `compacted_at`, `compacted_into`, and keeps
  `P:compacted` (hash: day -> digest of the rows written into the lake).

Writes happen in one place, `OnlineStore.apply`: a Lua script (registered once) applying a whole batch of events,
writing the batch's dead letters, updating the stats and acknowledging the batch's stream entries, all atomically.
An event whose id is already in its day's seen set counts as a duplicate and changes nothing, which makes a
re-delivered entry harmless: delivery is at least once, the effect exactly once. An event whose keys hold another
Redis type (a poison entry) is skipped, not acknowledged, and reported, so it is re-delivered until the consumer
dead-letters it at the delivery limit. A day's price is the units-weighted average of its priced sales (the
price itself for one sale; the plain average when every priced sale sold 0 units).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import redis

from shelfcast.events import EventModel, SaleEvent, StockCountEvent
from shelfcast.io.stream import connect
from shelfcast.settings import Settings

LAYOUT_VERSION = "1"
DAY_PARTS = ("n", "u", "rv", "pu", "ps", "pn", "pm", "oh", "ss", "q", "ot")
"""The parts of a day's packed value, in order."""
_EVENT_ARGS = 12
_DEAD_ARGS = 5
SEED_ORDER = "~seed"  # sorts after any time: a seeded day's count is its end-of-day count

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "store_id": pl.String(),
    "item_id": pl.String(),
    "units": pl.Float64(),
    "price": pl.Float64(),
    "promo": pl.Int8(),
    "revenue": pl.Float64(),
    "on_hand": pl.Float64(),
    "safety_stock": pl.Float64(),
    "quantity": pl.Float64(),
}
"""Columns of `series_history`: a day per row; sales columns (units, price, promo, revenue) null on days with no
sale event, inventory columns (on_hand, safety_stock) null with no count, `quantity` (receipts) null with none."""

_APPLY = r"""
local prefix = ARGV[1]
local history = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local n_events = tonumber(ARGV[4])
local n_letters = tonumber(ARGV[5])
local group = ARGV[6]
local consumer = ARGV[7]
local dead_maxlen = ARGV[8]
local stream = prefix .. ':events'
local stats = prefix .. ':stats'
local now = redis.call('TIME')
local now_ms = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))

local type_ok, is_new = {}, {}
local function fits(key, want)
  local ok = type_ok[key]
  if ok == nil then
    local t = redis.call('TYPE', key)['ok']
    ok = (t == 'none' or t == want)
    type_ok[key] = ok
    is_new[key] = (t == 'none')
  end
  return ok
end

-- Only entries still pending under this consumer are handled, so calling the script again with the same batch
-- (after a lost reply) or with entries another worker claimed meanwhile changes nothing and counts nothing.
-- One XPENDING per batch, over the range of its entry ids (given first to last by the caller, ARGV[9], ARGV[10]).
local pending = nil
local function mine(entry)
  if entry == '' or group == '' then return true end
  if pending == nil then
    pending = {}
    local rows = redis.call('XPENDING', stream, group, ARGV[9], ARGV[10], tonumber(ARGV[11]), consumer)
    for _, row in ipairs(rows) do pending[row[1]] = true end
  end
  return pending[entry] == true
end

-- A day's value: n,u,rv,pu,ps,pn,pm,oh,ss,q,ot (ot last: it holds the event id, which may hold commas).
local function unpack_day(text)
  local r = {}
  if not text then return r end
  local pos = 1
  for i = 1, 10 do
    local comma = string.find(text, ',', pos, true)
    local part = string.sub(text, pos, comma - 1)
    if part ~= '' then r[i] = tonumber(part) end
    pos = comma + 1
  end
  local ot = string.sub(text, pos)
  if ot ~= '' then r[11] = ot end
  return r
end
local function num(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end
local function pack_day(r)
  local parts = {}
  for i = 1, 10 do parts[i] = num(r[i]) end
  parts[11] = r[11] or ''
  return table.concat(parts, ',')
end

local applied, duplicates, poison, n_dead = 0, 0, {}, 0
-- The latest day any event fell on, and how many applied events fell on an earlier day (a closed day changed).
local maxday = tonumber(redis.call('HGET', stats, 'maxday') or '0')
local old_maxday, closed = maxday, 0
local touched, seen_keys, acks, days, order = {}, {}, {}, {}, {}
local base = 11
for i = 0, n_events - 1 do
  local o = base + i * 12
  local entry, kind, id, day, dayno = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local tkey, store, item = ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  local a, b, c, d = ARGV[o + 9], ARGV[o + 10], ARGV[o + 11], ARGV[o + 12]
  local sid = string.len(store) .. ':' .. store .. ':' .. item
  local hkey = prefix .. ':s:' .. sid
  local zkey = prefix .. ':d:' .. sid
  local seen = prefix .. ':seen:' .. day
  if not mine(entry) then
    -- handled already (a retried call whose reply was lost) or claimed by another worker: theirs to count
  elseif not (fits(hkey, 'hash') and fits(seen, 'set')) then
    if entry ~= '' then poison[#poison + 1] = entry end
  else
    if entry ~= '' then acks[#acks + 1] = entry end
    if redis.call('SADD', seen, id) == 0 then
      duplicates = duplicates + 1
    else
      seen_keys[seen] = true
      applied = applied + 1
      local no = tonumber(dayno)
      if no > maxday then maxday = no elseif no < maxday then closed = closed + 1 end
      local dkey = hkey .. '\0' .. day
      local r = days[dkey]
      if r == nil then
        r = unpack_day(redis.call('HGET', hkey, 'd:' .. day))
        days[dkey] = r
        order[#order + 1] = {hkey, zkey, day, dayno, dkey}
      end
      if kind ~= 'stock' then
        -- A sale or receipt after the series' latest count so far moves its stock now (`P:a:SID`, see the doc).
        local t = touched[sid]
        if t == nil then t = {store, item, hkey, zkey}; touched[sid] = t end
        if t[5] == nil then t[5] = redis.call('HGET', hkey, 'lt') or '' end
        local akey = prefix .. ':a:' .. sid
        if t[5] ~= '' and tkey > t[5] and fits(akey, 'zset') then
          local sign = (kind == 'sale') and '-' or '+'
          redis.call('ZADD', akey, 0, tkey .. '\31' .. sign .. a)
        end
      end
      if kind == 'sale' then
        local units = tonumber(a)
        r[1] = (r[1] or 0) + 1
        r[2] = (r[2] or 0) + units
        if b ~= '' then
          r[3] = (r[3] or 0) + tonumber(d)
          r[4] = (r[4] or 0) + units
          r[5] = (r[5] or 0) + tonumber(b)
          r[6] = (r[6] or 0) + 1
        end
        if c ~= '' and (r[7] == nil or tonumber(c) > r[7]) then r[7] = tonumber(c) end
      elseif kind == 'stock' then
        if r[11] == nil or tkey > r[11] then
          r[11] = tkey
          r[8] = tonumber(a)
          if b ~= '' then r[9] = tonumber(b) else r[9] = nil end
        end
        local t = touched[sid]
        if t == nil then t = {store, item, hkey, zkey}; touched[sid] = t end
        if t[5] == nil then t[5] = redis.call('HGET', hkey, 'lt') or '' end
        if tkey > t[5] then t[5] = tkey; t[6] = a; t[7] = b end
      else
        r[10] = (r[10] or 0) + tonumber(a)
      end
      local t = touched[sid]
      if t == nil then t = {store, item, hkey, zkey}; touched[sid] = t end
      local no = tonumber(dayno)
      if t[8] == nil or no > t[8] then t[8] = no end
    end
  end
end

for _, w in ipairs(order) do
  redis.call('HSET', w[1], 'd:' .. w[3], pack_day(days[w[5]]))
  redis.call('ZADD', w[2], w[4], w[3])
end
for seen, _ in pairs(seen_keys) do redis.call('EXPIRE', seen, ttl) end
for sid, t in pairs(touched) do
  local hkey, zkey = t[3], t[4]
  if t[6] ~= nil then
    redis.call('HSET', hkey, 'upd', now_ms, 'lt', t[5], 'loh', t[6])
    -- What the new latest count already holds no longer moves the stock after it.
    redis.call('ZREMRANGEBYLEX', prefix .. ':a:' .. sid, '-', '(' .. t[5])
    if t[7] ~= '' then redis.call('HSET', hkey, 'lss', t[7]) else redis.call('HDEL', hkey, 'lss') end
  else
    redis.call('HSET', hkey, 'upd', now_ms)
  end
  if is_new[hkey] then
    redis.call('SADD', prefix .. ':series', sid)
    redis.call('SADD', prefix .. ':stores', t[1])
    redis.call('SADD', prefix .. ':items', t[2])
  end
  -- Days up to (the batch's latest day of the series - history) go; never more than the series' own window.
  local cutoff = t[8] - history
  local oldest = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if oldest[2] and tonumber(oldest[2]) <= cutoff then
    local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', cutoff)
    for _, day in ipairs(old) do redis.call('HDEL', hkey, 'd:' .. day) end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cutoff)
  end
end

local o = base + n_events * 12
for i = 0, n_letters - 1 do
  local p = o + i * 5
  if mine(ARGV[p + 1]) then
  n_dead = n_dead + 1
  redis.call('XADD', prefix .. ':dead', 'MAXLEN', '~', dead_maxlen, '*',
    'entry_id', ARGV[p + 1], 'rule', ARGV[p + 2], 'field', ARGV[p + 3], 'detail', ARGV[p + 4],
    'raw', ARGV[p + 5], 'consumer', consumer)
  if ARGV[p + 1] ~= '' then acks[#acks + 1] = ARGV[p + 1] end
  end
end
for i = o + n_letters * 5 + 1, #ARGV do acks[#acks + 1] = ARGV[i] end
if group ~= '' then
  for i = 1, #acks, 500 do
    redis.call('XACK', stream, group, unpack(acks, i, math.min(i + 499, #acks)))
  end
end
local read = applied + duplicates + n_dead
if maxday > old_maxday then redis.call('HSET', stats, 'maxday', maxday) end
if closed > 0 then redis.call('HINCRBY', stats, 'closed_changes', closed) end
if read > 0 then
  redis.call('HINCRBY', stats, 'read', read)
  redis.call('HINCRBY', stats, 'applied', applied)
  redis.call('HINCRBY', stats, 'duplicates', duplicates)
  redis.call('HINCRBY', stats, 'dead', n_dead)
  redis.call('HSETNX', stats, 'first_ms', now_ms)
  redis.call('HSET', stats, 'last_ms', now_ms)
end
return {applied, duplicates, n_dead, poison}
"""


@dataclass(frozen=True)
class DeadLetter:
    """An entry that will not be applied: its stream id, the rule broken, the field, a detail and the raw fields
    (JSON text)."""

    entry_id: str
    rule: str
    field: str
    detail: str
    raw: str


@dataclass(frozen=True)
class ApplyResult:
    """What one `apply` did: events applied, duplicates skipped, dead letters written, and the stream ids of
    poison entries (not applied, not acknowledged)."""

    applied: int
    duplicates: int
    dead: int
    poison: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Stats:
    """The store's counters since it was created (or reset); `read` = applied + duplicates + dead."""

    read: int = 0
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    latest_day: dt.date | None = None  # the latest day any applied event fell on
    closed_changes: int = 0  # applied events that fell on a day before the latest day seen then (late events)

    @property
    def events_per_second(self) -> float | None:
        """Entries handled per second between the first and the last apply (None before two applies apart)."""
        if self.first_ms is None or self.last_ms is None or self.last_ms <= self.first_ms:
            return None
        return self.read / ((self.last_ms - self.first_ms) / 1000)


@dataclass(frozen=True)
class StoreMeta:
    """What a reader needs to tell a usable store from a stale one: the layout version (None: never written),
    when and through which day it was seeded, the history it keeps, and the last applied event (Redis clock)."""

    layout: str | None
    history_days: int | None
    seeded_at: dt.datetime | None
    seeded_through: dt.date | None
    last_applied_at: dt.datetime | None

    @property
    def compatible(self) -> bool:
        return self.layout == LAYOUT_VERSION

    def fresh(self, now: dt.datetime, max_age: dt.timedelta) -> bool:
        """True when the store has this layout and was updated (seeded or applied) within `max_age` of `now`."""
        times = [t for t in (self.seeded_at, self.last_applied_at) if t is not None]
        return self.compatible and bool(times) and now - max(times) <= max_age


@dataclass(frozen=True)
class Totals:
    units: float = 0.0
    revenue: float = 0.0


@dataclass(frozen=True)
class Buckets:
    """A series' running totals for the dashboard: today, this week (from Monday) and this month (from the 1st),
    the latest stock count (its on hand, safety stock and order key `<time as sent>|<event id>`), and the
    last update (Redis clock)."""

    store_id: str
    item_id: str
    today: Totals
    week: Totals
    month: Totals
    last_on_hand: float | None
    last_safety_stock: float | None
    last_count: str | None
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class StockNow:
    """A series' latest count (`on_hand`, its `order_key`), its stock now after the sales and receipts that came
    after it (`after` of them, the latest at `last_event_key`), and its last update (ms, Redis clock). None where
    the series was never counted."""

    on_hand: float | None
    count_key: str | None
    now: float | None
    after: int
    last_event_key: str | None
    updated_ms: int | None


def series_id(store_id: str, item_id: str) -> str:
    """The store's name of a series (`len(store_id):store_id:item_id`)."""
    return f"{len(store_id)}:{store_id}:{item_id}"


def split_series_id(sid: str) -> tuple[str, str]:
    length, _, rest = sid.partition(":")
    n = int(length)
    return rest[:n], rest[n + 1 :]


def order_key(event: EventModel) -> str:
    """How counts of one day are ordered: the time as sent (without offset, fixed width), then the event id."""
    return f"{event.time.replace(tzinfo=None).isoformat(timespec='microseconds')}|{event.event_id}"


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class OnlineStore:
    """The online store under one prefix; see the module's doc for the layout and guarantees."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        history_days: int = 366,
        dedup_days: int = 7,
        dead_max_len: int = 1_000_000,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.history_days = history_days
        self.dedup_days = dedup_days
        self.dead_max_len = dead_max_len
        self._apply = client.register_script(_APPLY)  # sent once; re-sent by redis-py after a restart (NOSCRIPT)

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> OnlineStore:
        """The store of `settings.live` on `settings.redis_url` (or `client`); nothing is sent until first used."""
        cfg = settings.live
        return cls(
            client if client is not None else connect(settings.redis_url),
            cfg.prefix,
            history_days=cfg.history_days,
            dedup_days=cfg.dedup_days,
            dead_max_len=cfg.max_len,
        )

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- writing -----------------------------------------------------------------------------------------------
    def apply(
        self,
        events: Sequence[tuple[bytes | str, EventModel]] | Sequence[EventModel],
        dead: Sequence[DeadLetter] = (),
        *,
        group: str = "",
        consumer: str = "",
        ack: Sequence[bytes | str] = (),
    ) -> ApplyResult:
        """Apply a batch in one atomic step: each event (with the stream id of its entry, or bare) unless its id
        was applied before; the dead letters written to `P:dead`; the stats updated; and with `group` the entries
        of the applied, duplicate and dead events acknowledged, plus the ids in `ack` (entries the caller handled
        otherwise). Events are applied in the given order."""
        args: list[str | bytes] = [
            self.prefix,
            str(self.history_days),
            str(self.dedup_days * 86_400),
            str(len(events)),
            str(len(dead)),
            group,
            consumer,
            str(self.dead_max_len),
            *_id_range([e[0] for e in events if isinstance(e, tuple)] + [d.entry_id for d in dead]),
        ]
        for item in events:
            entry, event = item if isinstance(item, tuple) else ("", item)
            day = event.time.date()
            common = [entry, event.type, event.event_id, day.isoformat(), str(day.toordinal())]
            if isinstance(event, SaleEvent):
                revenue = None if event.price is None else event.units * event.price
                promo = "" if event.promo is None else str(event.promo)
                payload = [_num(event.units), _num(event.price), promo, _num(revenue)]
            elif isinstance(event, StockCountEvent):
                payload = [_num(event.on_hand), _num(event.safety_stock), "", ""]
            else:
                payload = [_num(event.quantity), "", "", ""]
            args += [*common, order_key(event), event.store_id, event.item_id, *payload]
        for letter in dead:
            args += [letter.entry_id, letter.rule, letter.field, letter.detail, letter.raw]
        args += list(ack)
        applied, duplicates, n_dead, poison = self._apply(keys=[], args=args)
        return ApplyResult(int(applied), int(duplicates), int(n_dead), tuple(bytes(p) for p in poison))

    def seed(
        self,
        sales: pl.DataFrame | None,
        inventory: pl.DataFrame | None = None,
        movements: pl.DataFrame | None = None,
        *,
        through: dt.date,
        series: Iterable[tuple[str, str]] = (),
        now: dt.datetime | None = None,
    ) -> int:
        """Fill the store from the lake's tables (canonical shapes) for the `history_days` days up to `through`:
        each series' hash and days replaced in one MULTI/EXEC, so a reader sees a series' old or new history,
        never a mix. `series` adds known series without rows in the window. Events for days up to `through` sent
        afterwards would count twice (they carry no seen id): stream from the next day on. The number of series.
        """
        first = through - dt.timedelta(days=self.history_days - 1)
        per: dict[tuple[str, str], dict[str, dict[str, Any]]] = {pair: {} for pair in series}
        last: dict[tuple[str, str], tuple[str, float, float | None]] = {}

        def window(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            if frame is None or frame.is_empty():
                return None
            return frame.filter(pl.col("date").is_between(first, through))

        def day_of(pair: tuple[str, str], day: dt.date) -> dict[str, Any]:
            return per.setdefault(pair, {}).setdefault(day.isoformat(), {})

        if (s := window(sales)) is not None:
            cols = s.columns
            for row in s.iter_rows(named=True):
                r = day_of((row["store_id"], row["item_id"]), row["date"])
                units = float(row["units"])
                r["n"] = r.get("n", 0) + 1
                r["u"] = r.get("u", 0.0) + units
                price = row["price"] if "price" in cols else None
                if price is not None:
                    revenue = row["revenue"] if "revenue" in cols else None
                    r["rv"] = r.get("rv", 0.0) + float(units * price if revenue is None else revenue)
                    r["pu"] = r.get("pu", 0.0) + units
                    r["ps"] = r.get("ps", 0.0) + float(price)
                    r["pn"] = r.get("pn", 0) + 1
                promo = row["promo"] if "promo" in cols else None
                if promo is not None:
                    r["pm"] = max(int(promo), r.get("pm", 0))
        if (inv := window(inventory)) is not None and "on_hand" in inv.columns:
            has_ss = "safety_stock" in inv.columns
            for row in inv.filter(pl.col("on_hand").is_not_null()).sort("date").iter_rows(named=True):
                pair = (row["store_id"], row["item_id"])
                r = day_of(pair, row["date"])
                ss = row["safety_stock"] if has_ss else None
                r["oh"], r["ss"], r["ot"] = float(row["on_hand"]), ss, SEED_ORDER
                last[pair] = (f"{row['date'].isoformat()}T{SEED_ORDER}", float(row["on_hand"]), ss)
        if (mov := window(movements)) is not None:
            receipts = mov.filter((pl.col("kind") == "receipt") & pl.col("to_store_id").is_not_null())
            for row in receipts.iter_rows(named=True):
                r = day_of((row["to_store_id"], row["item_id"]), row["date"])
                r["q"] = r.get("q", 0.0) + float(row["quantity"])
        stamp = now or dt.datetime.now(dt.UTC)
        pairs = list(per.items())
        for start in range(0, len(pairs), 200):
            pipe = self.client.pipeline(transaction=True)
            for (store, item), day_map in pairs[start : start + 200]:
                sid = series_id(store, item)
                hkey, zkey = self._key("s", sid), self._key("d", sid)
                pipe.delete(hkey, zkey, self._key("a", sid))
                fields: dict[Any, Any] = {f"d:{d}": pack_day(r) for d, r in day_map.items()}
                fields["upd"] = str(int(stamp.timestamp() * 1000))
                if (store, item) in last:
                    order, on_hand, safety = last[(store, item)]
                    fields.update({"lt": order, "loh": repr(on_hand)})
                    if safety is not None:
                        fields["lss"] = repr(float(safety))
                pipe.hset(hkey, mapping=fields)
                if day_map:
                    pipe.zadd(zkey, {d: dt.date.fromisoformat(d).toordinal() for d in day_map})
                pipe.sadd(self._key("series"), sid)
                pipe.sadd(self._key("stores"), store)
                pipe.sadd(self._key("items"), item)
            pipe.execute()
        self.client.hset(
            self._key("meta"),
            mapping={
                "layout": LAYOUT_VERSION,
                "history_days": str(self.history_days),
                "seeded_at": stamp.isoformat(),
                "seeded_through": through.isoformat(),
            },
        )
        return len(pairs)

    def mark_layout(self) -> None:
        """Record the layout version and history kept (done by the consumer when it starts on an unseeded store)."""
        self.client.hset(self._key("meta"), mapping={"layout": LAYOUT_VERSION, "history_days": str(self.history_days)})

    # -- reading -----------------------------------------------------------------------------------------------
    def series_history(self, store_id: str, item_id: str) -> pl.DataFrame:
        """The series' kept days, oldest first, in `HISTORY_SCHEMA` (empty frame for an unknown series)."""
        raw = self.client.hgetall(self._key("s", series_id(store_id, item_id)))
        return _history_frame([(store_id, item_id, raw)])

    def histories(self, series: Sequence[tuple[str, str]] | None = None) -> pl.DataFrame:
        """Many series' histories in one pipelined round trip (every known series when None), sorted by series
        and date, in `HISTORY_SCHEMA`."""
        pairs = list(series) if series is not None else self.known_series()
        pipe = self.client.pipeline(transaction=False)
        for store, item in pairs:
            pipe.hgetall(self._key("s", series_id(store, item)))
        replies = pipe.execute() if pairs else []
        return _history_frame([(s, i, r) for (s, i), r in zip(pairs, replies, strict=True)])

    def buckets(self, store_id: str, item_id: str, today: dt.date) -> Buckets:
        """Today's, this week's and this month's units and revenue, and the latest stock count."""
        raw = self.client.hgetall(self._key("s", series_id(store_id, item_id)))
        fields = {_s(k): _s(v) for k, v in raw.items()}

        def totals(first: dt.date) -> Totals:
            units = revenue = 0.0
            day = first
            while day <= today:
                r = unpack_day(fields.get(f"d:{day.isoformat()}"))
                units += r.get("u") or 0.0
                revenue += r.get("rv") or 0.0
                day += dt.timedelta(days=1)
            return Totals(units, revenue)

        upd = fields.get("upd")
        return Buckets(
            store_id=store_id,
            item_id=item_id,
            today=totals(today),
            week=totals(today - dt.timedelta(days=today.weekday())),
            month=totals(today.replace(day=1)),
            last_on_hand=_float(fields.get("loh")),
            last_safety_stock=_float(fields.get("lss")),
            last_count=fields.get("lt"),
            updated_at=None if upd is None else dt.datetime.fromtimestamp(int(upd) / 1000, dt.UTC),
        )

    def stock_now(self, series: Sequence[tuple[str, str]]) -> list[StockNow]:
        """Each series' latest count and its stock now (the count, minus the units sold after it, plus the units
        received after it), in one pipelined round trip; the redis-py error when Redis fails."""
        pipe = self.client.pipeline(transaction=False)
        for store, item in series:
            sid = series_id(store, item)
            pipe.hmget(self._key("s", sid), "loh", "lt", "upd")
            pipe.zrange(self._key("a", sid), 0, -1)
        replies = pipe.execute() if series else []
        out: list[StockNow] = []
        for n in range(len(series)):
            (on_hand, order, updated), after = replies[2 * n], replies[2 * n + 1]
            moved, latest = 0.0, None
            for member in after:
                key, _, amount = _s(member).rpartition("\x1f")
                moved += float(amount)
                latest = key if latest is None or key > latest else latest
            count = None if on_hand is None else float(on_hand)
            out.append(
                StockNow(
                    on_hand=count,
                    count_key=None if order is None else _s(order),
                    now=None if count is None else max(count + moved, 0.0),
                    after=len(after),
                    last_event_key=latest,
                    updated_ms=None if updated is None else int(updated),
                )
            )
        return out

    def known_series(self) -> list[tuple[str, str]]:
        """Every series the store holds (seeded or seen), sorted."""
        return sorted(split_series_id(_s(m)) for m in self.client.smembers(self._key("series")))

    def known_ids(self) -> tuple[frozenset[str], frozenset[str]]:
        """(known store ids, known item ids), for the `reject` policy of new series."""
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(self._key("stores"))
        pipe.smembers(self._key("items"))
        stores, items = pipe.execute()
        return frozenset(_s(s) for s in stores), frozenset(_s(i) for i in items)

    def stats(self) -> Stats:
        raw = {_s(k): _s(v) for k, v in self.client.hgetall(self._key("stats")).items()}

        def num(name: str) -> int | None:
            return int(raw[name]) if name in raw else None

        return Stats(
            read=num("read") or 0,
            applied=num("applied") or 0,
            duplicates=num("duplicates") or 0,
            dead=num("dead") or 0,
            first_ms=num("first_ms"),
            last_ms=num("last_ms"),
            latest_day=None if not num("maxday") else dt.date.fromordinal(num("maxday") or 1),
            closed_changes=num("closed_changes") or 0,
        )

    def meta(self) -> StoreMeta:
        raw = {_s(k): _s(v) for k, v in self.client.hgetall(self._key("meta")).items()}
        stats = self.stats()
        seeded_at = raw.get("seeded_at")
        through = raw.get("seeded_through")
        return StoreMeta(
            layout=raw.get("layout"),
            history_days=int(raw["history_days"]) if "history_days" in raw else None,
            seeded_at=dt.datetime.fromisoformat(seeded_at) if seeded_at else None,
            seeded_through=dt.date.fromisoformat(through) if through else None,
            last_applied_at=None if stats.last_ms is None else dt.datetime.fromtimestamp(stats.last_ms / 1000, dt.UTC),
        )

    def keys(self) -> list[str]:
        """Every key under the prefix (for clean-up and tests; SCAN, so it never blocks Redis)."""
        return [_s(k) for k in self.client.scan_iter(match=f"{_glob(self.prefix)}:*", count=1000)]

    def drop(self) -> int:
        """Delete every key under the prefix (store, events and dead-letter streams); keys deleted."""
        found = self.keys()
        for start in range(0, len(found), 500):
            self.client.delete(*found[start : start + 500])
        return len(found)


def as_tables(history: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """A history frame split into the lake's shapes: `sales` (date, store_id, item_id, units, price, promo,
    revenue), `inventory` (date, store_id, item_id, on_hand, safety_stock) and `movements` (receipts: date,
    item_id, from_store_id null, to_store_id, quantity, kind `receipt`, movement_id null)."""
    keys = ["date", "store_id", "item_id"]
    sales = history.filter(pl.col("units").is_not_null()).select(*keys, "units", "price", "promo", "revenue")
    inventory = history.filter(pl.col("on_hand").is_not_null()).select(*keys, "on_hand", "safety_stock")
    movements = history.filter(pl.col("quantity").is_not_null()).select(
        "date",
        "item_id",
        pl.lit(None, pl.String).alias("from_store_id"),
        pl.col("store_id").alias("to_store_id"),
        "quantity",
        pl.lit("receipt").alias("kind"),
        pl.lit(None, pl.String).alias("movement_id"),
    )
    return {"sales": sales, "inventory": inventory, "movements": movements}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


def _glob(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _id_range(ids: Sequence[bytes | str]) -> list[str]:
    """First id, last id and count of a batch's stream entries (for one XPENDING over them)."""
    keys = []
    for entry in ids:
        text = entry.decode() if isinstance(entry, bytes) else entry
        if text:
            ms, _, seq = text.partition("-")
            keys.append((int(ms), int(seq or 0), text))
    if not keys:
        return ["-", "+", "0"]
    keys.sort()
    return [keys[0][2], keys[-1][2], str(2 * len(keys) + 100)]


def pack_day(parts: Mapping[str, Any]) -> str:
    """A day's figures (`DAY_PARTS` -> value, None or absent = none) as the packed text the store holds."""
    out = []
    for name in DAY_PARTS:
        value = parts.get(name)
        if value is None:
            out.append("")
        elif name == "ot":
            out.append(str(value))
        elif name in ("n", "pn", "pm"):
            out.append(str(int(value)))
        else:
            out.append(repr(float(value)))
    return ",".join(out)


def unpack_day(text: str | None) -> dict[str, Any]:
    """A packed day as `DAY_PARTS` -> float (`ot`: text), absent parts left out."""
    if not text:
        return {}
    values = text.split(",", len(DAY_PARTS) - 1)
    out: dict[str, Any] = {}
    for name, value in zip(DAY_PARTS, values, strict=True):
        if value:
            out[name] = value if name == "ot" else float(value)
    return out


def _history_frame(rows: Iterable[tuple[str, str, Mapping[Any, Any]]]) -> pl.DataFrame:
    out: dict[str, list[Any]] = {name: [] for name in HISTORY_SCHEMA}
    for store, item, raw in rows:
        days = sorted((_s(k)[2:], _s(v)) for k, v in raw.items() if _s(k).startswith("d:"))
        for day, text in days:
            f = unpack_day(text)
            sold = "n" in f
            pn = int(f.get("pn", 0))
            if not sold or pn == 0:
                price = None
            elif pn == 1:
                price = f["ps"]
            elif f.get("pu", 0.0) > 0:
                price = f["rv"] / f["pu"]
            else:
                price = f["ps"] / pn
            out["date"].append(dt.date.fromisoformat(day))
            out["store_id"].append(store)
            out["item_id"].append(item)
            out["units"].append(f.get("u", 0.0) if sold else None)
            out["price"].append(price)
            out["promo"].append(int(f["pm"]) if sold and "pm" in f else None)
            out["revenue"].append(f.get("rv") if sold else None)
            out["on_hand"].append(f.get("oh"))
            out["safety_stock"].append(f.get("ss") if "oh" in f else None)
            out["quantity"].append(f.get("q"))
    return pl.DataFrame(out, schema=HISTORY_SCHEMA)
