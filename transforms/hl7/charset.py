"""Turning the bytes a sender wrote into text, following MSH-18 (character set).

HL7 delimiters are ASCII, so MSH-18 can be read from the raw bytes before decoding. Senders often declare
ASCII and write Latin-1 (a patient named Müller), so decoding is tolerant: the declared set first, then
UTF-8, then Windows-1252/Latin-1, which decode anything. Nothing is lost: the raw bytes are stored too.
"""
from __future__ import annotations

# HL7 table 0211 -> Python codec.
_CODECS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "ISO IR6": "ascii",
    "ISO IR100": "latin-1",
    "ISO IR192": "utf-8",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc-kr",
    "BIG-5": "big5",
    "CNS 11643-1992": "big5",
}


def declared_charset(data: bytes) -> str:
    """MSH-18 (first repetition) read from raw bytes, '' when not declared."""
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 4:
        return ""
    line = data[start:].split(b"\r", 1)[0].split(b"\n", 1)[0]
    separator = line[3:4]
    if not separator:  # "MSH" and nothing after it on the line: no field separator, so no MSH-18
        return ""
    fields = line.split(separator)
    if len(fields) < 18:
        return ""
    value = fields[17].decode("ascii", "replace")
    return value.split(chr(line[5]) if len(line) > 5 else "~")[0].strip().upper()


def decode(data: bytes) -> str:
    """Text of an HL7 message: declared character set first, then UTF-8, then Windows-1252/Latin-1."""
    return decode_with_codec(data)[0]


def decode_with_codec(data: bytes) -> tuple[str, str]:
    """The text and the codec that decoded it (answers go back in the same encoding)."""
    codec = _CODECS.get(declared_charset(data))
    for candidate in (codec, "utf-8", "cp1252"):
        if candidate is None:
            continue
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def encode(text: str) -> bytes:
    """Bytes of a message for sending it again: its declared character set, else UTF-8 (decode reads both)."""
    codec = _CODECS.get(declared_charset(text.encode("ascii", "replace")))
    if codec is not None:
        try:
            return text.encode(codec)
        except UnicodeEncodeError:
            pass
    return text.encode("utf-8")
