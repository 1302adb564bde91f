"""What a call cost, from genai-prices; an unknown price is ``None`` with a warning, never 0."""

from __future__ import annotations

from genai_prices import Usage, calc_price

FREE_PROVIDERS = frozenset({"offline"})
# genai-prices ids of the providers we call directly; compatible servers are looked up by model.
_PROVIDER_IDS: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}


def price(
    provider: str, model: str, tokens_in: int, tokens_out: int, cached_tokens: int,
    cache_write_tokens: int = 0,
) -> tuple[float | None, list[str]]:
    """(cost in USD, warnings); ``tokens_in`` includes ``cached_tokens`` (cache reads) and
    ``cache_write_tokens`` (Anthropic's cache writes), each priced at its own rate."""
    if provider in FREE_PROVIDERS:
        return 0.0, []
    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out,
                  cache_read_tokens=cached_tokens, cache_write_tokens=cache_write_tokens)
    try:
        calculation = calc_price(usage, model, provider_id=_PROVIDER_IDS.get(provider))
    except LookupError:
        return None, [f"no price known for {provider}/{model}; cost not counted"]
    return float(calculation.total_price), []
