"""I/O at the edges: SQL store, MLLP, SOAP, REST, the EHR client, notifications."""
