"""String ``format`` values as exact regular languages (Python ``re`` syntax, full match).

Each pattern accepts only strings the format's RFC accepts (a subset where the RFC is
not regular or a validator is stricter, documented per format in docs/json-schema.md):
dates check days per month and leap years, times have no leap second (``:60``) and at
most 20 fraction digits, numbers in durations have at most 9 digits.
"""
from __future__ import annotations

from functools import cache

from ..automata.ast import Node
from ..automata.regex_syntax import parse_regex

_D = "[0-9]"
# years 0001-9999 (0000 is not a valid date for datetime-based validators)
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_YEAR_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
DATE = (rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        rf"|{_YEAR_LEAP}-02-29)")
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = rf"(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,20}})?{_OFFSET})"
DATE_TIME = rf"(?:{DATE}[Tt]{TIME})"
_N = "[0-9]{1,9}"
_DUR_TIME = rf"T(?:{_N}H(?:{_N}M(?:{_N}S)?)?|{_N}M(?:{_N}S)?|{_N}S)"
_DUR_DATE = rf"(?:{_N}D|{_N}M(?:{_N}D)?|{_N}Y(?:{_N}M(?:{_N}D)?)?)(?:{_DUR_TIME})?"
DURATION = rf"P(?:{_DUR_DATE}|{_DUR_TIME}|{_N}W)"


def _hostname(labels: int, label_len: int) -> str:
    """Up to ``labels`` dot-separated labels of at most ``label_len`` characters, the last
    one starting with a letter (so the total stays within RFC 1123's 253)."""
    mid = label_len - 2
    label = rf"[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{mid}}}[A-Za-z0-9])?"
    tld = rf"[A-Za-z](?:[A-Za-z0-9-]{{0,{mid}}}[A-Za-z0-9])?"
    return rf"(?:(?:{label}\.){{0,{labels - 1}}}{tld})"


HOSTNAME = f"(?:{_hostname(3, 63)}|{_hostname(8, 30)})"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL = rf"{_ATEXT}{{1,32}}(?:\.{_ATEXT}{{1,16}}){{0,3}}@{_hostname(4, 40)}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H}:{_H}|{IPV4})"
IPV6 = ("(?:" + "|".join([
    rf"(?:{_H}:){{6}}{_LS32}",
    rf"::(?:{_H}:){{5}}{_LS32}",
    rf"(?:{_H})?::(?:{_H}:){{4}}{_LS32}",
    rf"(?:(?:{_H}:){{0,1}}{_H})?::(?:{_H}:){{3}}{_LS32}",
    rf"(?:(?:{_H}:){{0,2}}{_H})?::(?:{_H}:){{2}}{_LS32}",
    rf"(?:(?:{_H}:){{0,3}}{_H})?::{_H}:{_LS32}",
    rf"(?:(?:{_H}:){{0,4}}{_H})?::{_LS32}",
    rf"(?:(?:{_H}:){{0,5}}{_H})?::{_H}",
    rf"(?:(?:{_H}:){{0,6}}{_H})?::",
]) + ")")
_HEX = "[0-9a-fA-F]"
UUID = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
# RFC 3986
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB}:@]|{_PCT})"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_SEGMENT_NZ_NC = rf"(?:[{_UNRESERVED}{_SUB}@]|{_PCT})+"
_AUTHORITY = (rf"(?:(?:[{_UNRESERVED}{_SUB}:]|{_PCT})*@)?"
              rf"(?:\[(?:{IPV6})\]|{IPV4}|(?:[{_UNRESERVED}{_SUB}]|{_PCT})*)(?::[0-9]*)?")
_PATH_ABEMPTY = rf"(?:/{_SEGMENT})*"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_HIER = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?|{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
URI = rf"{_SCHEME}:{_HIER}(?:\?{_QUERY})?(?:#{_QUERY})?"
_RELATIVE = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?|{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*)?"
URI_REFERENCE = rf"(?:{URI}|{_RELATIVE}(?:\?{_QUERY})?(?:#{_QUERY})?)"
JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

FORMATS: dict[str, str] = {
    "date": DATE, "time": TIME, "date-time": DATE_TIME, "duration": DURATION,
    "email": EMAIL, "hostname": HOSTNAME, "ipv4": IPV4, "ipv6": IPV6, "uuid": UUID,
    "uri": URI, "uri-reference": URI_REFERENCE, "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
}


@cache
def format_node(name: str) -> Node | None:
    """Decoded-string language of format ``name`` (UTF-8 bytes), or None if unknown."""
    text = FORMATS.get(name)
    if text is None:
        return None
    return parse_regex(text)
