"""Privacy loss in zero-concentrated DP (zCDP): exact amounts, the Gaussian scale, its error.

Amounts of rho travel and are stored as integers of 1e-9 ("nano-rho") so that a ledger's sums are
exact and two nodes agree on them; people read and write them as decimals ("0.05"). Canonical
JSON has no floating-point numbers, so a decimal travels as a string.

The mechanism is the discrete Gaussian on a histogram whose L2 sensitivity is ``l2``: at scale
``sigma`` it satisfies rho-zCDP with rho = l2**2 / (2 sigma**2) (Canonne, Kamath, Steinke 2020).
The node builds and runs the mechanism with OpenDP, which checks this map itself; this module
only says which scale to ask for and what error to expect, so that a requester can check an answer.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from protocol.errors import MalformedError

NANO = 1_000_000_000
MAX_RHO_NANO = 10 * NANO  # far beyond any sensible query: a larger loss is refused as absurd
SCALE_PAD = 1e-9  # the scale is padded by this much (relative) against rounding in the privacy map
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,9})?\Z")


class InvalidLoss(MalformedError):
    code = "invalid_privacy_loss"


def parse_rho(value: object, *, what: str = "rho") -> int:
    """A positive rho (decimal string such as "0.05", or a number) as nano-rho.

    Refuses (InvalidLoss) anything that is not a finite decimal with at most 9 decimals, zero,
    negative, or above 10 (an absurd loss for one query).
    """
    if isinstance(value, bool):
        raise InvalidLoss(f'{what}: expected a decimal such as "0.05", got a boolean')
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidLoss(f"{what}: expected a finite decimal")
        text = format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidLoss(f'{what}: expected a decimal such as "0.05", got {type(value).__name__}')
    if text.startswith("-"):
        raise InvalidLoss(f"{what}: a privacy loss cannot be negative")
    if not _DECIMAL_RE.match(text):
        raise InvalidLoss(f'{what}: expected a decimal with at most 9 decimals such as "0.05"')
    try:
        nano = int(Decimal(text) * NANO)
    except InvalidOperation as e:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidLoss(f"{what}: not a decimal") from e
    if nano <= 0:
        raise InvalidLoss(f"{what}: a privacy loss must be above zero")
    if nano > MAX_RHO_NANO:
        raise InvalidLoss(f"{what}: {text} is an absurd loss for one query (at most {MAX_RHO_NANO // NANO})")
    return nano


def format_rho(nano: int) -> str:
    """Nano-rho as the shortest decimal: 50_000_000 -> "0.05", 0 -> "0"."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO)
    text = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    return sign + text


def rho_from_epsilon(epsilon: float, delta: float) -> int:
    """The largest rho (nano) whose (epsilon, delta)-DP bound rho + 2 sqrt(rho ln(1/delta)) is at most epsilon.

    For people who think in epsilon; the ledger keeps rho. Refuses non-positive or absurd values.
    """
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and 0 < epsilon <= 100):
        raise InvalidLoss("epsilon: expected a number above 0 and at most 100")
    if not (isinstance(delta, int | float) and 0 < delta < 1e-3):
        raise InvalidLoss("delta: expected a number above 0 and below 0.001")
    log_term = math.log(1 / delta)
    root = math.sqrt(log_term + epsilon) - math.sqrt(log_term)
    nano = math.floor(root * root * NANO)
    if nano <= 0:
        raise InvalidLoss("epsilon: too small to spend at this delta")
    return min(nano, MAX_RHO_NANO)


def epsilon_bound(rho_nano: int, delta: float) -> float:
    """The classic (epsilon, delta) bound of rho-zCDP: rho + 2 sqrt(rho ln(1/delta)) (Bun, Steinke 2016).

    OpenDP's conversion is tighter; the node shows OpenDP's figure. This one is for pure code.
    """
    rho = rho_nano / NANO
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


def gaussian_scale(l2_sensitivity: float, rho_nano: int) -> float:
    """The discrete Gaussian scale that spends exactly ``rho`` at this L2 sensitivity, padded up a little."""
    rho = rho_nano / NANO
    return l2_sensitivity / math.sqrt(2 * rho) * (1 + SCALE_PAD)


def discrete_gaussian_variance(scale: float) -> float:
    """The variance of the discrete Gaussian N_Z(0, scale**2): sum of x**2 weights over the integers.

    Slightly below scale**2 for scales under 1; equal to it for practical purposes above.
    """
    if scale <= 0:
        return 0.0
    if scale >= 8:  # the sum differs from scale**2 by about exp(-2 pi**2 scale**2): nothing
        return scale * scale
    bound = math.ceil(40 * scale) + 2
    two_s2 = 2 * scale * scale
    total = weighted = 0.0
    for x in range(-bound, bound + 1):
        w = math.exp(-(x * x) / two_s2)
        total += w
        weighted += x * x * w
    return weighted / total
