"""The execution algorithms by name: what each is called, what it takes, how it starts and resumes.

One `Registry` entry per algorithm declares its spec type, the parameters an operator may give it
(`--param KEY=VALUE`), how a control-API request becomes its spec, how its state starts, and whether a
restart resumes it. The parent manager, the control API, the CLI and the reports look names up here.
Every algorithm is registered at the end of this module (the algorithm modules do not know it).

Parameters are parsed exactly (prices and sizes to micro-units, integers as integers) and refused with
a typed `InputError` naming them; unknown ones are refused too, so a misspelt one never falls back to a
default. The specs' own checks (`base.require`) raise `AlgoConfigError`, also an input error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, TypeVar

from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec, AdaptiveState
from polyoms.algos.base import AlgoConfigError, AlgoSpec, AlgoState, Instrument
from polyoms.algos.iceberg import IcebergSpec, IcebergState
from polyoms.algos.microprice import MicroPriceSpec, MicroPriceState
from polyoms.algos.multileg import MultiLegSpec, MultiLegState
from polyoms.algos.single import OrderSpec, SingleState
from polyoms.algos.urgency import Urgency
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.params import Param, ParamKind, parse_params
from polyoms.core.registry import Entry, Registry
from polyoms.core.units import Micro, plain_micro

INTERRUPT: Final = "interrupt"
RESUME: Final = "resume"
ON_RESTART: Final = (INTERRUPT, RESUME)
"""What a restart does to a parent that was working (algos.parents); "interrupt" by default."""


def restart_policy(value: str) -> str:
    """A restart policy ("resume" or "interrupt"), checked."""
    policy = value.strip().lower() if isinstance(value, str) else value
    if policy not in ON_RESTART:
        raise AlgoConfigError(f"on_restart must be one of {', '.join(ON_RESTART)}, got {value!r}", field="on_restart")
    return policy


# --- parameters --------------------------------------------------------------------------------------


COMMON_PARAMS: Final = {
    "on_restart": Param(
        ParamKind.TEXT,
        "what a daemon restart does to it while it works (default: the daemon's engine.parents_on_restart)",
        ON_RESTART,
    )
}
"""Parameters every algorithm takes; they configure the parent, not its algorithm (not in its spec)."""


@dataclass(frozen=True, slots=True)
class Request:
    """A parent order as the control API asks for it: `price` is its `--price`, `params` are parsed."""

    token_id: str
    side: Side
    size: Micro
    price: Micro
    params: Mapping[str, Any]
    post_only: bool = False

    @property
    def timeout_ms(self) -> int | None:
        seconds = self.params.get("timeout_s")
        return None if seconds is None else seconds * 1000

    @property
    def lifetime_s(self) -> int:
        return int(self.params.get("lifetime_s", 0))

    def given(self, *keys: str) -> dict[str, Any]:
        """The parameters among `keys` that were given (the others keep the spec's defaults)."""
        return {k: self.params[k] for k in keys if k in self.params}


# --- entries -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Launch:
    """What an algorithm's state starts from."""

    instruments: tuple[Instrument, ...]
    """One per token of the spec (`spec.tokens`), in order."""
    now_ms: int
    seed: int
    """Its own stream of randomness (the manager derives it from its seed and the parent)."""


SpecT = TypeVar("SpecT", bound=AlgoSpec)


@dataclass(frozen=True, slots=True)
class Algo(Generic[SpecT]):
    """An algorithm as the registry holds it."""

    spec_type: type[SpecT]
    start: Callable[[SpecT, Launch], AlgoState]
    build: Callable[[Request], SpecT] | None = None
    """A control-API request → its spec; None: started through the Python API only (no `--algo`)."""
    params: Mapping[str, Param] = field(default_factory=dict)
    """What `build` reads besides COMMON_PARAMS."""
    price_help: str = ""
    """What `--price` means to it."""
    resume: Callable[[SpecT, Micro, int | None], SpecT] | None = None
    """After a restart: its spec for the shares left within the time left (None: interrupted instead)."""
    complements: bool = False
    """The complement tokens of its instruments are looked up too (baskets net complete sets)."""


ALGOS: Final[Registry[Algo[Any]]] = Registry("algo")
_BY_SPEC: Final[dict[type[Any], str]] = {}


def register(name: str, algo: Algo[Any], *, summary: str, aliases: tuple[str, ...] = ()) -> None:
    ALGOS.register(name, algo, summary=summary, aliases=aliases)
    _BY_SPEC[algo.spec_type] = name


def name_of(spec: object) -> str:
    """The registered name of the algorithm `spec` is a spec of."""
    name = _BY_SPEC.get(type(spec))
    if name is None:
        raise AlgoConfigError(f"unknown parent spec {type(spec).__name__}")
    return name


def spec_type(type_name: str) -> type[Any]:
    """The registered spec type of this class name (as the journal keeps it); KeyError if none."""
    for t in _BY_SPEC:
        if t.__name__ == type_name:
            return t
    raise KeyError(type_name)


def algo_name(kind: str) -> str:
    """The name an operator sees for `kind` (an alias resolves; any other name is kept as it is)."""
    return ALGOS.canonical(kind) if kind in ALGOS else kind


def orderable() -> tuple[Entry[Algo[Any]], ...]:
    """The algorithms a control-API request can start (`--algo NAME`)."""
    return tuple(e for e in ALGOS if e.item.build is not None)


def requested(name: str) -> Entry[Algo[Any]]:
    """The orderable algorithm `name` (or an alias) names; InputError listing them otherwise."""
    if name in ALGOS:
        entry = ALGOS.entry(name)
        if entry.item.build is not None:
            return entry
    names = ", ".join(e.name for e in orderable())
    raise InputError(f"algo must be one of {names}, got {name!r}", field="algo")


def algo_params(entry: Entry[Algo[Any]], params: Mapping[str, str]) -> dict[str, Any]:
    return parse_params(entry.name, {**entry.item.params, **COMMON_PARAMS}, params)


def on_restart_of(params: Mapping[str, str]) -> str | None:
    """The parent's own restart policy (`on_restart=`), or None for the daemon's default."""
    text = params.get("on_restart")
    return None if text is None else restart_policy(text)


def build_spec(
    algo: str,
    token_id: str,
    side: Side,
    size: Micro,
    price: str | None,
    params: Mapping[str, str],
    *,
    post_only: bool = False,
) -> AlgoSpec:
    """The spec of a parent order as the control API asks for it (`--algo NAME --price P --param K=V`)."""
    entry = requested(algo)
    if price is None:
        raise InputError(f"a {entry.name} parent order needs --price (its limit price)", field="price")
    limit = plain_micro(price, "price")
    request = Request(token_id, side, size, limit, algo_params(entry, params), post_only)
    assert entry.item.build is not None  # `requested` returns orderable entries only
    spec: AlgoSpec = entry.item.build(request)
    return spec


# --- the algorithms ----------------------------------------------------------------------------------

_TIMING: Final = {
    "timeout_s": Param(ParamKind.INT, "cancel what is left after this many seconds"),
    "lifetime_s": Param(
        ParamKind.INT, "children are GTD, expiring at the venue this many seconds after each is placed (dead-man)"
    ),
}
_ADAPTIVE: Final = {
    "undercut_margin": Param(
        ParamKind.PRICE, "reprice when others' best price on our side beats ours by this much (default 0.01)"
    ),
    "check_ms": Param(ParamKind.INT, "how often the book is reviewed (default 1000)"),
}
_URGENCY: Final = Param(
    ParamKind.TEXT, "patience, adjustments and step of each reprice (default MEDIUM)", tuple(Urgency)
)

Resizable = TypeVar("Resizable", IcebergSpec, AdaptiveSpec, MicroPriceSpec)


def _left_in_shares(spec: Resizable, left: Micro, timeout_ms: int | None) -> Resizable:
    return replace(spec, size=left, timeout_ms=timeout_ms)


def _iceberg(r: Request) -> IcebergSpec:
    p = r.params
    return IcebergSpec(
        token_id=r.token_id,
        side=r.side,
        size=r.size,
        price=r.price,
        display=p.get("display", max(r.size // 5, 1)),
        pause_ms=(p.get("pause_min_ms", 1_000), p.get("pause_max_ms", 3_000)),
        timeout_ms=r.timeout_ms,
        lifetime_s=r.lifetime_s,
        post_only=r.post_only,
        adaptive=_iceberg_pricing(r),
        **r.given("variance_bps"),
    )


def _iceberg_pricing(r: Request) -> AdaptivePricing | None:
    tuning = sorted(r.given("urgency", "undercut_margin", "check_ms"))
    if "limit" not in r.params:
        if tuning:
            # Without a limit these would be silently ignored by a fixed-price iceberg.
            raise InputError(f"iceberg parameter(s) {', '.join(tuning)} need limit=P (adaptive pricing)", field="limit")
        return None
    return AdaptivePricing(
        limit=r.params["limit"], urgency=r.params.get("urgency", "MEDIUM"), **r.given("undercut_margin", "check_ms")
    )


def _adaptive(r: Request) -> AdaptiveSpec:
    return AdaptiveSpec(
        token_id=r.token_id,
        side=r.side,
        limit=r.price,
        size=r.size,
        urgency=r.params.get("urgency", "MEDIUM"),
        start_price=r.params.get("start_price"),
        timeout_ms=r.timeout_ms,
        lifetime_s=r.lifetime_s,
        post_only=r.post_only,
        **r.given("undercut_margin", "check_ms"),
    )


def _micro_price(r: Request) -> MicroPriceSpec:
    return MicroPriceSpec(
        token_id=r.token_id,
        side=r.side,
        limit=r.price,
        size=r.size,
        timeout_ms=r.timeout_ms,
        lifetime_s=r.lifetime_s,
        post_only=r.post_only,
        **r.given("band_bps", "offset_bps", "check_ms", "min_replace_ms", "max_replacements"),
    )


register(
    "iceberg",
    Algo(
        IcebergSpec,
        lambda spec, go: IcebergState.start(spec, go.instruments[0], go.now_ms, go.seed),
        build=_iceberg,
        params={
            "display": Param(ParamKind.SHARES, "mean tranche size (default: a fifth of the size)"),
            "variance_bps": Param(ParamKind.INT, "tranche sizes vary by up to this much of display (default 2000)"),
            "pause_min_ms": Param(ParamKind.INT, "shortest pause between tranches (default 1000)"),
            "pause_max_ms": Param(ParamKind.INT, "longest pause between tranches (default 3000)"),
            **_TIMING,
            "limit": Param(ParamKind.PRICE, "adaptive pricing: never passed (--price is then where tranches start)"),
            **{
                k: replace(v, help=f"adaptive pricing (needs limit=): {v.help}")
                for k, v in {"urgency": _URGENCY, **_ADAPTIVE}.items()
            },
        },
        price_help="the limit of every tranche (with limit=: where they start)",
        resume=_left_in_shares,
    ),
    summary="tranches of the order, one live at a time, randomized sizes and pauses",
)
register(
    "adaptive",
    Algo(
        AdaptiveSpec,
        lambda spec, go: AdaptiveState.start(spec, go.instruments[0], go.now_ms),
        build=_adaptive,
        params={
            "urgency": _URGENCY,
            "start_price": Param(ParamKind.PRICE, "where it starts (default: join others' best price on our side)"),
            **_ADAPTIVE,
            **_TIMING,
        },
        price_help="the limit, never passed",
        resume=_left_in_shares,
    ),
    summary="one order that chases the market within a limit (undercut, stale)",
)
register(
    "micro-price",
    Algo(
        MicroPriceSpec,
        lambda spec, go: MicroPriceState.start(spec, go.instruments[0], go.now_ms),
        build=_micro_price,
        params={
            "band_bps": Param(ParamKind.INT, "replace the order once it is this far from the micro-price (default 50)"),
            "offset_bps": Param(ParamKind.INT, "rest this far from the micro-price on our passive side (default 0)"),
            "check_ms": Param(ParamKind.INT, "how often the order is compared with the micro-price (default 500)"),
            "min_replace_ms": Param(ParamKind.INT, "least time between two replacements (default 1000)"),
            "max_replacements": Param(ParamKind.INT, "replacements allowed in all (default 100)"),
            **_TIMING,
        },
        price_help="the aggression limit: never buy above / sell below it",
        resume=_left_in_shares,
    ),
    summary="one order kept inside a band around the size-weighted mid",
    aliases=("microprice", "micro_price"),
)
register(
    "multileg",
    Algo(
        MultiLegSpec,
        lambda spec, go: MultiLegState.start(spec, go.instruments, go.now_ms),
        complements=True,
    ),
    summary="a basket (complete set, neg-risk outcomes), legs in sequence or in parallel; naked legs unwound",
)
register(
    "order",
    Algo(OrderSpec, lambda spec, go: SingleState.start(spec, go.instruments[0], go.now_ms)),
    summary="one limit or marketable order as a parent (GTD dead-man expiry)",
)
