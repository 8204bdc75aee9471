"""The one-command demo (`make demo`, scripts/demo.py): simulated bedside monitors, a glucometer, an EHR and a
wearable sending scripted vital signs to a running engine, while a mock EHR receives what the engine forwards.

- ``scenarios``: the patients, what happens to each of them, which device sends it, the EHR outage;
- ``hl7``: what every simulated HL7 sender shares (control ids, time stamps, field layout);
- ``monitors``, ``glucometer``: the HL7 messages of three monitor vendors and a v2.3 glucometer;
- ``soap_ehr``, ``rest_device``: SubmitVitals over SOAP (zeep) and the JSON POST of a device;
- ``senders``: the loop that makes a device send on the demo clock; ``traffic`` starts them all;
- ``processes``: the mock EHR and the engine as child processes; ``summary``: the line printed every ~10 s;
- ``routes/``: the demo's route files (VITALS_ROUTES), with short device intervals and quick EHR retries.

Every patient, name and device here is synthetic.
"""
