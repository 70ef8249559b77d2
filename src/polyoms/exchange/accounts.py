"""Balances, allowances and reservations per funder address, and the settlement primitives.

Rules (doc §4.9): an order is accepted only if `min(balance − pending, allowance) − reserved` covers
what it needs; open orders reserve what they may still spend (a BUY its remaining pUSD at its limit
price, a SELL its remaining shares). Balances never go negative: the matcher checks every payment before
it commits one. pUSD only moves between accounts (fees go to the fee collector) or into/out of the
collateral locked by MINT/MERGE (and out of it again by redemption), so `Σ pUSD + Σ locked == Σ funded`
at all times.

Pending: what a party receives in a trade (shares bought, pUSD from a sale, a fee) is credited at once
but stays *pending* — counted in the balance, not spendable — until the trade is MINED (see
`settlement`). A trade can only fail before it is mined, so a failed trade always finds its proceeds
where it left them and can be undone exactly.

Allowances default to the maximum uint256 (what a funded wallet's one-time approval gives); a lower
one shrinks with every transfer, as an ERC-20 allowance does, while the maximum stays infinite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from polyoms.core.errors import InputError, InvalidAddressError

MAX_UINT256: Final = (1 << 256) - 1
FEE_COLLECTOR: Final = "0xfee0000000000000000000000000000000000000"


def _check_address(address: str) -> str:
    if not (
        isinstance(address, str)
        and len(address) == 42
        and address[:2] in ("0x", "0X")
        and all(c in "0123456789abcdefABCDEF" for c in address[2:])
    ):
        raise InvalidAddressError(f"not a 20-byte hex address: {address!r}", value=address)
    return address.lower()


class Account:
    """One funder address. Token maps hold only tokens ever touched."""

    __slots__ = (
        "address",
        "pusd",
        "pusd_allowance",
        "pusd_pending",
        "pusd_reserved",
        "token_allowance",
        "token_pending",
        "token_reserved",
        "tokens",
    )

    def __init__(self, address: str) -> None:
        self.address = address
        self.pusd = 0
        self.pusd_reserved = 0
        self.pusd_allowance = MAX_UINT256
        self.tokens: dict[str, int] = {}
        self.token_reserved: dict[str, int] = {}
        self.token_allowance: dict[str, int] = {}
        # Proceeds of trades not yet mined: part of the balances above, not spendable (module doc).
        self.pusd_pending = 0
        self.token_pending: dict[str, int] = {}

    def free_pusd(self) -> int:
        bal, allow = self.pusd - self.pusd_pending, self.pusd_allowance
        return (bal if bal < allow else allow) - self.pusd_reserved

    def free_tokens(self, token_id: str) -> int:
        bal = self.tokens.get(token_id, 0) - self.token_pending.get(token_id, 0)
        allow = self.token_allowance.get(token_id, MAX_UINT256)
        return (bal if bal < allow else allow) - self.token_reserved.get(token_id, 0)

    # Settlement primitives. Callers guarantee the amounts are covered.

    def pay_pusd(self, amount: int) -> None:
        self.pusd -= amount
        if self.pusd_allowance != MAX_UINT256:
            self.pusd_allowance -= amount

    def give_tokens(self, token_id: str, amount: int) -> None:
        self.tokens[token_id] -= amount
        allow = self.token_allowance.get(token_id)
        if allow is not None and allow != MAX_UINT256:
            self.token_allowance[token_id] = allow - amount

    def get_tokens(self, token_id: str, amount: int) -> None:
        toks = self.tokens
        toks[token_id] = toks.get(token_id, 0) + amount

    def reserve_tokens(self, token_id: str, amount: int) -> None:
        res = self.token_reserved
        res[token_id] = res.get(token_id, 0) + amount

    def release_tokens(self, token_id: str, amount: int) -> None:
        self.token_reserved[token_id] -= amount

    def add_pending_tokens(self, token_id: str, amount: int) -> None:
        pend = self.token_pending
        left = pend.get(token_id, 0) + amount
        if left:
            pend[token_id] = left
        else:
            del pend[token_id]  # keep the map to tokens with something pending

    def __repr__(self) -> str:
        return (
            f"Account({self.address} pusd={self.pusd} reserved={self.pusd_reserved} pending={self.pusd_pending} "
            f"tokens={self.tokens})"
        )


@dataclass(frozen=True, slots=True)
class TokenBalance:
    balance: int
    reserved: int
    allowance: int
    pending: int = 0
    """Shares bought in trades not yet mined: in `balance`, not yet sellable."""

    @property
    def available(self) -> int:
        return min(self.balance - self.pending, self.allowance) - self.reserved


@dataclass(frozen=True, slots=True)
class Balances:
    """A copy of one address's holdings (micro-units)."""

    address: str
    pusd: int
    pusd_reserved: int
    pusd_allowance: int
    tokens: Mapping[str, TokenBalance]
    pusd_pending: int = 0
    """pUSD received in trades not yet mined: in `pusd`, not yet spendable."""

    @property
    def pusd_available(self) -> int:
        return min(self.pusd - self.pusd_pending, self.pusd_allowance) - self.pusd_reserved

    def token(self, token_id: str) -> TokenBalance:
        return self.tokens.get(token_id, TokenBalance(0, 0, MAX_UINT256))


class Ledger:
    """All accounts plus the totals the conservation checks compare against."""

    __slots__ = (
        "_accounts",
        "_by_exact",
        "burned_tokens",
        "collateral_locked",
        "fee_collector",
        "funded_pusd",
        "funded_tokens",
        "redeemed",
    )

    def __init__(self, fee_collector: str = FEE_COLLECTOR) -> None:
        self._accounts: dict[str, Account] = {}
        # Exact-spelling cache so the hot path skips lower-casing checksummed addresses.
        self._by_exact: dict[str, Account] = {}
        self.funded_pusd = 0
        self.funded_tokens: dict[str, int] = {}
        self.collateral_locked: dict[str, int] = {}
        """pUSD held against full sets, per market: MINTs add, MERGEs take away (may go below 0 when
        shares that were funded rather than minted are merged, or redeemed)."""
        self.redeemed: dict[str, int] = {}
        """pUSD paid out of a market's collateral by redemption (one per winning share), per market."""
        self.burned_tokens: dict[str, int] = {}
        """Outcome tokens destroyed by redemption (winners and losers), per token id. Token supply is
        `funded + locked + redeemed − burned` of its market: redemption moves pUSD out of `locked`
        into `redeemed` and burns every share of both outcomes."""
        self.fee_collector = self.account(fee_collector)

    def account(self, address: str) -> Account:
        """The account of `address`, created empty on first use."""
        acct = self._by_exact.get(address)
        if acct is None:
            key = _check_address(address)
            acct = self._accounts.get(key)
            if acct is None:
                acct = self._accounts[key] = Account(key)
            self._by_exact[address] = acct
        return acct

    def get(self, address: str) -> Account | None:
        acct = self._by_exact.get(address)
        if acct is None and isinstance(address, str):
            acct = self._accounts.get(address.lower())
        return acct

    def __iter__(self) -> Iterator[Account]:
        return iter(self._accounts.values())

    def __len__(self) -> int:
        return len(self._accounts)

    def fund(self, address: str, pusd: int = 0, tokens: Mapping[str, int] | None = None) -> Account:
        """Admin: credit pUSD and outcome tokens (micro-units) out of thin air, counted as funded."""
        if isinstance(pusd, bool) or not isinstance(pusd, int) or pusd < 0:
            raise InputError(f"fund amount must be a non-negative integer of micro-pUSD, got {pusd!r}")
        for tid, amount in (tokens or {}).items():
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise InputError(f"fund amount for token {tid} must be a non-negative integer, got {amount!r}")
        acct = self.account(address)
        acct.pusd += pusd
        self.funded_pusd += pusd
        for tid, amount in (tokens or {}).items():
            acct.get_tokens(tid, amount)
            self.funded_tokens[tid] = self.funded_tokens.get(tid, 0) + amount
        return acct

    def transfer(self, source: str, dest: str, amount: int) -> None:
        """Move settled pUSD between two accounts (maker rebates out of the fee collector): only what
        `source` holds free — not pending, not reserved — may move; totals are unchanged."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise InputError(f"transfer amount must be a non-negative integer of micro-pUSD, got {amount!r}")
        src = self.account(source)
        if amount > src.pusd - src.pusd_pending - src.pusd_reserved:
            raise InputError(f"{src.address} cannot transfer {amount}: not enough settled pUSD")
        dst = self.account(dest)
        src.pusd -= amount
        dst.pusd += amount

    def set_allowance(self, address: str, amount: int, token_id: str | None = None) -> None:
        """Admin: set the allowance to the exchange for pUSD (`token_id=None`) or one token."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_UINT256:
            raise InputError(f"allowance must be an integer within [0, 2^256), got {amount!r}")
        acct = self.account(address)
        if token_id is None:
            acct.pusd_allowance = amount
        else:
            acct.token_allowance[token_id] = amount

    def lock(self, market: str, amount: int) -> None:
        locked = self.collateral_locked
        locked[market] = locked.get(market, 0) + amount

    def balances(self, address: str) -> Balances:
        acct = self.get(address)
        if acct is None:
            return Balances(address.lower(), 0, 0, MAX_UINT256, {})
        tids = set(acct.tokens) | set(acct.token_reserved) | set(acct.token_pending)
        return Balances(
            acct.address,
            acct.pusd,
            acct.pusd_reserved,
            acct.pusd_allowance,
            {
                t: TokenBalance(
                    acct.tokens.get(t, 0),
                    acct.token_reserved.get(t, 0),
                    acct.token_allowance.get(t, MAX_UINT256),
                    acct.token_pending.get(t, 0),
                )
                for t in sorted(tids)
            },
            acct.pusd_pending,
        )

    def total_pusd(self) -> int:
        return sum(a.pusd for a in self._accounts.values())

    def total_tokens(self, token_id: str) -> int:
        return sum(a.tokens.get(token_id, 0) for a in self._accounts.values())
