"""HL7 v2 (ER7, pipe-delimited) parsing, time stamps, character sets and acknowledgements."""
