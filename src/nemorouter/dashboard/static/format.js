// Number formatting for the dashboard. Money arrives from the API as exact decimal
// strings; it is rounded here with BigInt arithmetic so no float ever touches a total.
"use strict";

const Fmt = (() => {
  const PICO_DIGITS = 12;
  const ONE = 10n ** 12n;

  // "12.345" -> {neg: false, pico: 12345000000000n}
  function parse(text) {
    let s = String(text == null ? "0" : text).trim();
    const neg = s.startsWith("-");
    if (neg) s = s.slice(1);
    const [whole, frac = ""] = s.split(".");
    const digits = (frac + "0".repeat(PICO_DIGITS)).slice(0, PICO_DIGITS);
    let pico = BigInt(whole || "0") * ONE + BigInt(digits);
    // Beyond the picodollar: half-even, as the gateway quantizes (types/money.py).
    const rest = frac.slice(PICO_DIGITS);
    if (rest[0] > "5" || (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || pico % 2n === 1n))) pico += 1n;
    return { neg, pico };
  }

  // The one human money format, the same as the CLI's (nemorouter/types/money.py
  // display_usd): cents from $0.10 up; below, three significant digits with trailing zeros
  // dropped, down to the picodollar, so an amount that is not zero never shows as $0.00.
  // Half-up (ties away from zero).
  function roundTo(pico, decimals) {
    const unit = 10n ** BigInt(PICO_DIGITS - decimals);
    return (pico + unit / 2n) / unit;
  }

  function decimalsFor(pico) {
    if (pico === 0n || pico >= ONE / 10n) return 2;
    const zeros = PICO_DIGITS - pico.toString().length; // zeros between the point and the first digit
    const decimals = Math.min(PICO_DIGITS, Math.max(2, zeros + 3));
    // 0.09996 rounds to 0.1000: shown in cents, $0.10
    return roundTo(pico, decimals) * 10n ** BigInt(PICO_DIGITS - decimals) >= ONE / 10n ? 2 : decimals;
  }

  function group(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // Exact decimal string -> "$1,234.56", "$0.0123", "$0.0012", "$0.000000123".
  function money(text) {
    const { neg, pico } = parse(text);
    const decimals = decimalsFor(pico);
    const rounded = roundTo(pico, decimals);
    const scale = 10n ** BigInt(decimals);
    const whole = group((rounded / scale).toString());
    let frac = (rounded % scale).toString().padStart(decimals, "0");
    if (decimals > 2) frac = frac.replace(/0+$/, "");
    return `${neg && rounded !== 0n ? "-" : ""}$${whole}.${frac}`;
  }

  // For axis ticks, which are computed (floats) rather than read from the API:
  // round numbers, so "$0.004" rather than "$0.00400".
  function moneyNumber(value) {
    return money(Number(value).toFixed(PICO_DIGITS)).replace(/(\.\d\d\d*?)0+$/, "$1");
  }

  // Sum of exact decimal strings, exact.
  function sum(texts) {
    let total = 0n;
    for (const t of texts) {
      const { neg, pico } = parse(t);
      total += neg ? -pico : pico;
    }
    const sign = total < 0n ? "-" : "";
    const abs = total < 0n ? -total : total;
    const frac = (abs % ONE).toString().padStart(PICO_DIGITS, "0").replace(/0+$/, "");
    return `${sign}${abs / ONE}${frac ? "." + frac : ""}`;
  }

  function int(n) {
    return group(String(Math.round(Number(n) || 0)));
  }

  function pct(part, whole) {
    if (!whole) return "–";
    return `${((100 * part) / whole).toFixed(1)}%`;
  }

  // "2026-11-21T12:00:01.123Z" -> "2026-11-21 12:00:01"
  function time(iso) {
    if (!iso) return "–";
    return iso.replace("T", " ").replace(/(\.\d+)?Z$/, "");
  }

  return { parse, money, moneyNumber, sum, int, pct, time };
})();
